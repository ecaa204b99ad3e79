//! `start` (and the second half of `run`): the container's runtime create and start,
//! under its monitor.
//!
//! Detached, this process forks the future monitor, which puts the container's stdio
//! (pipes, or a terminal received over a console socket) in place, calls the runtime
//! (the built-in one as a library: the init becomes its child), reports the init's pid
//! over a pipe and executes `liana-monitor`, staying the init's parent. Attached
//! (`run` without `-d`, `start -a`), this process is the monitor itself and runs its
//! loop with its own terminal as a client, then cleans up.

use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use liana_monitor::logfile::{LogDriver, LogWriter};
use liana_monitor::supervise::{self, Io, Local, Options};
use liana_monitor::sys::SigSet;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lock::ContainerLock;
use crate::record::{process_alive, Container, RootfsSource, Status};
use crate::runtime::OciRuntime;

/// A path for a unix socket in `dir`: the real one when it fits in `sun_path`, else
/// through `/proc/self/fd` (the returned fd must stay open while the path is used).
pub fn socket_path(dir: &Path, name: &str, pid_scoped: bool) -> Result<(PathBuf, Option<OwnedFd>)> {
    let real = dir.join(name);
    if real.as_os_str().len() < 100 {
        return Ok((real, None));
    }
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io("open", dir)(e.into()))?;
    let who = if pid_scoped {
        std::process::id().to_string()
    } else {
        "self".into()
    };
    Ok((
        PathBuf::from(format!("/proc/{who}/fd/{}/{name}", fd.as_raw_fd())),
        Some(fd),
    ))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::sys("pipe")(e.into()))
}

fn dev_null() -> Result<OwnedFd> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io("open", "/dev/null")(e.into()))
}

/// The stdio of a container being started.
struct Stdio {
    /// The container's ends (stdin, stdout, stderr).
    container: [OwnedFd; 3],
    /// The monitor's ends.
    io: Io,
    /// Listening console socket (terminal) and its path.
    console: Option<(UnixListener, PathBuf, Option<OwnedFd>)>,
}

fn make_stdio(c: &Container, run_dir: &Path, interactive: bool) -> Result<Stdio> {
    let null = dev_null()?;
    if c.settings.tty {
        let (path, keep) = socket_path(run_dir, "console.sock", true)?;
        let _ = std::fs::remove_file(run_dir.join("console.sock"));
        let l = UnixListener::bind(&path).map_err(Error::io(
            "listen on console socket",
            run_dir.join("console.sock"),
        ))?;
        let container = [
            null.try_clone().map_err(Error::sys("dup"))?,
            null.try_clone().map_err(Error::sys("dup"))?,
            null,
        ];
        return Ok(Stdio {
            container,
            io: Io::default(),
            console: Some((l, path, keep)),
        });
    }
    let (in_r, in_w) = if interactive {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (null, None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok(Stdio {
        container: [in_r, out_w, err_w],
        io: Io {
            stdin: in_w,
            stdout: Some(out_r),
            stderr: Some(err_r),
            console: None,
        },
        console: None,
    })
}

/// Receives the pty master a runtime sent to the console socket.
fn receive_console(l: &UnixListener) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (stream, _) = l.accept().map_err(Error::sys("accept on console socket"))?;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("receive the terminal")(e.into()))?;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("receive the terminal")(e.into()))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::sys("receive the terminal")(std::io::Error::other(
        "no fd in the console message",
    )))
}

/// Reads what a runtime wrote on the container's stderr before failing.
fn drain(fd: Option<&OwnedFd>) -> String {
    let Some(fd) = fd else { return String::new() };
    let _ = liana_monitor::sys::set_nonblocking(fd.as_fd(), true);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = liana_monitor::sys::read(fd.as_raw_fd(), &mut buf) {
        if n == 0 || out.len() > 16384 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// The status a container must have to be started.
fn check_startable(c: &Container, e: &Engine) -> Result<()> {
    match c.observe(&e.paths).0 {
        Status::Created | Status::Exited => Ok(()),
        s => Err(Error::InvalidState {
            id: c.id.clone(),
            status: s,
            what: "cannot start it",
        }),
    }
}

/// Creates and starts the container through the runtime with `stdio`, with its
/// user-mode network helper started in between; on success returns the init's pid and
/// the helper's exit pipe (to keep open while the container runs). Called in the
/// monitor's process.
fn runtime_start(
    e: &Engine,
    rt: &dyn OciRuntime,
    c: &Container,
    bundle: &Path,
    stdio: &mut Stdio,
) -> Result<(i32, Option<OwnedFd>)> {
    let raw = [
        stdio.container[0].as_raw_fd(),
        stdio.container[1].as_raw_fd(),
        stdio.container[2].as_raw_fd(),
    ];
    let console = stdio.console.as_ref().map(|(_, p, _)| p.as_path());
    tracing::debug!(id = %c.id, runtime = rt.name(), "runtime create");
    let pid = match rt.create(&c.id, bundle, raw, console) {
        Ok(p) => p,
        Err(crate::runtime::RuntimeError::Failed {
            runtime,
            op,
            status,
            ..
        }) => {
            let message = drain(stdio.io.stderr.as_ref());
            return Err(crate::runtime::RuntimeError::Failed {
                runtime,
                op,
                status,
                message,
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some((l, _, _)) = &stdio.console {
        match receive_console(l) {
            Ok(m) => stdio.io.console = Some(m),
            Err(e) => {
                let _ = rt.delete(&c.id, true);
                return Err(e);
            }
        }
    }
    let keep = match e.net_after_create(c, pid) {
        Ok(k) => k,
        Err(err) => {
            let _ = rt.delete(&c.id, true);
            return Err(err);
        }
    };
    tracing::debug!(id = %c.id, pid, "runtime start");
    if let Err(e) = rt.start(&c.id) {
        let _ = rt.delete(&c.id, true);
        return Err(e.into());
    }
    tracing::debug!(id = %c.id, "started");
    Ok((pid, keep))
}

/// The state of a container just started.
fn running_state(pid: i32, monitor: i32) -> crate::record::State {
    crate::record::State {
        status: Some(Status::Running),
        pid,
        pid_start: liana_container::state::proc_stat(pid).map_or(0, |s| s.start_time),
        monitor_pid: monitor,
        monitor_start: liana_container::state::proc_stat(monitor).map_or(0, |s| s.start_time),
        started_at: Some(now()),
        finished_at: None,
        exit_code: None,
        start_count: 1,
        runtime_leftover: false,
    }
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

impl Engine {
    /// Mounts the root file system when it is not, and clears the last run's leftovers.
    fn prepare_start(&self, c: &Container) -> Result<()> {
        if !matches!(c.rootfs, RootfsSource::Dir { .. }) {
            let target = self.paths.rootfs_mount(&c.id);
            if !crate::mount::is_mounted(&target) {
                crate::mount::mount_rootfs(&self.rootfs_mounts(c)?, &target)?;
            }
        }
        if c.state.runtime_leftover {
            self.runtime(&c.settings.runtime)?.delete(&c.id, true)?;
        }
        let run_dir = self.paths.run_dir(&c.id);
        let _ = std::fs::remove_file(run_dir.join("exit"));
        self.net_before_start(c)
    }

    fn mark_running(&self, id: &str, pid: i32, monitor: i32) -> Result<Container> {
        let st = running_state(pid, monitor);
        self.db()?.update(id, |r| {
            let count = r.state.start_count;
            r.state = st;
            r.state.start_count = count + 1;
        })
    }

    /// Starts a container in the background under a `liana-monitor`.
    pub fn start(&self, needle: &str) -> Result<Container> {
        let c0 = self.lookup(needle)?;
        let lock = ContainerLock::acquire(&self.paths.run_dir(&c0.id))?;
        let c = self
            .db()?
            .get(&c0.id)?
            .ok_or_else(|| Error::NoSuchContainer(needle.into()))?;
        self.start_locked(c, lock)
    }

    /// [`Engine::start`] of a container this process just created (`run -d`).
    pub fn start_created(&self, c: Container) -> Result<Container> {
        let lock = ContainerLock::acquire(&self.paths.run_dir(&c.id))?;
        self.start_locked(c, lock)
    }

    fn start_locked(&self, c: Container, _lock: ContainerLock) -> Result<Container> {
        let run_dir = self.paths.run_dir(&c.id);
        check_startable(&c, self)?;
        self.prepare_start(&c)?;
        let rt = self.runtime(&c.settings.runtime)?;
        let monitor = self.monitor_path()?;
        let exit_cmd = self.exit_command(&c.id);
        let bundle = self.paths.container_dir(&c.id);
        let (attach_path, _keep) = socket_path(&run_dir, "attach", false)?;
        let _ = std::fs::remove_file(run_dir.join("attach"));
        let attach = UnixListener::bind(&attach_path)
            .map_err(Error::io("listen on attach socket", run_dir.join("attach")))?;
        let (rep_r, rep_w) = pipe()?;
        let n = threads();
        if n > 1 {
            return Err(Error::Threads(n));
        }
        // SAFETY: this process is single-threaded (checked above); the child only runs
        // the monitor's set-up and ends in exec or _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Error::sys("fork the monitor")(
                std::io::Error::last_os_error(),
            ));
        }
        if pid == 0 {
            drop(rep_r);
            let err = self.monitor_child(
                &c,
                rt.as_ref(),
                &bundle,
                &run_dir,
                &monitor,
                &exit_cmd,
                attach,
                &rep_w,
            );
            let msg = format!("err {}", crate::error_chain(&err));
            let _ = liana_monitor::sys::write_all(rep_w.as_raw_fd(), msg.as_bytes());
            // SAFETY: leave the forked child without running the parent's destructors.
            unsafe { libc::_exit(1) };
        }
        drop(rep_w);
        drop(attach);
        let mut report = String::new();
        let _ = std::fs::File::from(rep_r).read_to_string(&mut report);
        if let Some(rest) = report.strip_prefix("ok ") {
            let init: i32 = rest.trim().parse().unwrap_or(0);
            return self.mark_running(&c.id, init, pid);
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let message = report
            .strip_prefix("err ")
            .unwrap_or("the monitor process died")
            .to_string();
        self.net_teardown(&c);
        Err(Error::Start {
            id: c.id.clone(),
            message,
        })
    }

    /// The future monitor's part: returns only on failure.
    #[allow(clippy::too_many_arguments)]
    fn monitor_child(
        &self,
        c: &Container,
        rt: &dyn OciRuntime,
        bundle: &Path,
        run_dir: &Path,
        monitor: &Path,
        exit_cmd: &[OsString],
        attach: UnixListener,
        report: &OwnedFd,
    ) -> Error {
        // SAFETY: plain system calls in the single-threaded child.
        unsafe {
            libc::setsid();
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let mut sigs = SigSet::empty();
        sigs.add(libc::SIGCHLD);
        if let Err(e) = sigs.block() {
            return Error::sys("block SIGCHLD")(e);
        }
        // Let go of the caller's stdio: whoever reads our caller's output must not
        // wait for the monitor.
        match dev_null() {
            Ok(null) => {
                for fd in 0..3 {
                    // SAFETY: dup2 onto the stdio numbers.
                    unsafe { libc::dup2(null.as_raw_fd(), fd) };
                }
            }
            Err(e) => return e,
        }
        let mut stdio = match make_stdio(c, run_dir, c.settings.interactive) {
            Ok(s) => s,
            Err(e) => return e,
        };
        // The network helper's exit pipe stays open across the exec of the monitor.
        let (pid, _net_keep) = match runtime_start(self, rt, c, bundle, &mut stdio) {
            Ok(p) => p,
            Err(e) => return e,
        };
        drop(stdio.container);
        drop(stdio.console);
        let mut args: Vec<OsString> = vec![
            "--pid".into(),
            pid.to_string().into(),
            "--exit-file".into(),
            self.paths.exit_file(&c.id).into(),
        ];
        let driver = LogDriver::parse(&c.settings.log_driver).unwrap_or(LogDriver::K8sFile);
        if driver != LogDriver::None {
            args.extend([
                "--log-driver".into(),
                driver.name().into(),
                "--log-path".into(),
                self.paths.log_file(&c.id).into(),
            ]);
        }
        let mut pass = |flag: &str, fd: Option<&OwnedFd>| {
            if let Some(fd) = fd {
                let _ = liana_monitor::sys::set_cloexec(fd.as_raw_fd(), false);
                args.push(flag.into());
                args.push(fd.as_raw_fd().to_string().into());
            }
        };
        pass("--stdin-fd", stdio.io.stdin.as_ref());
        pass("--stdout-fd", stdio.io.stdout.as_ref());
        pass("--stderr-fd", stdio.io.stderr.as_ref());
        pass("--console-fd", stdio.io.console.as_ref());
        let attach_fd: OwnedFd = attach.into();
        pass("--attach-fd", Some(&attach_fd));
        args.push("--".into());
        args.extend(exit_cmd.iter().cloned());
        let msg = format!("ok {pid}\n");
        let _ = liana_monitor::sys::write_all(report.as_raw_fd(), msg.as_bytes());
        let prog = match CString::new(monitor.as_os_str().as_bytes()) {
            Ok(p) => p,
            Err(_) => return Error::flag("monitor", "path contains NUL"),
        };
        let mut argv: Vec<CString> = vec![prog.clone()];
        argv.extend(args.iter().filter_map(|a| CString::new(a.as_bytes()).ok()));
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: a NULL-terminated argv of valid C strings; the environment is ours.
        unsafe { libc::execv(prog.as_ptr(), ptrs.as_ptr()) };
        let e = std::io::Error::last_os_error();
        // The container runs without a monitor: stop it rather than leak it.
        let _ = rt.kill(&c.id, libc::SIGKILL, true);
        Error::Monitor {
            path: monitor.into(),
            op: "execute",
            source: e,
        }
    }

    /// Starts the container with this process as its monitor and its own stdio as a
    /// client; returns the container's exit code once it is cleaned up.
    pub fn start_attached(&self, needle: &str, local: Local) -> Result<i32> {
        let c0 = self.lookup(needle)?;
        let lock = ContainerLock::acquire(&self.paths.run_dir(&c0.id))?;
        let c = self
            .db()?
            .get(&c0.id)?
            .ok_or_else(|| Error::NoSuchContainer(needle.into()))?;
        self.run_attached(c, lock, local)
    }

    /// `run` without `-d`: creates the container and runs it with this process as its
    /// monitor. The record is written once, already running (one database
    /// transaction fewer on the way in).
    pub fn run_attached_new(
        &self,
        o: &crate::options::RunOptions,
        src: crate::create::ImageSource,
        local: Local,
    ) -> Result<i32> {
        let p = self.prepare(o, src)?;
        let lock = ContainerLock::acquire(&self.paths.run_dir(&p.container.id))?;
        let c = p.container.clone();
        self.run_attached_inner(c, lock, local, Some(p))
    }

    fn run_attached(&self, c: Container, lock: ContainerLock, local: Local) -> Result<i32> {
        self.run_attached_inner(c, lock, local, None)
    }

    fn run_attached_inner(
        &self,
        c: Container,
        lock: ContainerLock,
        local: Local,
        mut pending: Option<crate::create::Prepared<'_>>,
    ) -> Result<i32> {
        let id = c.id.clone();
        let run_dir = self.paths.run_dir(&id);
        let signals = SigSet::catchable_except(&[
            libc::SIGPIPE,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGSYS,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ]);
        check_startable(&c, self)?;
        self.prepare_start(&c)?;
        let rt = self.runtime(&c.settings.runtime)?;
        let (attach_path, _keep) = socket_path(&run_dir, "attach", false)?;
        let _ = std::fs::remove_file(run_dir.join("attach"));
        let attach = UnixListener::bind(&attach_path)
            .map_err(Error::io("listen on attach socket", run_dir.join("attach")))?;
        signals.block().map_err(Error::sys("block signals"))?;
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let bundle = self.paths.container_dir(&id);
        let mut stdio = make_stdio(&c, &run_dir, c.settings.interactive && local.stdin)?;
        let n = threads();
        if n > 1 && c.settings.runtime == crate::runtime::BUILTIN {
            return Err(Error::Threads(n));
        }
        let (pid, _net_keep) = match runtime_start(self, rt.as_ref(), &c, &bundle, &mut stdio) {
            Ok(p) => p,
            Err(e) => {
                self.net_teardown(&c);
                return Err(e);
            }
        };
        drop(stdio.container);
        drop(stdio.console);
        let monitor = std::process::id() as i32;
        let running = match pending.as_mut() {
            Some(p) => {
                p.container.state = running_state(pid, monitor);
                if let Err(e) = self.commit(p) {
                    let _ = rt.kill(&id, libc::SIGKILL, true);
                    // SAFETY: waitpid on the init, our child.
                    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                    let _ = rt.delete(&id, true);
                    return Err(e);
                }
                p.container.clone()
            }
            None => self.mark_running(&id, pid, monitor)?,
        };
        drop(lock);
        tracing::debug!(id = %id, "recorded as running");
        let driver = LogDriver::parse(&c.settings.log_driver).unwrap_or(LogDriver::K8sFile);
        let log = LogWriter::open(&self.paths.log_file(&id), driver).ok();
        let _raw = if local.tty {
            liana_container::tty::RawMode::enter(0)
        } else {
            None
        };
        let builtin = c.settings.runtime == crate::runtime::BUILTIN;
        let mut forward = |sig: i32| {
            if builtin {
                if pid > 0 {
                    // SAFETY: kill takes integers; a positive pid names one process
                    // (never 0 or -1: this process's group or everything).
                    unsafe { libc::kill(pid, sig) };
                }
            } else if let Err(e) = rt.kill(&id, sig, false) {
                tracing::debug!("forward signal {sig}: {e}");
            }
        };
        let exit = supervise::supervise(Options {
            pid,
            io: stdio.io,
            log,
            attach: Some(attach.into()),
            local: Some(local),
            signals,
            on_signal: &mut forward,
        })
        .map_err(Error::sys("monitor the container"))?;
        drop(_raw);
        tracing::debug!(id = %id, code = exit.code, "exited");
        let exit_file = self.paths.exit_file(&id);
        if let Err(e) = liana_monitor::exitfile::write(&exit_file, &exit) {
            tracing::warn!("write {}: {e}", exit_file.display());
        }
        self.cleanup_after(&running, Some(&exit))?;
        Ok(exit.code)
    }

    /// Whether a monitor is still alive for `c` (it runs the cleanup after the exit).
    pub(crate) fn monitor_alive(c: &Container) -> bool {
        process_alive(c.state.monitor_pid, c.state.monitor_start)
    }
}

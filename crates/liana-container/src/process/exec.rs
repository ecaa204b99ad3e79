//! `exec`: a new process in a running container. The parent and bootstrap stages are
//! the same as for `create`; the bootstrap joins every namespace of the container's
//! init (user namespace first) and its cgroup, and the last stage sets up the process
//! (no rootfs work) and execs it right away.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use oci_spec::runtime::LinuxNamespace;

use super::init::{finish, InitError};
use super::setup::{self, ProcessPlan};
use super::{bootstrap, chain, exit_stage, Setup};
use crate::cgroups::CgroupManager;
use crate::channel::{self, Channel, ChannelError, Msg};
use crate::config::{Config, ContainerId, NamespaceSet};
use crate::namespaces::{self, Plan};
use crate::procfs::Procfs;
use crate::seccomp::SeccompProgram;
use crate::tty;

use super::create::CreateError;

/// What `exec` needs.
#[derive(Debug)]
pub struct ExecOptions<'a> {
    /// The container's config (as saved at create).
    pub config: &'a Config,
    /// Container id.
    pub id: &'a ContainerId,
    /// Host pid of the container's init.
    pub init_pid: i32,
    /// The process to run.
    pub plan: ProcessPlan,
    /// --console-socket.
    pub console_socket: Option<&'a std::path::Path>,
    /// The container's cgroup.
    pub cgroup: Option<&'a CgroupManager>,
    /// The container's seccomp program.
    pub seccomp: Option<&'a SeccompProgram>,
    /// stdin, stdout, stderr for the process instead of the caller's.
    pub stdio: Option<[RawFd; 3]>,
}

/// A started exec process.
#[derive(Debug)]
pub struct ExecStarted {
    /// Host pid of the process (a child of the caller).
    pub pid: i32,
    /// The pty master when `--tty` without a console socket.
    pub console: Option<OwnedFd>,
}

/// The namespaces of `init` that differ from ours, as paths to join.
fn join_list(spec_ns: &[LinuxNamespace], init: i32) -> Vec<LinuxNamespace> {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: String| std::fs::metadata(p).map(|m| m.ino()).ok();
    let me = std::process::id();
    spec_ns
        .iter()
        .filter_map(|n| {
            let name = namespaces::proc_name(n.typ());
            let theirs = format!("/proc/{init}/ns/{name}");
            if ino(theirs.clone()) == ino(format!("/proc/{me}/ns/{name}")) {
                return None;
            }
            let mut j = LinuxNamespace::default();
            j.set_typ(n.typ());
            j.set_path(Some(theirs.into()));
            Some(j)
        })
        .collect()
}

/// Starts the process; returns once it has called execve (or with the error that kept
/// it from getting there).
pub fn start(opts: ExecOptions<'_>) -> Result<ExecStarted, CreateError> {
    let spec = &opts.config.spec;
    let spec_ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let joins = join_list(&spec_ns, opts.init_pid);
    let ns_plan = Plan::new(&joins)?;
    let mut ns = NamespaceSet::default();
    for j in &joins {
        ns.mark_joined(j.typ());
    }
    let (parent_end, child_end) = channel::pair()?;
    let setup = Setup {
        config: opts.config,
        id: opts.id,
        ns,
        ns_plan: &ns_plan,
        plan: opts.plan,
        fifo: None,
        no_pivot: false,
        no_new_keyring: true,
        last_cap: crate::capabilities::last_cap(),
        own_fds: Vec::new(),
        close_after_fork: Vec::new(),
        cgroup: opts.cgroup,
        seccomp: opts.seccomp,
        exec: true,
        stdio: opts.stdio,
    };
    let unified = match setup.cgroup.and_then(|m| m.unified_dir()) {
        Some(d) => rustix::fs::open(
            d,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok(),
        None => None,
    };
    // SAFETY: single-threaded; the child ends in exec or _exit.
    let (pid, in_unified) = unsafe { super::fork_into(unified.as_ref().map(|f| f.as_fd())) }
        .map_err(|source| CreateError::Sys {
            op: "fork".into(),
            source,
        })?;
    if pid == 0 {
        drop(parent_end);
        bootstrap::run(&setup, child_end, in_unified);
    }
    drop(child_end);
    let mut started = ExecStarted {
        pid: 0,
        console: None,
    };
    let mut pids = vec![pid];
    let mut ready = false;
    let r = (|| loop {
        let (msg, mut fds) = match parent_end.recv() {
            Ok(m) => m,
            // The channel is close-on-exec: closed after Ready means execve succeeded.
            Err(ChannelError::Closed) if ready => return Ok(()),
            Err(ChannelError::Closed) => {
                return Err(CreateError::StageDied(
                    "exec process exited during set-up".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        match msg {
            Msg::InitPid(p) => {
                started.pid = p;
                if p != pid {
                    // SAFETY: waitpid on our own child (the bootstrap).
                    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                    pids = vec![p];
                }
            }
            Msg::Console => {
                let master = fds
                    .pop()
                    .ok_or_else(|| CreateError::Stage("no pty".into()))?;
                match opts.console_socket {
                    Some(path) => tty::send_to_socket(path, master.as_fd())?,
                    None => started.console = Some(master),
                }
            }
            Msg::SeccompFd => {
                let fd = fds
                    .pop()
                    .ok_or_else(|| CreateError::Stage("no listener".into()))?;
                super::create::send_to_agent(
                    spec,
                    opts.id,
                    &opts.config.bundle,
                    started.pid,
                    fd.as_fd(),
                )?;
                parent_end.send(&Msg::Ack)?;
            }
            // Keep listening until execve: the seccomp filter, the last capability
            // changes and execve itself can still fail.
            Msg::Ready => ready = true,
            Msg::Error(m) => return Err(CreateError::Stage(m)),
            other => {
                return Err(ChannelError::Unexpected {
                    expected: "an exec set-up report",
                    got: other,
                }
                .into())
            }
        }
    })();
    if let Err(e) = r {
        for p in pids {
            // SAFETY: kill/waitpid on processes this command forked.
            unsafe {
                libc::kill(p, libc::SIGKILL);
                libc::waitpid(p, std::ptr::null_mut(), 0);
            }
        }
        return Err(e);
    }
    Ok(started)
}

/// The exec process's last stage; never returns.
pub fn run_stage(setup: &Setup<'_>, channel: &Channel) -> ! {
    let e = match steps(setup, channel) {
        Ok(e) | Err(e) => e,
    };
    let msg = chain(&e);
    if channel.send(&Msg::Error(msg.clone())).is_err() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "liana-runtime exec: {msg}");
    }
    exit_stage(match &e {
        InitError::Setup(s) => s.exit_status(),
        _ => 1,
    })
}

fn steps(setup: &Setup<'_>, channel: &Channel) -> Result<InitError, InitError> {
    let mut plan = setup.plan.clone();
    let procfs = Procfs::open().map_err(|source| InitError::Sys {
        op: "open procfs".into(),
        source,
    })?;
    if plan.terminal {
        // SAFETY: setsid takes no arguments.
        unsafe { libc::setsid() };
        let (master, slave) = tty::open_pty()?;
        if let Some((r, c)) = plan.console_size {
            let _ = tty::set_size(slave.as_fd(), r, c);
        }
        for target in 0..3 {
            // SAFETY: dup2 onto our own stdio.
            unsafe { libc::dup2(slave.as_raw_fd(), target) };
        }
        // SAFETY: TIOCSCTTY takes an integer.
        unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
        channel.send_fds(&Msg::Console, &[master.as_raw_fd()])?;
    }
    match setup::apply_privileged(&plan, &procfs) {
        // Not dumpable (see bootstrap), the stage's /proc/self files belong to the
        // runtime's user namespace's root: an unprivileged runtime cannot write its own
        // oom_score_adj or LSM attributes then. Only for that, briefly, it is dumpable.
        Err(setup::SetupError::Sys { source, .. })
            if source.raw_os_error() == Some(libc::EACCES) =>
        {
            set_dumpable(true);
            let r = setup::apply_privileged(&plan, &procfs);
            set_dumpable(false);
            r?;
        }
        r => r?,
    }
    let mut seccomp_done = false;
    if let Some(p) = setup.seccomp.filter(|p| p.needs_listener()) {
        if plan.no_new_privileges {
            // SAFETY: PR_SET_NO_NEW_PRIVS takes integers.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        }
        if let Some(fd) = p.install()? {
            channel.send_fds(&Msg::SeccompFd, &[fd.as_raw_fd() as RawFd])?;
            channel.expect_ack()?;
        }
        seccomp_done = true;
    }
    if plan.env_var("HOME").is_none() {
        let home = setup::home_of(plan.uid);
        plan.set_env("HOME", &home);
    }
    setup::switch_user(&plan, setup.last_cap)?;
    setup::enter_cwd(&plan.cwd)?;
    let exe = setup::find_executable(&plan.args[0], plan.env_var("PATH"))?;
    drop(procfs);
    channel.send(&Msg::Ready)?;
    setup::prepare_fds(plan.preserve_fds, &[channel.raw_fd()])?;
    setup::reset_signals();
    finish(setup, &plan, seccomp_done)?;
    Ok(InitError::Setup(setup::exec(&exe, &plan.args, &plan.env)))
}

fn set_dumpable(on: bool) {
    // SAFETY: PR_SET_DUMPABLE takes integers.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
}

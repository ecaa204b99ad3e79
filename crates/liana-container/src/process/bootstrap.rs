//! Stage 2 of 3: the bootstrap. A fork of the parent that enters the container's
//! cgroup and namespaces and forks the init.

use std::io;
use std::os::fd::OwnedFd;

use oci_spec::runtime::LinuxNamespaceType;

use super::{chain, exit_stage, init, Detached, Setup};
use crate::channel::{Channel, Msg};

/// A bootstrap step that failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Joining the cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] liana_cgroups::Error),
    /// A namespace step failed.
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    /// Talking to the parent failed.
    #[error(transparent)]
    Channel(#[from] crate::channel::ChannelError),
    /// Another step failed.
    #[error("{op}")]
    Sys {
        /// What failed.
        op: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Runs the bootstrap stage; never returns. `in_unified`: the process was forked into
/// the container's cgroup2 directory already.
pub fn run(setup: &Setup<'_>, channel: Channel, in_unified: bool) -> ! {
    match steps(setup, &channel, in_unified) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = channel.send(&Msg::Error(chain(&e)));
            exit_stage(1)
        }
    }
}

enum Never {}

fn steps(setup: &Setup<'_>, channel: &Channel, in_unified: bool) -> Result<Never, BootstrapError> {
    if setup.exec {
        // The exec stage enters the container (its pid namespace, its user namespace)
        // holding the runtime's fds and whatever its caller leaked, until execve. Not
        // dumpable, a process of the container cannot ptrace it, take its fds with
        // pidfd_getfd or open them through /proc/PID/fd, even with CAP_SYS_PTRACE in
        // the container's user namespace (CVE-2016-9962). execve makes the container's
        // process dumpable again as usual.
        // SAFETY: PR_SET_DUMPABLE takes integers.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(BootstrapError::Sys {
                op: "make the exec stage not dumpable",
                source: io::Error::last_os_error(),
            });
        }
    }
    for &fd in &setup.close_after_fork {
        // SAFETY: these fds belong to the parent's objects, which this process never
        // uses or drops (it ends in exec or _exit).
        unsafe { libc::close(fd) };
    }
    if let Some(fds) = setup.stdio {
        redirect_stdio(fds).map_err(|source| BootstrapError::Sys {
            op: "put the given stdio fds in place",
            source,
        })?;
    }
    if let Some(cg) = setup.cgroup {
        cg.apply_self(in_unified)?;
    }
    let plan = setup.ns_plan;
    plan.join_all()?;
    let mut detached: Detached = Vec::new();
    let mut userns = None;
    if locks_mounts(setup) {
        let (fd, trees) = namespaces_from_helper(setup, channel)?;
        userns = Some(fd);
        detached = trees;
    } else if plan.new_user {
        crate::namespaces::unshare(libc::CLONE_NEWUSER).map_err(|source| {
            crate::namespaces::NamespaceError {
                kind: "user".into(),
                path: None,
                op: "create",
                source,
            }
        })?;
        channel.send(&Msg::UserNsCreated)?;
        let (msg, fds) = channel.recv()?;
        let Msg::MappingsDone { mounts } = msg else {
            return Err(crate::channel::ChannelError::Unexpected {
                expected: "mappings done",
                got: msg,
            }
            .into());
        };
        detached = place(
            mounts,
            fds,
            setup.config.spec.mounts().as_ref().map_or(0, Vec::len),
        );
        become_root();
    }
    if userns.is_none() {
        plan.unshare_rest()?;
        if setup.ns.is_new(LinuxNamespaceType::Time) {
            write_time_offsets(setup)?;
        }
    }
    if plan.fork_init {
        // SAFETY: raw clone without CLONE_VM is a fork; CLONE_PARENT makes the init the
        // parent's child, so the parent can wait for it. We are single-threaded.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::CLONE_PARENT as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            return Err(BootstrapError::Sys {
                op: "fork the container's init",
                source: io::Error::last_os_error(),
            });
        }
        if pid == 0 {
            last_stage(setup, channel, detached, userns);
        }
        channel.send(&Msg::InitPid(pid as i32))?;
        exit_stage(0);
    }
    channel.send(&Msg::InitPid(std::process::id() as i32))?;
    last_stage(setup, channel, detached, userns)
}

fn last_stage(
    setup: &Setup<'_>,
    channel: &Channel,
    detached: Detached,
    userns: Option<OwnedFd>,
) -> ! {
    if setup.exec {
        super::exec::run_stage(setup, channel)
    } else {
        init::run(setup, channel, detached, userns)
    }
}

/// Duplicates `fds` onto 0, 1 and 2. Each is first copied above 2 so that a source that
/// is itself 0, 1 or 2 is not overwritten before it is used.
fn redirect_stdio(fds: [std::os::fd::RawFd; 3]) -> io::Result<()> {
    let mut high = [-1; 3];
    for (i, &fd) in fds.iter().enumerate() {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an fd the caller passed; returns a new fd.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if d < 0 {
            return Err(io::Error::last_os_error());
        }
        high[i] = d;
    }
    for (target, &fd) in high.iter().enumerate() {
        // SAFETY: dup2 onto a stdio number; the copy above stays valid until closed.
        if unsafe { libc::dup2(fd, target as i32) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is the temporary copy made above, closed once.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Whether the container's mounts are made outside its new user namespace and then
/// locked (see [`namespaces_from_helper`]): a new user namespace and a new mount
/// namespace, and a runtime privileged enough to mount in its own mount namespaces.
fn locks_mounts(setup: &Setup<'_>) -> bool {
    let plan = setup.ns_plan;
    !setup.exec
        && plan.new_user
        && plan.unshare & libc::CLONE_NEWNS != 0
        && rustix::process::geteuid().is_root()
}

/// The namespaces [`namespaces_from_helper`] makes in the bootstrap itself, owned by the
/// runtime's user namespace: the mount namespace (the init copies it into the
/// container's user namespace once the rootfs is built), and the pid and time
/// namespaces, which another process can only join once they have a first process.
const OURS: libc::c_int = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWTIME;

/// Makes the container's new namespaces without entering its user namespace, so that
/// its mounts can be made by the runtime's root and locked afterwards.
///
/// A mount the container's root could undo (a mask, a read-only bind) only holds if it
/// is locked: the kernel locks the mounts a mount namespace copies from one owned by
/// another user namespace. So a helper process creates the user namespace (whose
/// mappings the parent writes) and, inside it, the network, uts, ipc and cgroup
/// namespaces, which this stage joins as the runtime's root; this stage then makes the
/// mount, pid and time namespaces itself ([`OURS`]). The init builds the rootfs, then
/// enters the container's user namespace and copies the mount namespace
/// ([`super::init`]): every mount it made is locked in the copy. Returns the user
/// namespace (for the init) and the detached mount trees the parent prepared.
fn namespaces_from_helper(
    setup: &Setup<'_>,
    channel: &Channel,
) -> Result<(OwnedFd, Detached), BootstrapError> {
    let plan = setup.ns_plan;
    let sys = |op: &'static str| move |source: io::Error| BootstrapError::Sys { op, source };
    let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| sys("create a pipe")(e.into()))?;
    let (release_r, release_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| sys("create a pipe")(e.into()))?;
    // SAFETY: single-threaded; the helper only makes syscalls and ends with _exit.
    let helper = unsafe { super::fork() }.map_err(sys("fork the namespace helper"))?;
    if helper == 0 {
        drop((ready_r, release_w));
        let errno_of = |e: &io::Error| e.raw_os_error().unwrap_or(libc::EINVAL);
        let r = (|| -> Result<(), i32> {
            crate::namespaces::unshare(libc::CLONE_NEWUSER).map_err(|e| errno_of(&e))?;
            plan.unshare_only(!OURS).map_err(|e| errno_of(&e.source))?;
            Ok(())
        })();
        let errno = r.err().unwrap_or(0);
        let _ = rustix::io::write(&ready_w, &errno.to_ne_bytes());
        // Stay until the bootstrap has joined the namespaces and closed its end.
        let _ = rustix::io::read(&release_r, &mut [0u8; 1]);
        exit_stage(i32::from(errno != 0));
    }
    drop((ready_w, release_r));
    let reap = || {
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(helper, std::ptr::null_mut(), 0) };
    };
    let mut errno = [0u8; 4];
    let n = rustix::io::read(&ready_r, &mut errno)
        .map_err(|e| sys("wait for the namespace helper")(e.into()))?;
    let errno = i32::from_ne_bytes(errno);
    if n != 4 || errno != 0 {
        drop(release_w);
        reap();
        return Err(crate::namespaces::NamespaceError {
            kind: "user".into(),
            path: None,
            op: "create (with the container's other new namespaces)",
            source: io::Error::from_raw_os_error(if n == 4 { errno } else { libc::ECHILD }),
        }
        .into());
    }
    let joined = (|| -> Result<(OwnedFd, Detached), BootstrapError> {
        channel.send(&Msg::UserNsCreatedIn(helper))?;
        let (msg, fds) = channel.recv()?;
        let Msg::MappingsDone { mounts } = msg else {
            return Err(crate::channel::ChannelError::Unexpected {
                expected: "mappings done",
                got: msg,
            }
            .into());
        };
        let detached = place(
            mounts,
            fds,
            setup.config.spec.mounts().as_ref().map_or(0, Vec::len),
        );
        let open = |name: &str| {
            let path = format!("/proc/{helper}/ns/{name}");
            rustix::fs::open(
                path.as_str(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| (path, io::Error::from(e)))
        };
        let ns_err = |t: LinuxNamespaceType, op: &'static str| {
            move |(path, source): (String, io::Error)| crate::namespaces::NamespaceError {
                kind: crate::namespaces::spec_name(t).into(),
                path: Some(path.into()),
                op,
                source,
            }
        };
        let userns = open("user").map_err(ns_err(LinuxNamespaceType::User, "open"))?;
        for t in plan.new_types() {
            let flag = crate::namespaces::clone_flag(t);
            if flag & OURS != 0 {
                continue;
            }
            let name = crate::namespaces::proc_name(t);
            let fd = open(name).map_err(ns_err(t, "open"))?;
            crate::namespaces::setns(&fd, flag)
                .map_err(|e| ns_err(t, "join")((format!("/proc/{helper}/ns/{name}"), e)))?;
        }
        plan.unshare_only(OURS)?;
        if setup.ns.is_new(LinuxNamespaceType::Time) {
            write_time_offsets(setup)?;
        }
        Ok((userns, detached))
    })();
    drop(release_w);
    reap();
    joined
}

fn place(indexes: Vec<usize>, fds: Vec<OwnedFd>, n: usize) -> Detached {
    let mut out: Detached = (0..n).map(|_| None).collect();
    for (i, fd) in indexes.into_iter().zip(fds) {
        if i < n {
            out[i] = Some(fd);
        }
    }
    out
}

/// Become uid/gid 0 of the new user namespace when 0 is mapped.
fn become_root() {
    // SAFETY: plain id syscalls; failure (0 not mapped) leaves ids unchanged.
    unsafe {
        libc::setresgid(0, 0, 0);
        libc::setresuid(0, 0, 0);
    }
}

fn write_time_offsets(setup: &Setup<'_>) -> Result<(), BootstrapError> {
    let Some(offsets) = setup
        .config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).map_err(|source| BootstrapError::Sys {
        op: "write linux.timeOffsets to /proc/self/timens_offsets",
        source,
    })
}

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
    for &fd in &setup.close_after_fork {
        // SAFETY: these fds belong to the parent's objects, which this process never
        // uses or drops (it ends in exec or _exit).
        unsafe { libc::close(fd) };
    }
    if let Some(cg) = setup.cgroup {
        cg.apply_self(in_unified)?;
    }
    let plan = setup.ns_plan;
    plan.join_all()?;
    let mut detached: Detached = Vec::new();
    if plan.new_user {
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
    plan.unshare_rest()?;
    if setup.ns.is_new(LinuxNamespaceType::Time) {
        write_time_offsets(setup)?;
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
            last_stage(setup, channel, detached);
        }
        channel.send(&Msg::InitPid(pid as i32))?;
        exit_stage(0);
    }
    channel.send(&Msg::InitPid(std::process::id() as i32))?;
    last_stage(setup, channel, detached)
}

fn last_stage(setup: &Setup<'_>, channel: &Channel, detached: Detached) -> ! {
    if setup.exec {
        super::exec::run_stage(setup, channel)
    } else {
        init::run(setup, channel, detached)
    }
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

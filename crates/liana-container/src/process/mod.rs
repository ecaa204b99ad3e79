//! Creating the container's processes, in three named stages talking over one socket
//! ([`crate::channel`]):
//!
//! * **parent** ([`create`]): the runtime command. Validates, prepares state, forks the
//!   bootstrap, answers its requests (id mappings, prepared bind mounts, hooks), then
//!   records the init's pid and leaves.
//! * **bootstrap** ([`bootstrap`]): a fork of the parent. Joins the cgroup, joins or
//!   creates the namespaces (user namespace first), then forks the init into the new
//!   pid namespace with CLONE_PARENT so that the init is the parent's child, and exits.
//! * **init** ([`init`]): pid 1 of the container. Builds the rootfs, sets the process's
//!   attributes, reports ready, waits on the exec fifo for `start`, and execs.
//!
//! The parent re-executes itself from a sealed memfd first ([`crate::sealed`]), so no
//! stage ever runs from the host's binary file.

pub mod bootstrap;
pub mod create;
pub mod exec;
pub mod init;
pub mod setup;

use std::os::fd::{OwnedFd, RawFd};

use crate::cgroups::CgroupManager;
use crate::config::{Config, ContainerId, NamespaceSet};
use crate::namespaces;
use crate::seccomp::SeccompProgram;
use setup::ProcessPlan;

/// Everything the bootstrap and init stages need, built by the parent before fork and
/// inherited through it.
#[derive(Debug)]
pub struct Setup<'a> {
    /// Loaded config.
    pub config: &'a Config,
    /// Container id.
    pub id: &'a ContainerId,
    /// Which namespaces are private.
    pub ns: NamespaceSet,
    /// Namespaces to join and create.
    pub ns_plan: &'a namespaces::Plan,
    /// The process to run.
    pub plan: ProcessPlan,
    /// O_PATH fd of the exec fifo.
    pub fifo: Option<RawFd>,
    /// --no-pivot.
    pub no_pivot: bool,
    /// --no-new-keyring.
    pub no_new_keyring: bool,
    /// Highest capability the kernel knows.
    pub last_cap: u32,
    /// The runtime's own fds that must not reach the container even when they fall in
    /// the preserved range.
    pub own_fds: Vec<RawFd>,
    /// Parent-only fds the bootstrap closes right after fork (the state directory,
    /// whose flock must not outlive the parent).
    pub close_after_fork: Vec<RawFd>,
    /// Cgroup to join in the bootstrap stage.
    pub cgroup: Option<&'a CgroupManager>,
    /// Seccomp program to install right before exec.
    pub seccomp: Option<&'a SeccompProgram>,
    /// An `exec` process rather than the container's init.
    pub exec: bool,
    /// stdin, stdout, stderr for the process instead of the caller's fds 0, 1, 2;
    /// the bootstrap puts them in place right after fork.
    pub stdio: Option<[RawFd; 3]>,
}

/// Detached mount trees received from the parent, by mount index.
pub type Detached = Vec<Option<OwnedFd>>;

/// fork(2). The caller must be single-threaded.
///
/// # Safety
/// The child may only use what is safe after fork in a single-threaded process.
pub(crate) unsafe fn fork() -> std::io::Result<libc::pid_t> {
    // SAFETY: forwarded to the caller's contract.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(pid)
    }
}

/// Forks like [`fork`], straight into the cgroup2 directory `cgroup` with
/// `clone3(CLONE_INTO_CGROUP)` when one is given: no migration afterwards, so none of the
/// kernel's threadgroup locking. Returns (pid, forked into the cgroup?); falls back to
/// a plain fork when the kernel refuses.
///
/// # Safety
/// As [`fork`].
pub(crate) unsafe fn fork_into(
    cgroup: Option<std::os::fd::BorrowedFd<'_>>,
) -> std::io::Result<(libc::pid_t, bool)> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    if let Some(dir) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: dir.as_raw_fd() as u64,
            ..Default::default()
        };
        // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork; the
        // caller guarantees fork-safety.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if pid >= 0 {
            return Ok((pid as libc::pid_t, true));
        }
        tracing::debug!(
            "clone3(CLONE_INTO_CGROUP) refused ({}); forking",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: forwarded to the caller's contract.
    unsafe { fork() }.map(|p| (p, false))
}

/// Terminates a forked stage without running destructors or atexit handlers.
pub(crate) fn exit_stage(code: i32) -> ! {
    // SAFETY: _exit is always safe; it never returns.
    unsafe { libc::_exit(code) }
}

/// Formats an error with its whole source chain.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

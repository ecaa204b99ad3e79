//! A compiled filter and its installation with seccomp(2).
//!
//! Installation is the part that runs in the container process after fork, right before
//! `execve`: it is one syscall on memory prepared before the fork, allocates nothing, takes no
//! lock and calls nothing in libseccomp, so it is safe in a child of a multi-threaded parent.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::bpf::{self, BpfError, SeccompData, SockFilter, Verdict};
use crate::kernel::{self, FLAG_NEW_LISTENER};

/// A seccomp program ready to install: BPF instructions plus seccomp(2) flags.
///
/// Made by [`compile`](crate::compile) in the runtime before it forks; serialisable, so a runtime
/// that re-executes itself for the container's init can pass it along.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledFilter {
    #[serde(with = "bpf::hex_program")]
    pub(crate) program: Vec<SockFilter>,
    pub(crate) flags: u32,
    pub(crate) has_notify: bool,
}

/// Installing a filter failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The kernel refused because the process has neither `no_new_privs` nor `CAP_SYS_ADMIN`.
    #[error("cannot install seccomp filter: it needs no_new_privs or CAP_SYS_ADMIN")]
    NotPermitted {
        /// The `EACCES` from seccomp(2).
        #[source]
        source: io::Error,
    },
    /// seccomp(2) failed for another reason (bad program, unsupported flags, TSYNC conflict).
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}) with {instructions} instructions failed")]
    SetFilter {
        /// The flags passed.
        flags: u32,
        /// Length of the program.
        instructions: usize,
        /// The error from the kernel.
        #[source]
        source: io::Error,
    },
    /// An empty program, or one longer than the kernel's `BPF_MAXINSNS` (4096).
    #[error("seccomp program has {instructions} instructions, the kernel takes 1 to 4096")]
    BadLength {
        /// Length of the program.
        instructions: usize,
    },
    /// With `SECCOMP_FILTER_FLAG_TSYNC`: another thread could not be synchronised.
    #[error("seccomp filter TSYNC failed: thread {tid} cannot be synchronised")]
    Tsync {
        /// The thread the kernel named.
        tid: libc::c_long,
    },
}

impl CompiledFilter {
    /// The BPF program, in the kernel's `struct sock_filter` layout.
    pub fn program(&self) -> &[SockFilter] {
        &self.program
    }

    /// The program as the bytes `seccomp_export_bpf` would write (native endian).
    pub fn program_bytes(&self) -> Vec<u8> {
        self.program
            .iter()
            .flat_map(|insn| insn.to_bytes())
            .collect()
    }

    /// The flags passed to seccomp(2): the profile's supported flags, plus
    /// `SECCOMP_FILTER_FLAG_NEW_LISTENER` when a listener is needed.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether [`install`](Self::install) returns a listener fd, which the runtime must then pass
    /// to the agent at `listenerPath` (see [`crate::listener`]).
    ///
    /// True when the profile has `SCMP_ACT_NOTIFY` rules, and also when it has a `listenerPath`
    /// without them: crun sends the agent a listener in that case (that will never see a
    /// notification), and podman and crun's test-suite rely on it.
    pub fn needs_listener(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }

    /// Whether some rule has the `SCMP_ACT_NOTIFY` action.
    pub fn has_notify_rules(&self) -> bool {
        self.has_notify
    }

    /// Runs the program on `data` without installing it: what the kernel would decide.
    pub fn evaluate(&self, data: &SeccompData) -> Result<Verdict, BpfError> {
        bpf::run(&self.program, data).map(Verdict::from_ret)
    }

    /// Installs the filter on the calling thread (on every thread with TSYNC) and returns the
    /// notify listener when [`needs_listener`](Self::needs_listener).
    ///
    /// Call it last before `execve`: everything after it is filtered. The process must have
    /// `no_new_privs` set, or hold `CAP_SYS_ADMIN` in its user namespace at this point; a
    /// runtime that does not set `no_new_privs` (`process.noNewPrivileges: false`) must therefore
    /// drop capabilities after this call, or keep `CAP_SYS_ADMIN` in the effective set until it.
    ///
    /// This makes exactly one syscall and no heap allocation, so it may run in the child of a
    /// multi-threaded process after `fork`. The listener is close-on-exec: it must reach the agent
    /// before `execve`.
    pub fn install(&self) -> Result<Option<OwnedFd>, InstallError> {
        let instructions = self.program.len();
        if instructions == 0 || instructions > bpf::MAX_INSTRUCTIONS {
            // compile() never makes these; a deserialised filter might.
            return Err(InstallError::BadLength { instructions });
        }
        let prog = libc::sock_fprog {
            len: instructions as libc::c_ushort,
            filter: self.program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: `prog` points to `self.program`, which outlives the call, is laid out as
        // `struct sock_filter` (checked at compile time in bpf.rs) and has exactly `prog.len`
        // elements; the kernel only reads it.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                kernel::SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &prog as *const libc::sock_fprog,
            )
        };
        if ret < 0 {
            let source = io::Error::last_os_error();
            return Err(if source.raw_os_error() == Some(libc::EACCES) {
                InstallError::NotPermitted { source }
            } else {
                InstallError::SetFilter {
                    flags: self.flags,
                    instructions,
                    source,
                }
            });
        }
        if self.needs_listener() {
            // SAFETY: with NEW_LISTENER a successful seccomp(2) returns a new fd that nothing
            // else owns.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
        }
        if ret > 0 {
            // Without TSYNC_ESRCH, a TSYNC failure returns the offending thread id.
            return Err(InstallError::Tsync { tid: ret });
        }
        Ok(None)
    }
}

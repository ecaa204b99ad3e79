//! The agent side of `SCMP_ACT_NOTIFY`: receiving notifications on a listener fd and answering
//! them (`SECCOMP_IOCTL_NOTIF_*`, see seccomp_unotify(2)).
//!
//! A runtime does not need this; an agent, a test, or an engine that supervises its containers'
//! syscalls does.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::bpf::SeccompData;

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Default)]
struct RawNotif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
struct RawResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const _: () = assert!(std::mem::size_of::<RawNotif>() == 80);
const _: () = assert!(std::mem::size_of::<RawResp>() == 24);

// _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp),
// _IOW('!', 2, __u64).
const IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const IOCTL_NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;

/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`.
const FLAG_CONTINUE: u32 = 1;

/// A syscall waiting for the agent's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// Cookie to answer with; valid until answered or until the caller dies.
    pub id: u64,
    /// The calling thread, in the agent's pid namespace (0 if not visible there).
    pub pid: u32,
    /// Notification flags (none defined yet).
    pub flags: u32,
    /// The syscall, its architecture and arguments.
    pub data: SeccompData,
}

/// The agent's decision for a notified syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The syscall returns this value without running.
    Value(i64),
    /// The syscall fails with this (positive) errno without running.
    Errno(i32),
    /// The kernel runs the syscall as if the filter had allowed it (Linux 5.5). Not a security
    /// boundary: the caller may have changed its pointed-to arguments meanwhile.
    Continue,
}

/// A notify ioctl failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `SECCOMP_IOCTL_NOTIF_RECV` failed.
    #[error("cannot receive a seccomp notification on fd {fd}")]
    Receive {
        /// The listener fd.
        fd: i32,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `SECCOMP_IOCTL_NOTIF_SEND` failed (`ENOENT`: the caller died or was interrupted).
    #[error("cannot answer seccomp notification {id} on fd {fd}")]
    Respond {
        /// The listener fd.
        fd: i32,
        /// The notification.
        id: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `SECCOMP_IOCTL_NOTIF_ID_VALID` failed for another reason than an invalid id.
    #[error("cannot check seccomp notification {id} on fd {fd}")]
    IdValid {
        /// The listener fd.
        fd: i32,
        /// The notification.
        id: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Waits for the next notification on `listener` (blocking unless the fd is non-blocking).
pub fn receive(listener: BorrowedFd<'_>) -> Result<Notification, NotifyError> {
    let fd = listener.as_raw_fd();
    loop {
        // The kernel requires the buffer to be zeroed.
        let mut raw = RawNotif::default();
        // SAFETY: `raw` is a live, zeroed `struct seccomp_notif` the kernel writes into.
        let ret = unsafe { libc::ioctl(fd, IOCTL_NOTIF_RECV, &mut raw as *mut RawNotif) };
        if ret == 0 {
            return Ok(Notification {
                id: raw.id,
                pid: raw.pid,
                flags: raw.flags,
                data: raw.data,
            });
        }
        let source = io::Error::last_os_error();
        if source.kind() != io::ErrorKind::Interrupted {
            return Err(NotifyError::Receive { fd, source });
        }
    }
}

/// Answers notification `id` on `listener`.
pub fn respond(listener: BorrowedFd<'_>, id: u64, response: Response) -> Result<(), NotifyError> {
    let fd = listener.as_raw_fd();
    let mut raw = RawResp {
        id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match response {
        Response::Value(val) => raw.val = val,
        Response::Errno(errno) => raw.error = -errno,
        Response::Continue => raw.flags = FLAG_CONTINUE,
    }
    // SAFETY: `raw` is a live `struct seccomp_notif_resp`; the kernel reads it.
    let ret = unsafe { libc::ioctl(fd, IOCTL_NOTIF_SEND, &mut raw as *mut RawResp) };
    if ret == 0 {
        return Ok(());
    }
    Err(NotifyError::Respond {
        fd,
        id,
        source: io::Error::last_os_error(),
    })
}

/// Whether notification `id` is still pending (its caller alive and waiting): check it after
/// reading the caller's memory through `/proc/PID/mem` and before acting on what was read.
pub fn id_valid(listener: BorrowedFd<'_>, id: u64) -> Result<bool, NotifyError> {
    let fd = listener.as_raw_fd();
    // SAFETY: the kernel reads one u64 from the pointer, which points to a live local.
    let ret = unsafe { libc::ioctl(fd, IOCTL_NOTIF_ID_VALID, &id as *const u64) };
    if ret == 0 {
        return Ok(true);
    }
    let source = io::Error::last_os_error();
    if source.raw_os_error() == Some(libc::ENOENT) {
        return Ok(false);
    }
    Err(NotifyError::IdValid { fd, id, source })
}

//! Handing the notify listener to the seccomp agent listening at `linux.seccomp.listenerPath`.
//!
//! runtime-spec (config-linux.md, "The Container Process State"): the runtime connects to the
//! `AF_UNIX`/`SOCK_STREAM` socket, sends the container process state as JSON in the payload with
//! the listener fd in `SCM_RIGHTS` (named `seccompFd` in `fds`), sends exactly one state per
//! connection and closes it. A failure to send is an error of the create operation.
//!
//! Two ways to get the listener, which only exists in the container process, to the agent:
//! - runc's: the init installs the filter, writes the fd *number* to the runtime over its sync
//!   socket and waits; the runtime copies the fd out with [`take`] (`pidfd_getfd`), builds the
//!   state with the pid it knows, [`encode`]s and [`send`]s it, then lets the init go on to
//!   `execve`. Only a `write` and a `read` run in the init under the filter (hence NOTIFY on
//!   `write` is refused).
//! - in the init itself: [`send`] only makes syscalls (socket, connect, sendmsg, close) on memory
//!   prepared earlier and allocates nothing, so it can run between
//!   [`CompiledFilter::install`](crate::CompiledFilter::install) and `execve` with a payload
//!   encoded before the fork, provided the profile allows those syscalls.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{ContainerProcessState, State, SECCOMP_FD_NAME};
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};

/// Sending the listener to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The container process state could not be serialised.
    #[error("cannot encode the container process state for the seccomp agent")]
    Encode {
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The path does not fit a unix socket address (108 bytes) or contains a NUL.
    #[error("seccomp listenerPath {path:?} is not a valid unix socket path")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// The error from building the address.
        #[source]
        source: io::Error,
    },
    /// No socket could be created.
    #[error("cannot create a unix socket to reach the seccomp agent")]
    Socket {
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The agent's socket refused or does not exist.
    #[error("cannot connect to the seccomp agent at {path:?}")]
    Connect {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The listener could not be copied out of the container process.
    #[error("cannot take fd {fd} from process {pid} with pidfd_getfd")]
    Take {
        /// The container process.
        pid: i32,
        /// Its fd number for the listener.
        fd: i32,
        /// The error (EPERM without ptrace rights over it, ENOSYS before Linux 5.6).
        #[source]
        source: io::Error,
    },
    /// Sending the state and the fd failed.
    #[error("cannot send the seccomp listener to the agent at {path:?}")]
    Send {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The container process state the agent receives, per runtime-spec: `fds` is `["seccompFd"]`,
/// `pid` the container process as the runtime sees it, `metadata` the profile's
/// `listenerMetadata`, and `ociVersion` copied from `state`.
///
/// runc sends its spec version here; crun sends `"0.2.0"`, and crun's test-suite checks for it.
pub fn process_state(state: &State, pid: i32, metadata: Option<&str>) -> ContainerProcessState {
    let mut process_state = ContainerProcessState::default();
    process_state.set_version(state.version().clone());
    process_state.set_fds(vec![SECCOMP_FD_NAME.to_owned()]);
    process_state.set_pid(pid);
    process_state.set_metadata(metadata.map(str::to_owned));
    process_state.set_state(state.clone());
    process_state
}

/// Copies fd `fd` of process `pid` (the listener that [`install`](crate::CompiledFilter::install)
/// returned there) into this process, close-on-exec, with `pidfd_open` and `pidfd_getfd`.
pub fn take(pid: i32, fd: i32) -> Result<OwnedFd, ListenerError> {
    let error = |errno: rustix::io::Errno| ListenerError::Take {
        pid,
        fd,
        source: errno.into(),
    };
    let target = rustix::process::Pid::from_raw(pid).ok_or(error(rustix::io::Errno::SRCH))?;
    let pidfd =
        rustix::process::pidfd_open(target, rustix::process::PidfdFlags::empty()).map_err(error)?;
    rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
        .map_err(error)
}

/// Encodes the container process state as the JSON payload for [`send`].
pub fn encode(state: &ContainerProcessState) -> Result<Vec<u8>, ListenerError> {
    serde_json::to_vec(state).map_err(|source| ListenerError::Encode { source })
}

/// Connects to the agent at `path` and sends `payload` with `listener` in `SCM_RIGHTS`, then
/// closes the connection.
///
/// The fd goes with the first bytes; if the kernel takes only part of the payload the rest
/// follows in further writes without fds, as runtime-spec allows. No heap allocation happens
/// here (rustix builds the address and the control message on the stack).
pub fn send(path: &Path, listener: BorrowedFd<'_>, payload: &[u8]) -> Result<(), ListenerError> {
    let addr = SocketAddrUnix::new(path).map_err(|errno| ListenerError::BadPath {
        path: path.to_owned(),
        source: errno.into(),
    })?;
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|errno| ListenerError::Socket {
        source: errno.into(),
    })?;
    retry_on_intr(|| rustix::net::connect(&socket, &addr)).map_err(|errno| {
        ListenerError::Connect {
            path: path.to_owned(),
            source: errno.into(),
        }
    })?;

    let send_error = |errno: rustix::io::Errno| ListenerError::Send {
        path: path.to_owned(),
        source: errno.into(),
    };
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [listener];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(send_error(rustix::io::Errno::NOBUFS));
    }
    let iov = [IoSlice::new(payload)];
    let mut sent =
        retry_on_intr(|| rustix::net::sendmsg(&socket, &iov, &mut control, SendFlags::NOSIGNAL))
            .map_err(send_error)?;
    while sent < payload.len() {
        sent += retry_on_intr(|| rustix::net::send(&socket, &payload[sent..], SendFlags::NOSIGNAL))
            .map_err(send_error)?;
    }
    Ok(())
}

fn retry_on_intr<T>(mut op: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match op() {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::ContainerState;

    #[test]
    fn process_state_has_the_spec_shape() {
        let mut state = State::default();
        state.set_version("1.2.0".to_owned());
        state.set_id("ctr".to_owned());
        state.set_status(ContainerState::Creating);
        state.set_pid(Some(4422));
        state.set_bundle("/bundles/ctr".into());
        let payload = encode(&process_state(&state, 4422, Some("MKNOD=/dev/null"))).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ociVersion": "1.2.0",
                "fds": ["seccompFd"],
                "pid": 4422,
                "metadata": "MKNOD=/dev/null",
                "state": {
                    "ociVersion": "1.2.0",
                    "id": "ctr",
                    "status": "creating",
                    "pid": 4422,
                    "bundle": "/bundles/ctr"
                }
            })
        );
    }

    #[test]
    fn metadata_is_omitted_when_absent() {
        let payload = encode(&process_state(&State::default(), 1, None)).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert!(json.get("metadata").is_none(), "{json}");
    }

    #[test]
    fn connect_failure_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody-listens");
        let fd = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        let err = send(&path, fd.as_fd(), b"{}").unwrap_err();
        assert!(matches!(err, ListenerError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains("nobody-listens"), "{err}");
    }

    #[test]
    fn overlong_path_is_refused() {
        let path = PathBuf::from(format!("/tmp/{}", "x".repeat(200)));
        let fd = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        let err = send(&path, fd.as_fd(), b"{}").unwrap_err();
        assert!(matches!(err, ListenerError::BadPath { .. }), "{err:?}");
    }
}

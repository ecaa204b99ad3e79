//! The socket between the runtime's parent process and the container's set-up stages.
//!
//! One `SOCK_SEQPACKET` socketpair, one JSON-encoded [`Msg`] per packet, file
//! descriptors riding along with `SCM_RIGHTS`. After fork each side closes the other's
//! end, so a stage that dies is seen as end-of-file.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

/// Messages between the parent and the bootstrap/init stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// bootstrap → parent: I am in my new user namespace; write my id mappings (and,
    /// when asked for, prepare detached mount trees).
    UserNsCreated,
    /// bootstrap → parent: process PID (a helper of the bootstrap) is in the container's
    /// new user namespace; write its id mappings (and prepare detached mount trees), as
    /// for `UserNsCreated`.
    UserNsCreatedIn(i32),
    /// parent → bootstrap: mappings written; `n` detached mount trees follow as fds,
    /// for these mount indexes.
    MappingsDone {
        /// Mount indexes the attached fds belong to, in order.
        mounts: Vec<usize>,
    },
    /// bootstrap → parent: the container's init has this host pid.
    InitPid(i32),
    /// init → parent: mounts are done; run the prestart and createRuntime hooks.
    MountsDone,
    /// init → parent: the pty master is attached.
    Console,
    /// init → parent: the seccomp notify fd is attached.
    SeccompFd,
    /// init → parent: set-up complete; waiting for `start`.
    Ready,
    /// any stage → parent: set-up failed.
    Error(String),
    /// parent → stage: go on.
    Ack,
}

/// Errors on the channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// socketpair/sendmsg/recvmsg failed.
    #[error("sync socket: {op}")]
    Io {
        /// What failed.
        op: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The other side closed its end (it exited).
    #[error("sync socket: the other side exited before answering")]
    Closed,
    /// A packet that is not a message.
    #[error("sync socket: malformed message")]
    Malformed(#[source] serde_json::Error),
    /// A message other than the expected one.
    #[error("sync socket: expected {expected}, got {got:?}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// What came.
        got: Msg,
    },
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

const MAX_MSG: usize = 64 * 1024;
const MAX_FDS: usize = 200;

/// Makes a connected pair.
pub fn pair() -> Result<(Channel, Channel), ChannelError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ChannelError::Io {
        op: "socketpair",
        source: e.into(),
    })?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// The raw fd (kept open across fork by the child that uses it).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sends a message.
    pub fn send(&self, msg: &Msg) -> Result<(), ChannelError> {
        self.send_fds(msg, &[])
    }

    /// Sends a message with fds attached (at most 200).
    pub fn send_fds(&self, msg: &Msg, fds: &[RawFd]) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg).expect("messages serialize");
        let iov = [IoSlice::new(&bytes)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EPIPE) => return Err(ChannelError::Closed),
                Err(e) => {
                    return Err(ChannelError::Io {
                        op: "sendmsg",
                        source: e.into(),
                    })
                }
            }
        }
    }

    /// Receives a message and any fds that came with it.
    pub fn recv(&self) -> Result<(Msg, Vec<OwnedFd>), ChannelError> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (n, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => {
                    let mut fds = Vec::new();
                    for c in m.cmsgs().map_err(|e| ChannelError::Io {
                        op: "recvmsg",
                        source: e.into(),
                    })? {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            for fd in raw {
                                // SAFETY: the kernel just installed these fds for us.
                                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                    break (m.bytes, fds);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(ChannelError::Io {
                        op: "recvmsg",
                        source: e.into(),
                    })
                }
            }
        };
        if n == 0 {
            return Err(ChannelError::Closed);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(ChannelError::Malformed)?;
        Ok((msg, fds))
    }

    /// Receives and expects an [`Msg::Ack`]; an [`Msg::Error`] becomes an error.
    pub fn expect_ack(&self) -> Result<(), ChannelError> {
        match self.recv()?.0 {
            Msg::Ack => Ok(()),
            got => Err(ChannelError::Unexpected {
                expected: "ack",
                got,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fds() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        a.send_fds(&Msg::Console, &[f.as_raw_fd()]).unwrap();
        let (m, fds) = b.recv().unwrap();
        assert_eq!(m, Msg::Console);
        assert_eq!(fds.len(), 1);
        b.send(&Msg::Error("boom".into())).unwrap();
        assert_eq!(a.recv().unwrap().0, Msg::Error("boom".into()));
    }

    #[test]
    fn closed_peer_is_seen() {
        let (a, b) = pair().unwrap();
        drop(b);
        assert!(matches!(a.recv(), Err(ChannelError::Closed)));
        assert!(matches!(a.send(&Msg::Ack), Err(ChannelError::Closed)));
    }
}

//! `attach`: a client of the container's monitor (see [`liana_monitor::attach`] for
//! the protocol). With a terminal, Ctrl-P Ctrl-Q detaches, as in docker.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;

use liana_monitor::attach::{self, Decoder};
use liana_monitor::sys::{self, SigSet};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::record::Status;

/// How `attach` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container exited with this code.
    Exited(i32),
    /// The user detached.
    Detached,
}

impl Engine {
    /// Attaches our stdio to a running container (`stdin`: forward ours).
    pub fn attach(&self, needle: &str, stdin: bool) -> Result<AttachEnd> {
        let c = self.lookup(needle)?;
        let status = c.observe(&self.paths).0;
        if status != Status::Running {
            return Err(Error::InvalidState {
                id: c.id.clone(),
                status,
                what: "can only attach to running containers",
            });
        }
        let run_dir = self.paths.run_dir(&c.id);
        let (path, _keep) = crate::start::socket_path(&run_dir, "attach", false)?;
        let sock = UnixStream::connect(&path)
            .map_err(Error::io("connect to the monitor", run_dir.join("attach")))?;
        let tty = c.settings.tty;
        // SAFETY: isatty takes an fd number.
        let our_tty = unsafe { libc::isatty(0) } == 1;
        let _raw = if tty && our_tty {
            liana_container::tty::RawMode::enter(0)
        } else {
            None
        };
        let mut sigs = SigSet::empty();
        sigs.add(libc::SIGWINCH);
        sigs.block().map_err(Error::sys("block SIGWINCH"))?;
        let sfd = sigs.signalfd().map_err(Error::sys("signalfd"))?;
        // SAFETY: fd 0 stays open for the whole process.
        let stdin_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        let send_size = |s: &UnixStream| {
            if let Some((r, cols)) = sys::get_winsize(stdin_fd) {
                let mut p = r.to_be_bytes().to_vec();
                p.extend_from_slice(&cols.to_be_bytes());
                let _ = (&*s).write_all(&attach::frame(attach::RESIZE, &p));
            }
        };
        if tty && our_tty {
            send_size(&sock);
        }
        let mut stdin_open = stdin && c.settings.interactive;
        let mut dec = Decoder::default();
        let mut buf = vec![0u8; 32 * 1024];
        let mut last_ctrl_p = false;
        loop {
            let mut p = vec![
                libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            if stdin_open {
                p.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            // SAFETY: a valid pollfd array.
            if unsafe { libc::poll(p.as_mut_ptr(), p.len() as _, -1) } < 0 {
                continue;
            }
            if p[1].revents != 0 {
                while sys::read_signal(sfd.as_fd()).is_some() {}
                send_size(&sock);
            }
            if p.len() > 2 && p[2].revents != 0 {
                match sys::read(0, &mut buf) {
                    Ok(n) if n > 0 => {
                        let data = &buf[..n];
                        if tty {
                            for &b in data {
                                if last_ctrl_p && b == 0x11 {
                                    return Ok(AttachEnd::Detached);
                                }
                                last_ctrl_p = b == 0x10;
                            }
                        }
                        let _ = (&sock).write_all(&attach::frame(attach::STDIN, data));
                    }
                    _ => {
                        stdin_open = false;
                        if !tty {
                            let _ = (&sock).write_all(&attach::frame(attach::CLOSE_STDIN, &[]));
                        }
                    }
                }
            }
            if p[0].revents != 0 {
                let n = sys::read(sock.as_raw_fd(), &mut buf).unwrap_or(0);
                if n == 0 {
                    return Ok(AttachEnd::Exited(self.wait(&c.id)?));
                }
                dec.push(&buf[..n]);
                while let Ok(Some((kind, payload))) = dec.next_frame() {
                    match kind {
                        attach::STDOUT => {
                            let _ = sys::write_all(1, &payload);
                        }
                        attach::STDERR => {
                            let _ = sys::write_all(2, &payload);
                        }
                        attach::EXIT if payload.len() == 4 => {
                            let code = i32::from_be_bytes([
                                payload[0], payload[1], payload[2], payload[3],
                            ]);
                            return Ok(AttachEnd::Exited(code));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

//! `run`: create + start, then (in the foreground) forward signals to the container's
//! init, copy its terminal, and return its exit status.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{poll, PollFd, PollFlags};

use super::{start_locked, CreateRequest, Runtime};
use crate::error::{Error, Result};
use crate::tty::{self, RawMode};

/// How `run` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// `--detach`: the container runs on.
    Detached,
    /// The container's init exited with this status (128+N for signal N).
    Exited(i32),
}

pub(crate) fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
        Signal::SIGKILL,
        Signal::SIGSTOP,
    ] {
        set.remove(s);
    }
    set
}

impl Runtime {
    /// `run [--detach] [--keep]`.
    pub fn run(&self, req: &CreateRequest, detach: bool, keep: bool) -> Result<RunOutcome> {
        if detach {
            let created = self.create_inner(req, false)?;
            if let Err(e) = start_locked(&created.dir, &created.saved) {
                super::kill_and_wait(&created.saved);
                let _ = super::destroy(created.dir, &created.saved);
                return Err(e);
            }
            return Ok(RunOutcome::Detached);
        }
        let mask = forwarded_signals();
        mask.thread_block()
            .map_err(|e| Error::sys("block signals")(e.into()))?;
        let created = self.create_inner(req, true)?;
        if let Err(e) = start_locked(&created.dir, &created.saved) {
            super::kill_and_wait(&created.saved);
            let _ = super::destroy(created.dir, &created.saved);
            return Err(e);
        }
        let super::Created {
            dir,
            saved,
            console,
        } = created;
        // Let other commands (state, kill, exec) at the container while it runs.
        drop(dir);
        let code = wait(saved.pid, console, &mask)?;
        if !keep {
            if let Err(e) = self.delete(&saved.id, true) {
                tracing::warn!("delete after run: {}", crate::process::chain(&e));
            }
        }
        Ok(RunOutcome::Exited(code))
    }
}

fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// Waits for `init`, forwarding signals and copying the terminal.
pub(crate) fn wait(init: i32, console: Option<OwnedFd>, mask: &SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd")(e.into()))?;
    // SAFETY: fds 0 and 1 are the runtime's stdio for its whole life.
    let (stdin, stdout) = unsafe { (BorrowedFd::borrow_raw(0), BorrowedFd::borrow_raw(1)) };
    let _raw = console.as_ref().and_then(|_| RawMode::enter(0));
    if let Some(m) = &console {
        if let Some((r, c)) = tty::get_size(stdin).or_else(|| tty::get_size(stdout)) {
            let _ = tty::set_size(m.as_fd(), r, c);
        }
    }
    let mut read_stdin = console.is_some();
    let mut read_master = console.is_some();
    let mut status = None;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if status.is_some() && !read_master {
            break;
        }
        let mut fds = vec![PollFd::new(&sfd, PollFlags::IN)];
        let master_ix = match (&console, read_master) {
            (Some(m), true) => {
                fds.push(PollFd::new(m, PollFlags::IN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let stdin_ix = if read_stdin {
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
            Some(fds.len() - 1)
        } else {
            None
        };
        // Once the init is gone, only drain what the terminal still holds.
        let timeout = status.map(|_| rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        });
        let n = match poll(&mut fds, timeout.as_ref()) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("poll")(e.into())),
        };
        if n == 0 && status.is_some() {
            break;
        }
        let ready = |i: usize| !fds[i].revents().is_empty();
        let sig_ready = ready(0);
        let master_ready = master_ix.is_some_and(ready);
        let stdin_ready = stdin_ix.is_some_and(ready);
        drop(fds);
        if sig_ready {
            while let Ok(Some(si)) = sfd.read_signal() {
                let sig = si.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    loop {
                        let mut st = 0;
                        // SAFETY: waitpid with WNOHANG on any child.
                        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
                        if pid <= 0 {
                            break;
                        }
                        if pid == init {
                            status = Some(exit_code(st));
                        }
                    }
                } else if sig == libc::SIGWINCH {
                    if let (Some(m), Some((r, c))) = (&console, tty::get_size(stdin)) {
                        let _ = tty::set_size(m.as_fd(), r, c);
                    }
                } else {
                    // SAFETY: kill takes integers.
                    unsafe { libc::kill(init, sig) };
                }
            }
        }
        if master_ready {
            let m = console.as_ref().expect("polled");
            match rustix::io::read(m, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => read_master = false,
                Ok(k) => write_all(stdout, &buf[..k]),
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(_) => read_master = false,
            }
        }
        if stdin_ready {
            match rustix::io::read(stdin, &mut buf) {
                Ok(0) | Err(_) => read_stdin = false,
                Ok(k) => {
                    if let Some(m) = &console {
                        write_all(m.as_fd(), &buf[..k]);
                    }
                }
            }
        }
        if status.is_some() && console.is_none() {
            break;
        }
    }
    Ok(status.unwrap_or(1))
}

//! Terminals: the container's pty, /dev/console, the `--console-socket` hand-off, and
//! the copy loop `run` uses when it owns the terminal itself.
//!
//! The pty is allocated inside the container (from its own devpts instance) and the
//! slave is obtained with TIOCGPTPEER rather than by path, so a planted /dev/pts/N
//! symlink cannot redirect it (CVE-2025-52565); a /dev/console that is a symlink is
//! refused for the same reason.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use rustix::fs::{FileType, Mode, OFlags};

use crate::resolve::Root;
use crate::sys;

/// A terminal step that failed.
#[derive(Debug, thiserror::Error)]
#[error("terminal: {op}")]
pub struct TtyError {
    /// What failed.
    pub op: String,
    /// Cause.
    #[source]
    pub source: io::Error,
}

fn err(op: impl Into<String>) -> impl FnOnce(io::Error) -> TtyError {
    let op = op.into();
    move |source| TtyError { op, source }
}

const TIOCGPTPEER: libc::c_ulong = 0x5441;

/// Allocates a pty from the devpts instance at /dev/pts (the container's, after
/// pivot_root). Returns (master, slave).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd), TtyError> {
    let master = rustix::fs::open(
        "/dev/ptmx",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open /dev/ptmx")(e.into()))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int; TIOCGPTPEER returns a new fd.
    let slave = unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(err("unlock pty")(io::Error::last_os_error()));
        }
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(err("open pty peer")(io::Error::last_os_error()));
    }
    // SAFETY: the ioctl returned a new fd owned by nobody else.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

/// Sets a terminal's window size.
pub fn set_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a terminal's window size.
pub fn get_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize struct.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Makes the slave the process's controlling terminal and stdio, and bind-mounts it on
/// /dev/console (refusing a symlink there).
pub fn attach_console(slave: &OwnedFd, size: Option<(u16, u16)>) -> Result<(), TtyError> {
    bind_console(slave)?;
    if let Some((rows, cols)) = size {
        set_size(slave.as_fd(), rows, cols).map_err(err("set console size"))?;
    }
    for target in 0..3 {
        // SAFETY: dup2 onto stdio of the calling process.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(err(format!("dup pty onto fd {target}"))(
                io::Error::last_os_error(),
            ));
        }
    }
    // SAFETY: TIOCSCTTY takes an integer.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(err("set controlling terminal")(io::Error::last_os_error()));
    }
    Ok(())
}

fn bind_console(slave: &OwnedFd) -> Result<(), TtyError> {
    let root = Root::open(Path::new("/")).map_err(err("open /"))?;
    let dev = root
        .open_at("dev", OFlags::PATH | OFlags::DIRECTORY)
        .map_err(err("open /dev"))?;
    match rustix::fs::statat(&dev, "console", rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
            return Err(err("refusing /dev/console: it is a symlink")(
                io::Error::from_raw_os_error(libc::ELOOP),
            ));
        }
        Ok(_) => {}
        Err(_) => {
            let dev_rw = root
                .open_at("dev", OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(err("open /dev"))?;
            rustix::fs::openat(
                &dev_rw,
                "console",
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| err("create /dev/console")(e.into()))?;
        }
    }
    let target = rustix::fs::openat(
        &dev,
        "console",
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open /dev/console")(e.into()))?;
    sys::mount(
        Some(&sys::fd_path(slave.as_fd())),
        &sys::fd_path(target.as_fd()),
        None,
        libc::MS_BIND,
        None,
    )
    .map_err(err("bind pty on /dev/console"))
}

/// A console socket could not take the pty.
#[derive(Debug, thiserror::Error)]
#[error("console socket {path}: {op}")]
pub struct ConsoleSocketError {
    /// The socket path.
    pub path: PathBuf,
    /// What failed.
    pub op: &'static str,
    /// Cause.
    #[source]
    pub source: io::Error,
}

/// Sends the pty master over the unix socket at `path` (SCM_RIGHTS), as runc does.
pub fn send_to_socket(path: &Path, master: BorrowedFd<'_>) -> Result<(), ConsoleSocketError> {
    let e = |op| {
        move |source| ConsoleSocketError {
            path: path.to_owned(),
            op,
            source,
        }
    };
    let stream = UnixStream::connect(path).map_err(e("connect"))?;
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|errno| e("send pty master")(errno.into()))?;
    Ok(())
}

/// Terminal mode of the runtime's own stdin, restored on drop.
#[derive(Debug)]
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Puts `fd` in raw mode if it is a terminal.
    pub fn enter(fd: RawFd) -> Option<Self> {
        // SAFETY: tcgetattr/tcsetattr on an fd with valid termios structs.
        unsafe {
            if libc::isatty(fd) != 1 {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            Some(Self { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the saved termios on the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

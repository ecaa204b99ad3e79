//! The monitor loop: copies the container's output to the log, to attach clients and
//! (in a foreground `run`) to the caller's own stdout and stderr; feeds its stdin from
//! attach clients or the caller's stdin; reaps children until the container's init
//! exits.
//!
//! The caller blocks the signals of [`Options::signals`] (which must include SIGCHLD)
//! *before* the container's init exists, so that its exit cannot be missed; the loop
//! reads them from a signalfd.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::SystemTime;

use crate::attach;
use crate::exitfile::Exit;
use crate::logfile::{LogWriter, Stream};
use crate::sys::{self, SigSet};

/// The container's end of its stdio, as the monitor holds it.
#[derive(Debug, Default)]
pub struct Io {
    /// Write end of the container's stdin pipe.
    pub stdin: Option<OwnedFd>,
    /// Read end of the container's stdout pipe.
    pub stdout: Option<OwnedFd>,
    /// Read end of the container's stderr pipe.
    pub stderr: Option<OwnedFd>,
    /// The pty master, when the container has a terminal (instead of the pipes).
    pub console: Option<OwnedFd>,
}

/// The calling process's own stdio as a client (foreground `run`, `start -a`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Local {
    /// Copy our stdin (fd 0) to the container.
    pub stdin: bool,
    /// Our stdin is a terminal whose size the container's terminal follows.
    pub tty: bool,
}

/// What the loop needs.
pub struct Options<'a> {
    /// The container's init (a child of this process).
    pub pid: i32,
    /// The container's stdio.
    pub io: Io,
    /// Where output is recorded.
    pub log: Option<LogWriter>,
    /// Listening attach socket.
    pub attach: Option<OwnedFd>,
    /// The local client, if any.
    pub local: Option<Local>,
    /// The signals the caller blocked; SIGCHLD must be one of them.
    pub signals: SigSet,
    /// Called with every signal received other than SIGCHLD (and SIGWINCH with a local
    /// terminal): a foreground run forwards it to the container.
    pub on_signal: &'a mut dyn FnMut(i32),
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("pid", &self.pid)
            .field("io", &self.io)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

const BUF: usize = 32 * 1024;
const MAX_PENDING_IN: usize = 64 * 1024;
const MAX_PENDING_OUT: usize = 4 << 20;
const MAX_CLIENTS: usize = 32;

struct Client {
    fd: OwnedFd,
    dec: attach::Decoder,
    pending: Vec<u8>,
    dead: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Sig,
    Out(Stream),
    Console,
    Listener,
    LocalIn,
    InTarget,
    Client(usize),
}

struct State<'a> {
    o: Options<'a>,
    exit: Option<Exit>,
    clients: Vec<Client>,
    inbuf: Vec<u8>,
    close_stdin: bool,
    local_in_open: bool,
    buf: Vec<u8>,
}

/// Runs until the init exits; returns how it ended.
pub fn supervise(o: Options<'_>) -> io::Result<Exit> {
    if !o.signals.contains(libc::SIGCHLD) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "SIGCHLD must be blocked",
        ));
    }
    let sfd = o.signals.signalfd()?;
    for fd in [&o.io.stdout, &o.io.stderr, &o.io.console, &o.attach]
        .into_iter()
        .flatten()
    {
        sys::set_nonblocking(fd.as_fd(), true)?;
    }
    if let Some(fd) = &o.io.stdin {
        sys::set_nonblocking(fd.as_fd(), true)?;
    }
    let local_in_open = o.local.is_some_and(|l| l.stdin);
    let mut st = State {
        o,
        exit: None,
        clients: Vec::new(),
        inbuf: Vec::new(),
        close_stdin: false,
        local_in_open,
        buf: vec![0u8; BUF],
    };
    st.reap();
    if let (Some(l), Some(c)) = (st.o.local, &st.o.io.console) {
        if l.tty {
            // SAFETY: fd 0 is the caller's stdin for the whole call.
            let stdin = unsafe { BorrowedFd::borrow_raw(0) };
            if let Some((r, cols)) = sys::get_winsize(stdin) {
                sys::set_winsize(c.as_fd(), r, cols);
            }
        }
    }
    let mut tags = Vec::new();
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    while st.exit.is_none() {
        tags.clear();
        pfds.clear();
        let mut add = |tags: &mut Vec<Tag>, fd: i32, ev: i16, t: Tag| {
            tags.push(t);
            pfds.push(libc::pollfd {
                fd,
                events: ev,
                revents: 0,
            });
        };
        add(&mut tags, sfd.as_raw_fd(), libc::POLLIN, Tag::Sig);
        if let Some(fd) = &st.o.io.stdout {
            add(
                &mut tags,
                fd.as_raw_fd(),
                libc::POLLIN,
                Tag::Out(Stream::Stdout),
            );
        }
        if let Some(fd) = &st.o.io.stderr {
            add(
                &mut tags,
                fd.as_raw_fd(),
                libc::POLLIN,
                Tag::Out(Stream::Stderr),
            );
        }
        if let Some(fd) = &st.o.io.console {
            add(&mut tags, fd.as_raw_fd(), libc::POLLIN, Tag::Console);
        }
        if let Some(fd) = &st.o.attach {
            if st.clients.len() < MAX_CLIENTS {
                add(&mut tags, fd.as_raw_fd(), libc::POLLIN, Tag::Listener);
            }
        }
        let room = st.inbuf.len() < MAX_PENDING_IN;
        if st.local_in_open && room {
            add(&mut tags, 0, libc::POLLIN, Tag::LocalIn);
        }
        if !st.inbuf.is_empty() {
            if let Some(fd) = st.input_target() {
                add(&mut tags, fd.as_raw_fd(), libc::POLLOUT, Tag::InTarget);
            }
        }
        for (i, c) in st.clients.iter().enumerate() {
            let mut ev = if room { libc::POLLIN } else { 0 };
            if !c.pending.is_empty() {
                ev |= libc::POLLOUT;
            }
            add(&mut tags, c.fd.as_raw_fd(), ev, Tag::Client(i));
        }
        // SAFETY: `pfds` is a valid array of pollfd.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for (k, p) in pfds.iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            match tags[k] {
                Tag::Sig => {
                    while let Some(sig) = sys::read_signal(sfd.as_fd()) {
                        st.signal(sig);
                    }
                }
                Tag::Out(s) => {
                    st.read_output(s);
                }
                Tag::Console => {
                    st.read_output(Stream::Stdout);
                }
                Tag::Listener => st.accept(),
                Tag::LocalIn => st.read_local_stdin(),
                Tag::InTarget => st.flush_input(),
                Tag::Client(i) => {
                    if !st.clients[i].dead && !st.client_ready(i, p.revents) {
                        st.clients[i].dead = true;
                    }
                }
            }
        }
        st.clients.retain(|c| !c.dead);
    }
    // The init is gone: take what its processes left in the pipes, then tell clients.
    for s in [Some(Stream::Stdout), Some(Stream::Stderr), None] {
        for _ in 0..1024 {
            let had = match s {
                Some(s) => st.out_fd(s).is_some(),
                None => st.o.io.console.is_some(),
            };
            if !had || !st.read_output(s.unwrap_or(Stream::Stdout)) {
                break;
            }
        }
    }
    let exit = st.exit.expect("loop ends on exit");
    let frame = attach::frame(attach::EXIT, &exit.code.to_be_bytes());
    for c in st.clients.iter_mut().filter(|c| !c.dead) {
        c.pending.extend_from_slice(&frame);
        let _ = sys::set_nonblocking(c.fd.as_fd(), false);
        let _ = sys::write_all(c.fd.as_raw_fd(), &c.pending);
    }
    Ok(exit)
}

impl State<'_> {
    fn reap(&mut self) {
        while let Some((pid, status)) = sys::reap_any() {
            if pid == self.o.pid {
                self.exit = Some(Exit::from_wait_status(status, SystemTime::now()));
            }
        }
    }

    fn signal(&mut self, sig: i32) {
        match sig {
            libc::SIGCHLD => self.reap(),
            libc::SIGWINCH if self.o.local.is_some_and(|l| l.tty) => {
                // SAFETY: fd 0 is the caller's stdin for the whole call.
                let stdin = unsafe { BorrowedFd::borrow_raw(0) };
                if let (Some(c), Some((r, cols))) = (&self.o.io.console, sys::get_winsize(stdin)) {
                    sys::set_winsize(c.as_fd(), r, cols);
                }
            }
            _ => (self.o.on_signal)(sig),
        }
    }

    fn out_fd(&self, s: Stream) -> Option<&OwnedFd> {
        if self.o.io.console.is_some() {
            return self.o.io.console.as_ref();
        }
        match s {
            Stream::Stdout => self.o.io.stdout.as_ref(),
            Stream::Stderr => self.o.io.stderr.as_ref(),
        }
    }

    fn input_target(&self) -> Option<&OwnedFd> {
        self.o.io.console.as_ref().or(self.o.io.stdin.as_ref())
    }

    /// Reads one chunk from an output; false when nothing more is there now.
    fn read_output(&mut self, s: Stream) -> bool {
        let Some(fd) = self.out_fd(s).map(|f| f.as_raw_fd()) else {
            return false;
        };
        let console = self.o.io.console.is_some();
        match sys::read(fd, &mut self.buf) {
            Ok(0) => {}
            Ok(n) => {
                let data = std::mem::take(&mut self.buf);
                self.dispatch(s, &data[..n]);
                self.buf = data;
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => {}
        }
        // EOF, or EIO once the terminal's last holder is gone.
        if console {
            self.o.io.console = None;
        } else {
            match s {
                Stream::Stdout => self.o.io.stdout = None,
                Stream::Stderr => self.o.io.stderr = None,
            }
        }
        false
    }

    fn dispatch(&mut self, s: Stream, data: &[u8]) {
        if let Some(log) = &mut self.o.log {
            if let Err(e) = log.write(s, data) {
                eprintln!("liana-monitor: write log: {e}");
            }
        }
        if self.o.local.is_some() {
            let fd = if s == Stream::Stderr { 2 } else { 1 };
            let _ = sys::write_all(fd, data);
        }
        if self.clients.is_empty() {
            return;
        }
        let kind = if s == Stream::Stderr {
            attach::STDERR
        } else {
            attach::STDOUT
        };
        let frame = attach::frame(kind, data);
        for c in self.clients.iter_mut().filter(|c| !c.dead) {
            if c.pending.is_empty() {
                match sys::write(c.fd.as_raw_fd(), &frame) {
                    Ok(n) => c.pending.extend_from_slice(&frame[n..]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        c.pending.extend_from_slice(&frame)
                    }
                    Err(_) => c.dead = true,
                }
            } else {
                c.pending.extend_from_slice(&frame);
            }
            // A client that does not keep up is dropped rather than hold up the log.
            if c.pending.len() > MAX_PENDING_OUT {
                c.dead = true;
            }
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.o.attach else { return };
        if let Ok(fd) = sys::accept(l.as_fd()) {
            self.clients.push(Client {
                fd,
                dec: attach::Decoder::default(),
                pending: Vec::new(),
                dead: false,
            });
        }
    }

    fn read_local_stdin(&mut self) {
        match sys::read(0, &mut self.buf) {
            Ok(n) if n > 0 => {
                self.inbuf.extend_from_slice(&self.buf[..n]);
                self.flush_input();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            _ => {
                self.local_in_open = false;
                if self.o.io.console.is_none() {
                    self.close_stdin = true;
                    self.flush_input();
                }
            }
        }
    }

    fn flush_input(&mut self) {
        if let Some(fd) = self.input_target().map(|f| f.as_raw_fd()) {
            while !self.inbuf.is_empty() {
                match sys::write(fd, &self.inbuf) {
                    Ok(n) if n > 0 => {
                        self.inbuf.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    _ => {
                        // The container closed its stdin: drop the input.
                        self.inbuf.clear();
                        self.o.io.stdin = None;
                    }
                }
            }
        } else {
            self.inbuf.clear();
        }
        if self.close_stdin && self.inbuf.is_empty() {
            self.o.io.stdin = None;
        }
    }

    /// Handles a ready client; false when it is gone.
    fn client_ready(&mut self, i: usize, revents: i16) -> bool {
        if revents & libc::POLLOUT != 0 {
            let c = &mut self.clients[i];
            match sys::write(c.fd.as_raw_fd(), &c.pending) {
                Ok(n) => {
                    c.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
            return true;
        }
        let n = match sys::read(self.clients[i].fd.as_raw_fd(), &mut self.buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        };
        let data = self.buf[..n].to_vec();
        self.clients[i].dec.push(&data);
        loop {
            match self.clients[i].dec.next_frame() {
                Ok(Some((attach::STDIN, p))) => {
                    self.inbuf.extend_from_slice(&p);
                    self.flush_input();
                }
                Ok(Some((attach::CLOSE_STDIN, _))) => {
                    if self.o.io.console.is_none() {
                        self.close_stdin = true;
                        self.flush_input();
                    }
                }
                Ok(Some((attach::RESIZE, p))) if p.len() == 4 => {
                    if let Some(c) = &self.o.io.console {
                        let rows = u16::from_be_bytes([p[0], p[1]]);
                        let cols = u16::from_be_bytes([p[2], p[3]]);
                        sys::set_winsize(c.as_fd(), rows, cols);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }
}

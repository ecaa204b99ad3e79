//! `liana-init`: the tiny init `liana run --init` puts in front of the command, like
//! docker's tini or podman's catatonit. It runs as pid 1 of the container: forks the
//! command, forwards every signal it receives to it, reaps every zombie, and exits
//! with the command's status (128 + N when signal N killed it).
//!
//! ```text
//! liana-init [--] COMMAND [ARG...]
//! ```
//!
//! It must be linked statically to run in any image; see bench/engine and the engine
//! tests for the build command.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use liana_monitor::sys::{self, SigSet};

fn main() {
    let mut args: Vec<CString> = std::env::args_os()
        .skip(1)
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    if args.first().is_some_and(|a| a.as_bytes() == b"--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("usage: liana-init [--] COMMAND [ARG...]");
        std::process::exit(2);
    }
    let all = SigSet::catchable_except(&[]);
    if let Err(e) = all.block() {
        eprintln!("liana-init: block signals: {e}");
        std::process::exit(1);
    }
    let sfd = match all.signalfd() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("liana-init: signalfd: {e}");
            std::process::exit(1);
        }
    };
    // SAFETY: single-threaded; the child only resets its mask and execs.
    let child = unsafe { libc::fork() };
    if child < 0 {
        eprintln!("liana-init: fork: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    if child == 0 {
        drop(sfd);
        SigSet::unblock_all();
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: a NULL-terminated argv of valid C strings.
        unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
        let e = std::io::Error::last_os_error();
        eprintln!("liana-init: exec {}: {e}", args[0].to_string_lossy());
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        };
        // SAFETY: leave the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    loop {
        let mut p = [libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&sfd),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(p.as_mut_ptr(), 1, -1) };
        while let Some(sig) = sys::read_signal(std::os::fd::AsFd::as_fd(&sfd)) {
            if sig != libc::SIGCHLD {
                // SAFETY: kill takes integers.
                unsafe { libc::kill(child, sig) };
                continue;
            }
            while let Some((pid, status)) = sys::reap_any() {
                if pid == child {
                    let exit = liana_monitor::exitfile::Exit::from_wait_status(
                        status,
                        std::time::SystemTime::now(),
                    );
                    std::process::exit(exit.code);
                }
            }
        }
    }
}

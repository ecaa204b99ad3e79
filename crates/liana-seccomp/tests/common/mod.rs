//! Helpers for tests that install filters: each filter goes into a forked child, so the test
//! process itself is never filtered and tests can run in parallel.
#![allow(dead_code)]

use std::panic::AssertUnwindSafe;

use liana_seccomp::{compile, parse, CompiledFilter};

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// Compiles a profile given as JSON text.
pub fn filter(json: &str) -> CompiledFilter {
    compile(&parse(json).expect("profile parses")).expect("profile compiles")
}

/// Whether the test runs as root; prints why it is skipped otherwise.
pub fn is_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED {test}: needs root (it drops privileges in the child)");
    }
    root
}

/// Makes installing possible for an unprivileged test run: without CAP_SYS_ADMIN the kernel
/// wants no_new_privs. As root it is left unset, which is the runtime's usual path.
pub fn allow_install_unprivileged() {
    // SAFETY: geteuid and prctl(PR_SET_NO_NEW_PRIVS) have no memory preconditions.
    unsafe {
        if libc::geteuid() != 0 {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        }
    }
}

/// Runs `body` in a forked child and reports how the child ended; the exit code is what `body`
/// returns (101 if it panics). The child is killed by SIGALRM after 20 s.
pub fn run_in_child(body: impl FnOnce() -> i32) -> Outcome {
    wait(fork_child(body))
}

/// Forks a child that runs `body` (see [`run_in_child`]) and returns its pid.
pub fn fork_child(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child runs `body` and leaves with _exit, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm and _exit have no memory preconditions.
        unsafe { libc::alarm(20) };
        let code = std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
        // SAFETY: see above.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for child `pid`.
pub fn wait(pid: libc::pid_t) -> Outcome {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live int for waitpid to fill.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::Interrupted,
            "waitpid: {err}"
        );
    }
    if libc::WIFEXITED(status) {
        Outcome::Exited(libc::WEXITSTATUS(status))
    } else {
        Outcome::Signaled(libc::WTERMSIG(status))
    }
}

/// A raw syscall's result: Ok(return value) or Err(errno).
pub fn raw(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(ret)
    }
}

/// getcwd(2) itself (not glibc's wrapper, which may fall back or allocate).
pub fn sys_getcwd() -> Result<libc::c_long, i32> {
    let mut buf = [0u8; 512];
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    raw(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })
}

/// getppid(2).
pub fn sys_getppid() -> Result<libc::c_long, i32> {
    // SAFETY: no arguments.
    raw(unsafe { libc::syscall(libc::SYS_getppid) })
}

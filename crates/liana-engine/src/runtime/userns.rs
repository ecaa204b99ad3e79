//! The user namespace external runtimes run in when liana is rootless, like podman's
//! rootless "pause" process: one long-lived process per runtime state root that holds a
//! user namespace (the caller as root, its subordinate ids above, written with
//! newuidmap/newgidmap) and a mount namespace. Every runtime command joins both, so the
//! runtime sees itself as root and all its commands share the same namespace (a
//! sandbox made by `runsc create` must be reachable by `runsc kill` later).
//!
//! # State, version 1
//!
//! `RUNROOT/userns/pid` holds `PID START` of the holder (start time in clock ticks
//! since boot, against pid reuse); `RUNROOT/userns/lock` serialises its creation.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::LinuxIdMapping;
use rustix::fs::{flock, FlockOperation};

use crate::record::process_alive;
use crate::rootless::{mappings_for_caller, IdMap};

/// The namespaces of the holder, opened.
#[derive(Debug)]
pub struct Namespaces {
    /// `/proc/PID/ns/user`.
    pub user: OwnedFd,
    /// `/proc/PID/ns/mnt`.
    pub mnt: OwnedFd,
}

fn open_ns(pid: i32) -> std::io::Result<Namespaces> {
    let o = |n: &str| {
        rustix::fs::open(
            format!("/proc/{pid}/ns/{n}"),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(std::io::Error::from)
    };
    Ok(Namespaces {
        user: o("user")?,
        mnt: o("mnt")?,
    })
}

fn to_spec(m: &[IdMap]) -> Vec<LinuxIdMapping> {
    m.iter()
        .filter_map(|r| {
            serde_json::from_value(serde_json::json!({
                "containerID": r.container, "hostID": r.host, "size": r.size
            }))
            .ok()
        })
        .collect()
}

/// The holder's namespaces, creating the holder when there is none.
pub fn ensure(runroot: &Path) -> std::io::Result<Namespaces> {
    let dir = runroot.join("userns");
    crate::paths::create_private_dir(&dir)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    flock(&lock, FlockOperation::LockExclusive)?;
    let pid_file = dir.join("pid");
    if let Ok(t) = std::fs::read_to_string(&pid_file) {
        let mut it = t.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
        let (pid, start) = (it.next().unwrap_or(0) as i32, it.next().unwrap_or(0));
        if pid > 0 && process_alive(pid, start) {
            return open_ns(pid);
        }
    }
    let pid = spawn_holder()?;
    let start = liana_container::state::proc_stat(pid).map_or(0, |s| s.start_time);
    std::fs::write(&pid_file, format!("{pid} {start}\n"))?;
    open_ns(pid)
}

/// Forks the holder, maps its user namespace, and lets it make its mount namespace.
fn spawn_holder() -> std::io::Result<i32> {
    let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (go_r, go_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    // SAFETY: the child only makes async-signal-safe system calls and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: raw system calls on fds this child owns; ends in pause forever or _exit.
        unsafe {
            libc::setsid();
            for fd in 0..3 {
                libc::dup2(null.as_raw_fd(), fd);
            }
            // Nothing of the caller's (its locks above all) may stay open here.
            let keep = [ready_w.as_raw_fd(), go_r.as_raw_fd()];
            for fd in 3..4096 {
                if !keep.contains(&fd) {
                    libc::close(fd);
                }
            }
            let mut b = [0u8; 1];
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                libc::_exit(1);
            }
            libc::write(ready_w.as_raw_fd(), b.as_ptr().cast(), 1);
            if libc::read(go_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) != 1 {
                libc::_exit(1);
            }
            libc::setresgid(0, 0, 0);
            libc::setresuid(0, 0, 0);
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                libc::_exit(1);
            }
            loop {
                libc::pause();
            }
        }
    }
    drop(ready_w);
    drop(go_r);
    let mut b = [0u8; 1];
    let n = rustix::io::read(&ready_r, &mut b)?;
    let fail = |e: std::io::Error| {
        // SAFETY: kill and reap the child we just forked.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        e
    };
    if n != 1 {
        return Err(fail(std::io::Error::other(
            "the user namespace holder died",
        )));
    }
    let m = mappings_for_caller(Path::new("/etc/subuid"), Path::new("/etc/subgid"));
    liana_container::user_ns::write_mappings(pid, &to_spec(&m.uids), &to_spec(&m.gids))
        .map_err(|e| fail(std::io::Error::other(crate::error_chain(&e))))?;
    rustix::io::write(&go_w, b"g").map_err(|e| fail(e.into()))?;
    // Wait until the mount namespace is there (its inode differs from ours).
    let ours = std::fs::metadata("/proc/self/ns/mnt")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .ok();
    for _ in 0..500 {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .ok();
        if theirs.is_some() && theirs != ours {
            return Ok(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Err(fail(std::io::Error::other(
        "the user namespace holder did not make its mount namespace",
    )))
}

/// Joins `ns` and becomes root in it (to call in a forked child before exec).
pub fn join(user: i32, mnt: i32) -> std::io::Result<()> {
    // SAFETY: setns/setres*id take integers; the caller is a single-threaded child.
    unsafe {
        if libc::setns(user, libc::CLONE_NEWUSER) != 0 || libc::setns(mnt, libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::setresgid(0, 0, 0);
        libc::setresuid(0, 0, 0);
    }
    Ok(())
}

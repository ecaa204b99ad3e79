//! Named network namespaces: a new namespace kept alive by a bind mount on a file
//! (like `ip netns add`), entered briefly by the calling thread to configure it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
}

/// Creates a new network namespace bound to the file `path` (created, with its
/// parents). Its loopback is set up by [`crate::bridge`] users; here it is bare.
pub fn create(path: &Path) -> io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let target = cstr(path)?;
    let source = c"/proc/self/ns/net";
    // SAFETY: the child only makes system calls (unshare, mount) on data prepared
    // before the fork and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: plain system calls in the forked child, then _exit.
        unsafe {
            let code = if libc::unshare(libc::CLONE_NEWNET) != 0 {
                1
            } else if libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                2
            } else {
                0
            };
            libc::_exit(code);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let _ = std::fs::remove_file(path);
        let what = if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 2 {
            "bind-mount the new network namespace"
        } else {
            "unshare a network namespace"
        };
        return Err(io::Error::other(format!("{what} on {}", path.display())));
    }
    Ok(())
}

/// Whether `path` is a bound network namespace.
pub fn exists(path: &Path) -> bool {
    // A bound namespace file reports the nsfs file system.
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == 0x6e73_6673)
}

/// Unmounts and deletes a namespace file; a missing one is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: umount2 with a valid C string.
    let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if r != 0 {
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
            return Err(e);
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens a namespace file.
pub fn open(path: &Path) -> io::Result<OwnedFd> {
    Ok(std::fs::File::open(path)?.into())
}

fn setns(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns on an open namespace file descriptor.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` with the calling thread in the network namespace at `path`, then goes
/// back (sockets made by `f` stay in that namespace).
pub fn enter<T>(path: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let target = open(path)?;
    let home = open(Path::new("/proc/thread-self/ns/net"))?;
    setns(&target)?;
    let out = f();
    if let Err(e) = setns(&home) {
        // Staying in the container's namespace would be worse than dying.
        panic!("cannot return to the host network namespace: {e}");
    }
    out
}

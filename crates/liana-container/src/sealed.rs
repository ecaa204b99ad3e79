//! Re-executing the runtime from a copy of itself that nobody can write.
//!
//! A process inside the container must never be able to reach the host's runtime
//! binary through /proc/PID/exe and overwrite it (CVE-2019-5736). Before any command
//! that enters a container, the runtime re-executes from a protected view of its own
//! executable; every set-up stage is a fork of that process, so /proc/self/exe is the
//! protected view. Two kinds ([`ensure_protected`] picks):
//!
//! - a *read-only overlayfs* of the binary's directory, mounted detached (attached to no
//!   mount namespace) with the new mount API, as runc 1.2 does: /proc/PID/exe names a
//!   file on a read-only file system with no upper layer, which cannot be opened for
//!   writing, and nothing is copied (the overlay shares the binary's page cache). It
//!   needs root in the initial user namespace;
//! - a *sealed memfd* copy (writes, growth and shrinking sealed): works everywhere, at
//!   the price of copying the binary and faulting the copy in on every command.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when the running executable is a sealed memfd.
pub fn is_sealed() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS takes no argument; non-memfd files give EINVAL.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Copies /proc/self/exe into a sealed memfd.
pub fn sealed_copy() -> io::Result<OwnedFd> {
    // SAFETY: memfd_create reads a NUL-terminated name and returns a new fd.
    let raw = unsafe {
        libc::memfd_create(
            c"liana-runtime".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let exe = std::fs::File::open("/proc/self/exe")?;
    let len = exe.metadata()?.len() as usize;
    let mut done = 0;
    while done < len {
        // SAFETY: sendfile between two fds we own, with a null offset.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                len - done,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short copy of /proc/self/exe",
            ));
        }
        done += n as usize;
    }
    // SAFETY: F_ADD_SEALS takes an int.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(memfd)
}

/// Re-executes the current command from a sealed copy unless already running from one.
/// Returns only on failure.
pub fn ensure_sealed() -> io::Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let memfd = sealed_copy()?;
    Err(reexec(&memfd))
}

/// True when the running executable is protected: a sealed memfd, or a file on a
/// read-only overlayfs (see the module documentation).
pub fn is_protected() -> bool {
    if is_sealed() {
        return true;
    }
    match rustix::fs::statfs("/proc/self/exe") {
        Ok(s) => s.f_type == OVERLAYFS_SUPER_MAGIC && (s.f_flags as u64 & libc::ST_RDONLY) != 0,
        Err(_) => false,
    }
}

/// Re-executes the current command from a protected view of `exe` (the running binary's
/// path on the host) unless it already runs from one: as root, from a detached
/// read-only overlay of `exe`'s directory, with `scratch/empty` as the second layer
/// overlayfs needs; otherwise, or when that fails, from a sealed memfd copy.
/// `LIANA_EXE_PROTECTION=memfd` forces the sealed copy. Returns only on failure.
pub fn ensure_protected(exe: &Path, scratch: &Path) -> io::Result<()> {
    if is_protected() {
        return Ok(());
    }
    let memfd_only = std::env::var_os("LIANA_EXE_PROTECTION").is_some_and(|v| v == "memfd");
    if rustix::process::geteuid().is_root() && !memfd_only {
        let attempt = (|| -> io::Result<()> {
            let empty = scratch.join("empty");
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&empty)?;
            let dir = exe.parent().ok_or(io::ErrorKind::NotFound)?;
            let name = exe.file_name().ok_or(io::ErrorKind::NotFound)?;
            let mnt = detached_overlay(dir, &empty)?;
            let file = rustix::fs::openat(
                &mnt,
                name,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?;
            Err(reexec(&file))
        })();
        if let Err(e) = attempt {
            tracing::debug!(
                "read-only overlay of {}: {e}; using a sealed copy",
                exe.display()
            );
        }
    }
    ensure_sealed()
}

/// A detached, read-only overlay of `dir` over `empty`.
fn detached_overlay(dir: &Path, empty: &Path) -> io::Result<OwnedFd> {
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    let lower = format!("{}:{}", dir.display(), empty.display());
    rustix::mount::fsconfig_set_string(&fs, "lowerdir", lower.as_str())?;
    rustix::mount::fsconfig_set_flag(&fs, "ro")?;
    rustix::mount::fsconfig_create(&fs)?;
    Ok(rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV,
    )?)
}

/// Executes `file` (an fd of an executable) with this process's arguments and
/// environment. Returns the error when execveat fails.
fn reexec(file: &impl AsFd) -> io::Error {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that outlive the
    // call; execveat with AT_EMPTY_PATH executes the fd itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            file.as_fd().as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

//! Protecting the `liana` binary from the containers it starts (CVE-2019-5736).
//!
//! Every set-up stage of the built-in runtime is a fork of `liana`, so a process in the
//! container could reach the binary through `/proc/PID/exe` and overwrite it. The
//! runtime library's answer ([`liana_container::sealed::ensure_sealed`]) re-executes
//! from a sealed memfd copy of the binary: safe everywhere, but copying the 14 MiB
//! binary and faulting it back in costs about a third of a `run --rm IMAGE true`.
//!
//! As root, the engine re-executes instead from a *read-only overlayfs* view of the
//! binary's directory, mounted detached (never attached to any mount namespace) with
//! the new mount API, as runc 1.2 does: `/proc/PID/exe` then names a file on a
//! read-only file system, which cannot be opened for writing, and nothing is copied
//! (the overlay shares the binary's page cache). Rootless, or when overlayfs is not
//! available, it falls back to the sealed copy.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Whether this process already runs from a protected copy.
pub fn is_protected() -> bool {
    if liana_container::sealed::is_sealed() {
        return true;
    }
    match rustix::fs::statfs("/proc/self/exe") {
        Ok(s) => s.f_type == OVERLAYFS_SUPER_MAGIC && (s.f_flags as u64 & libc::ST_RDONLY) != 0,
        Err(_) => false,
    }
}

/// A detached, read-only overlay of `dir` (with `empty` as the second layer overlayfs
/// needs when there is no upper layer).
fn detached_view(dir: &Path, empty: &Path) -> io::Result<OwnedFd> {
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

fn exec_from(mnt: &OwnedFd, name: &std::ffi::OsStr) -> io::Error {
    let file = match rustix::fs::openat(
        mnt,
        name,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of C strings that outlive the
    // call; AT_EMPTY_PATH executes the O_PATH fd itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            file.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// Re-executes the current command from a protected view of its binary unless it
/// already runs from one; `scratch` is a directory for an empty layer. Returns only on
/// failure.
pub fn ensure_protected(exe: &Path, scratch: &Path) -> io::Result<()> {
    if is_protected() {
        return Ok(());
    }
    let memfd_only = std::env::var_os("LIANA_EXE_PROTECTION").is_some_and(|v| v == "memfd");
    if rustix::process::geteuid().is_root() && !memfd_only {
        let empty = scratch.join("empty");
        let attempt = (|| -> io::Result<()> {
            std::fs::create_dir_all(&empty)?;
            let dir = exe.parent().ok_or(io::ErrorKind::NotFound)?;
            let name = exe.file_name().ok_or(io::ErrorKind::NotFound)?;
            let mnt = detached_view(dir, &empty)?;
            Err(exec_from(&mnt, name))
        })();
        if let Err(e) = attempt {
            tracing::debug!(
                "read-only overlay of {}: {e}; using a sealed copy",
                exe.display()
            );
        }
    }
    liana_container::sealed::ensure_sealed()
}

//! Thin, safe wrappers over the few syscalls that neither rustix nor nix wrap the way
//! the runtime needs them (raw mount flags, mount_setattr, pivot_root, close_range).
//! Every wrapper returns `std::io::Error` carrying errno.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The magic-link path of an fd, for syscalls that only take paths.
pub fn fd_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in fd path")
}

/// `mount(2)` with raw `MS_*` flags.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either null or a NUL-terminated string that outlives the call.
    let r = unsafe {
        libc::mount(
            p(source),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data).cast::<libc::c_void>(),
        )
    };
    check(r as libc::c_long).map(drop)
}

/// `mount(2)` on a path.
pub fn mount_path(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstr).transpose()?;
    let target = cstr(target)?;
    let fstype = fstype.map(CString::new).transpose()?;
    let data = data.map(CString::new).transpose()?;
    mount(
        source.as_deref(),
        &target,
        fstype.as_deref(),
        flags,
        data.as_deref(),
    )
}

/// `umount2(2)`.
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: `t` is a valid NUL-terminated path.
    check(unsafe { libc::umount2(t.as_ptr(), flags) } as libc::c_long).map(drop)
}

/// `struct mount_attr` for mount_setattr(2).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MountAttr {
    /// Attributes to set.
    pub attr_set: u64,
    /// Attributes to clear.
    pub attr_clr: u64,
    /// Propagation type.
    pub propagation: u64,
    /// User namespace fd for MOUNT_ATTR_IDMAP.
    pub userns_fd: u64,
}

/// MOUNT_ATTR_* values.
pub mod attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// No set-uid.
    pub const NOSUID: u64 = 0x2;
    /// No devices.
    pub const NODEV: u64 = 0x4;
    /// No exec.
    pub const NOEXEC: u64 = 0x8;
    /// Mask of the atime bits.
    pub const ATIME_MASK: u64 = 0x70;
    /// relatime.
    pub const RELATIME: u64 = 0x0;
    /// noatime.
    pub const NOATIME: u64 = 0x10;
    /// strictatime.
    pub const STRICTATIME: u64 = 0x20;
    /// nodiratime.
    pub const NODIRATIME: u64 = 0x80;
    /// Idmapped mount.
    pub const IDMAP: u64 = 0x10_0000;
    /// No symlink following.
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

/// `mount_setattr(2)` on `dirfd` + `path` (empty path: the fd itself).
pub fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> io::Result<()> {
    // SAFETY: the path is NUL-terminated and `attr` is a valid struct of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(r).map(drop)
}

/// `open_tree(2)`; returns a detached copy of the tree at `path` with OPEN_TREE_CLONE.
pub fn open_tree(dirfd: RawFd, path: &CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: the path is NUL-terminated; the syscall returns a new fd we take ownership of.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    let fd = check(r)? as RawFd;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// OPEN_TREE_CLONE.
pub const OPEN_TREE_CLONE: libc::c_uint = 1;
/// MOVE_MOUNT_F_EMPTY_PATH.
pub const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
/// MOVE_MOUNT_T_EMPTY_PATH.
pub const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// `move_mount(2)` from a detached tree fd onto the object `to` refers to.
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: both paths are the empty NUL-terminated string; fds are valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    check(r).map(drop)
}

/// `pivot_root(2)`.
pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: both arguments are NUL-terminated paths.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    check(r).map(drop)
}

/// Marks every fd from `first` upwards close-on-exec (close_range with CLOEXEC), falling
/// back to walking /proc/self/fd on kernels without it.
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes plain integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let fd: RawFd = match entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            Some(fd) => fd,
            None => continue,
        };
        if fd >= first {
            set_cloexec(fd, true)?;
        }
    }
    Ok(())
}

/// Closes every fd from `first` upwards except those in `keep` (close_range over the
/// gaps, falling back to walking /proc/self/fd where close_range fails).
pub fn close_from_except(first: RawFd, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&k| k >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut ranges = Vec::with_capacity(keep.len() + 1);
    let mut lo = first as libc::c_uint;
    for k in keep {
        let k = k as libc::c_uint;
        if k > lo {
            ranges.push((lo, k - 1));
        }
        lo = k + 1;
    }
    ranges.push((lo, libc::c_uint::MAX));
    for (a, b) in ranges {
        // SAFETY: close_range takes plain integers; the caller gives up every fd in range.
        if unsafe { libc::syscall(libc::SYS_close_range, a, b, 0 as libc::c_uint) } != 0 {
            // An old kernel (ENOSYS) or a seccomp filter that refuses close_range.
            let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            for fd in open {
                let u = fd as libc::c_uint;
                if u >= a && u <= b {
                    // SAFETY: as above; a stale number (the directory's own fd) is EBADF.
                    unsafe { libc::close(fd) };
                }
            }
        }
    }
    Ok(())
}

/// Sets or clears FD_CLOEXEC on one fd.
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD take integers; an invalid fd only yields EBADF.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        if new != flags && libc::fcntl(fd, libc::F_SETFD, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True when `fd` is open.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

//! A procfs handle that a container cannot tamper with.
//!
//! Writes the runtime makes through procfs (sysctls, oom_score_adj, LSM labels, the exec
//! fifo re-open) go through a private procfs instance made with fsopen/fsmount: a mount
//! nobody else can see, so racing mounts inside the container (CVE-2025-52881) cannot
//! redirect them. Where the new mount API is unavailable the runtime's /proc is used
//! after checking it is procfs, and lookups below it refuse to cross mount points.

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// An open procfs root.
#[derive(Debug)]
pub struct Procfs {
    fd: OwnedFd,
}

impl Procfs {
    /// A private procfs instance for the caller's pid namespace, or the checked /proc.
    pub fn open() -> io::Result<Self> {
        match Self::private() {
            Ok(p) => Ok(p),
            Err(e) => {
                tracing::debug!("private procfs unavailable ({e}); using /proc");
                Self::host()
            }
        }
    }

    fn private() -> io::Result<Self> {
        let fsfd = rustix::mount::fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC)?;
        rustix::mount::fsconfig_create(&fsfd)?;
        let fd = rustix::mount::fsmount(
            &fsfd,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_NOSUID
                | MountAttrFlags::MOUNT_ATTR_NODEV
                | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        )?;
        Ok(Self { fd })
    }

    fn host() -> io::Result<Self> {
        let fd = rustix::fs::open(
            "/proc",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstatfs(&fd)?;
        if st.f_type as i64 != PROC_SUPER_MAGIC {
            return Err(io::Error::other("/proc is not procfs"));
        }
        Ok(Self { fd })
    }

    /// Opens `rel` below the procfs root without following magic links or crossing
    /// mount points.
    pub fn open_file(&self, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
        Ok(rustix::fs::openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
        )?)
    }

    /// Writes `data` to `rel` in one write(2).
    pub fn write(&self, rel: &str, data: &[u8]) -> io::Result<()> {
        let fd = self.open_file(rel, OFlags::WRONLY)?;
        let mut f = std::fs::File::from(fd);
        f.write_all(data)
    }

    /// Re-opens one of our own fds through `self/fd/N` (a magic link, followed on
    /// purpose: the fd is ours).
    pub fn reopen_fd(&self, fd: std::os::fd::BorrowedFd<'_>, flags: OFlags) -> io::Result<OwnedFd> {
        use std::os::fd::AsRawFd;
        let path = format!("self/fd/{}", fd.as_raw_fd());
        Ok(rustix::fs::openat(
            &self.fd,
            path.as_str(),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// The procfs root fd.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_status() {
        let p = Procfs::host().unwrap();
        let fd = p.open_file("self/status", OFlags::RDONLY).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).unwrap();
        assert!(s.contains("Pid:"));
    }

    #[test]
    fn refuses_escape() {
        let p = Procfs::host().unwrap();
        assert!(p.open_file("../etc/passwd", OFlags::RDONLY).is_err());
        assert!(p.open_file("self/root/etc/passwd", OFlags::RDONLY).is_err());
    }
}

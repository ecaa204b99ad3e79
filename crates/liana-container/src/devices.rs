//! Device nodes in the container's /dev: the defaults every container gets, the
//! config's `linux.devices`, and the standard /dev symlinks.
//!
//! Outside a user namespace nodes are made with mknod; inside one (where mknod of a
//! device is not permitted) the host's node of the same path is bind-mounted instead.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::resolve::{Create, Root};
use crate::sys;

/// A device that could not be created.
#[derive(Debug, thiserror::Error)]
#[error("device {path}: {op}")]
pub struct DeviceError {
    /// Container path of the device.
    pub path: PathBuf,
    /// What failed.
    pub op: &'static str,
    /// Cause.
    #[source]
    pub source: io::Error,
}

/// One node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Container path.
    pub path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub kind: u32,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

const DEFAULTS: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The default devices, minus those the config lists itself.
pub fn default_nodes(configured: &[LinuxDevice]) -> Vec<Node> {
    DEFAULTS
        .iter()
        .filter(|(p, _, _)| !configured.iter().any(|d| d.path() == Path::new(p)))
        .map(|&(p, major, minor)| Node {
            path: p.into(),
            kind: libc::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect()
}

/// Converts a config device.
pub fn node_of(d: &LinuxDevice) -> Node {
    let kind = match d.typ() {
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        _ => libc::S_IFCHR,
    };
    Node {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    }
}

/// Creates `node` inside `root`.
pub fn create(root: &Root, node: &Node, userns: bool) -> Result<(), DeviceError> {
    let err = |op, source| DeviceError {
        path: node.path.clone(),
        op,
        source,
    };
    let parent_path = node.path.parent().unwrap_or(Path::new("/"));
    let name = node.path.file_name().ok_or_else(|| {
        err(
            "path has no file name",
            io::Error::from_raw_os_error(libc::EINVAL),
        )
    })?;
    let parent_rel = root
        .create_all(parent_path, Create::Dir)
        .map_err(|e| err("create parent directory", e))?;
    let parent = root
        .open_at(&parent_rel, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|e| err("open parent directory", e))?;
    // Replace whatever is there (but never follow it).
    match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {
            rustix::fs::unlinkat(&parent, name, AtFlags::empty())
                .map_err(|e| err("remove existing file", e.into()))?;
        }
        _ => {}
    }
    if userns && node.kind != libc::S_IFIFO {
        let rel = root
            .create_all(&node.path, Create::File)
            .map_err(|e| err("create bind mount point", e))?;
        let target =
            crate::mounts::open_target(root, &rel).map_err(|e| err("open mount point", e))?;
        let host = CString::new(node.path.as_os_str().as_encoded_bytes())
            .map_err(|_| err("path", io::Error::from_raw_os_error(libc::EINVAL)))?;
        return sys::mount(
            Some(&host),
            &sys::fd_path(target.as_fd()),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(|e| {
            err(
                "bind host device (mknod is not permitted in a user namespace)",
                e,
            )
        });
    }
    let dev = rustix::fs::makedev(node.major as u32, node.minor as u32);
    let ft = FileType::from_raw_mode(node.kind);
    rustix::fs::mknodat(&parent, name, ft, Mode::from_raw_mode(node.mode), dev)
        .map_err(|e| err("mknod", e.into()))?;
    rustix::fs::chmodat(
        &parent,
        name,
        Mode::from_raw_mode(node.mode),
        AtFlags::empty(),
    )
    .map_err(|e| err("chmod", e.into()))?;
    rustix::fs::chownat(
        &parent,
        name,
        Some(rustix::fs::Uid::from_raw(node.uid)),
        Some(rustix::fs::Gid::from_raw(node.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err("chown", e.into()))
}

/// The standard /dev symlinks (fd, stdin, stdout, stderr, ptmx, core).
pub fn create_symlinks(root: &Root) -> Result<(), DeviceError> {
    let dev = root
        .open_at("dev", OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|source| DeviceError {
            path: "/dev".into(),
            op: "open",
            source,
        })?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(DeviceError {
                    path: Path::new("/dev").join(name),
                    op: "symlink",
                    source: e.into(),
                })
            }
        }
    }
    Ok(())
}

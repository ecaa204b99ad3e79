//! The container's root filesystem, prepared inside its new mount namespace: propagation,
//! the rootfs bind, the config's mounts, /dev, masked and read-only paths, then
//! pivot_root (or MS_MOVE + chroot with --no-pivot).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, Mount};
use rustix::fs::{FileType, OFlags};

use crate::devices::{self, DeviceError};
use crate::mounts::{self, MountContext, MountError};
use crate::resolve::{Create, Root};
use crate::sys;

/// A failed rootfs step.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount of the config failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// A device could not be made.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// Another step failed.
    #[error("rootfs {}: {op}", path.display())]
    Step {
        /// The path concerned.
        path: PathBuf,
        /// What failed.
        op: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A hook run between mounting and pivot_root failed.
    #[error("{0}")]
    Hook(String),
}

fn step<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Step {
        path: path.to_owned(),
        op,
        source,
    }
}

/// What to build.
#[derive(Debug)]
pub struct RootfsPlan<'a> {
    /// Absolute rootfs on the host.
    pub rootfs: &'a Path,
    /// Absolute bundle directory.
    pub bundle: &'a Path,
    /// Config mounts.
    pub mounts: &'a [Mount],
    /// Config devices.
    pub devices: &'a [LinuxDevice],
    /// linux.rootfsPropagation as MS_* flags.
    pub propagation: Option<libc::c_ulong>,
    /// linux.maskedPaths.
    pub masked: &'a [String],
    /// linux.readonlyPaths.
    pub readonly: &'a [String],
    /// process.cwd (created if missing).
    pub cwd: &'a Path,
    /// New user namespace.
    pub userns: bool,
    /// Private cgroup namespace.
    pub cgroupns: bool,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container's uid and gid mappings when the runtime's root makes the mounts
    /// outside the container's user namespace (see [`MountContext::host_ids`]).
    pub host_ids: Option<(
        &'a [oci_spec::runtime::LinuxIdMapping],
        &'a [oci_spec::runtime::LinuxIdMapping],
    )>,
}

/// Builds the root filesystem and switches into it. `between` runs after the mounts
/// and before masking and pivot_root (the hooks' moment).
pub fn prepare(
    plan: &RootfsPlan<'_>,
    detached: &mut [Option<OwnedFd>],
    between: impl FnOnce() -> Result<(), RootfsError>,
) -> Result<(), RootfsError> {
    let rootfs = plan.rootfs;
    let prop = match plan.propagation {
        Some(p) if p & (libc::MS_SHARED) != 0 => libc::MS_SLAVE | libc::MS_REC,
        Some(p) => p | libc::MS_REC,
        None => libc::MS_SLAVE | libc::MS_REC,
    };
    sys::mount_path(None, Path::new("/"), None, prop, None)
        .map_err(step(Path::new("/"), "set mount propagation"))?;
    sys::mount_path(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(step(rootfs, "bind rootfs onto itself"))?;
    let root = Root::open(rootfs).map_err(step(rootfs, "open"))?;
    let ctx = MountContext {
        bundle: plan.bundle,
        userns: plan.userns,
        cgroupns: plan.cgroupns,
        host_ids: plan.host_ids,
    };
    mounts::mount_all(&root, plan.mounts, detached, &ctx)?;

    let dev_is_bound = plan
        .mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev") && mounts::is_bind(m));
    if !dev_is_bound {
        root.create_all(Path::new("/dev"), Create::Dir)
            .map_err(step(Path::new("/dev"), "create"))?;
        for node in devices::default_nodes(plan.devices) {
            devices::create(&root, &node, plan.userns)?;
        }
        devices::create_symlinks(&root)?;
    }
    for d in plan.devices {
        devices::create(&root, &devices::node_of(d), plan.userns)?;
    }
    if let Err(e) = root.create_all(plan.cwd, Create::Dir) {
        // Not fatal here: a cwd that cannot exist fails clearly at chdir.
        tracing::debug!("cannot create cwd {}: {e}", plan.cwd.display());
    }

    between()?;

    for p in plan.readonly {
        readonly_path(&root, p)?;
    }
    for p in plan.masked {
        mask_path(&root, p)?;
    }
    if let Some(p) = plan.propagation.filter(|p| p & libc::MS_SHARED != 0) {
        make_parent_private(rootfs)?;
        pivot(&root, plan.no_pivot)?;
        sys::mount_path(None, Path::new("/"), None, p, None)
            .map_err(step(Path::new("/"), "set rootfs propagation"))?;
    } else {
        pivot(&root, plan.no_pivot)?;
    }
    Ok(())
}

fn readonly_path(root: &Root, p: &str) -> Result<(), RootfsError> {
    let path = Path::new(p);
    let rel = match root.resolve(path) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(step(path, "resolve read-only path")(e)),
    };
    let target = mounts::open_target(root, &rel).map_err(step(path, "open read-only path"))?;
    sys::mount(
        Some(&sys::fd_path(target.as_fd())),
        &sys::fd_path(target.as_fd()),
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(step(path, "bind read-only path"))?;
    mounts::remount_bind(
        root,
        &rel,
        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
    )
    .map_err(step(path, "remount read-only"))
}

fn mask_path(root: &Root, p: &str) -> Result<(), RootfsError> {
    let path = Path::new(p);
    let rel = match root.resolve(path) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(step(path, "resolve masked path")(e)),
    };
    let target = mounts::open_target(root, &rel).map_err(step(path, "open masked path"))?;
    let st = rustix::fs::fstat(&target).map_err(|e| step(path, "stat masked path")(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        sys::mount(
            Some(c"tmpfs"),
            &sys::fd_path(target.as_fd()),
            Some(c"tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(c"size=0,mode=755"),
        )
        .map_err(step(path, "mask directory"))
    } else {
        // The host's /dev/null (we have not pivoted yet), checked to be the real device:
        // a /dev/null inside the container may be a planted symlink (CVE-2025-31133).
        let null = host_dev_null().map_err(step(Path::new("/dev/null"), "open host device"))?;
        sys::mount(
            Some(&sys::fd_path(null.as_fd())),
            &sys::fd_path(target.as_fd()),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(step(path, "mask file"))
    }
}

fn host_dev_null() -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        "/dev/null",
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    let dev = st.st_rdev;
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice
        || rustix::fs::major(dev) != 1
        || rustix::fs::minor(dev) != 3
    {
        return Err(io::Error::other("/dev/null is not the null device"));
    }
    Ok(fd)
}

/// Makes the mount containing `path` (before our rootfs bind) private, so pivot_root
/// accepts a shared rootfs propagation.
fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(step(Path::new("/proc/self/mountinfo"), "read"))?;
    let mounts = crate::mountinfo::parse(&info);
    let parent = mounts
        .iter()
        .filter(|m| rootfs.starts_with(&m.mount_point) && m.mount_point != rootfs)
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .map(|m| m.mount_point.clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    sys::mount_path(None, &parent, None, libc::MS_PRIVATE, None)
        .map_err(step(&parent, "make parent mount private"))?;
    sys::mount_path(None, Path::new("/"), None, libc::MS_PRIVATE, None)
        .map_err(step(Path::new("/"), "make root mount private"))
}

fn pivot(root: &Root, no_pivot: bool) -> Result<(), RootfsError> {
    let path = root.path();
    rustix::process::fchdir(root.fd()).map_err(|e| step(path, "chdir")(e.into()))?;
    if no_pivot {
        sys::mount_path(Some(path), Path::new("/"), None, libc::MS_MOVE, None)
            .map_err(step(path, "move rootfs to /"))?;
        rustix::process::chroot(".").map_err(|e| step(path, "chroot")(e.into()))?;
    } else {
        sys::pivot_root(c".", c".").map_err(step(path, "pivot_root"))?;
        // The old root is stacked on "."; detach it without propagating to the host.
        sys::mount_path(
            None,
            Path::new("."),
            None,
            libc::MS_SLAVE | libc::MS_REC,
            None,
        )
        .map_err(step(path, "make old root slave"))?;
        sys::umount2(Path::new("."), libc::MNT_DETACH).map_err(step(path, "detach old root"))?;
    }
    std::env::set_current_dir("/").map_err(step(Path::new("/"), "chdir"))
}

/// After pivot: makes `/` read-only (root.readonly).
pub fn make_root_readonly() -> Result<(), RootfsError> {
    let root = Root::open(Path::new("/")).map_err(step(Path::new("/"), "open"))?;
    mounts::remount_bind(&root, ".", libc::MS_RDONLY)
        .map_err(step(Path::new("/"), "remount read-only"))
}

/// Without a mount namespace: only chroot into the rootfs.
pub fn chroot_only(rootfs: &Path) -> Result<(), RootfsError> {
    let c = CString::new(rootfs.as_os_str().as_encoded_bytes())
        .map_err(|_| step(rootfs, "path")(io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: chroot reads a NUL-terminated path.
    if unsafe { libc::chroot(c.as_ptr()) } != 0 {
        return Err(step(rootfs, "chroot")(io::Error::last_os_error()));
    }
    std::env::set_current_dir("/").map_err(step(Path::new("/"), "chdir"))
}

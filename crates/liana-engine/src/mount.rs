//! Putting a container's root file system in place from the mounts its snapshot
//! returned: an `overlay` is mounted at `ROOT/containers/ID/rootfs` (and unmounted when
//! the container stops); a `bind` of a directory is used as it is, without a mount.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use liana_images::snapshot::Mount;

/// A mount step that failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The snapshot's mounts are not ones the engine knows how to use.
    #[error("unsupported snapshot mounts: {0}")]
    Unsupported(String),
    /// mount(2) failed.
    #[error("mount {kind} at {target}")]
    Mount {
        /// File system type.
        kind: String,
        /// Target.
        target: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// umount(2) failed.
    #[error("unmount {target}")]
    Unmount {
        /// Target.
        target: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The mount point could not be made.
    #[error("create mount point {target}")]
    MountPoint {
        /// Target.
        target: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The directory a single bind mount exposes, if that is what `mounts` is.
pub fn bind_source(mounts: &[Mount]) -> Option<&Path> {
    match mounts {
        [m] if m.kind == "bind" => Some(&m.source),
        _ => None,
    }
}

/// Whether `target` is a mount point (its device differs from its parent's).
pub fn is_mounted(target: &Path) -> bool {
    let (Ok(t), Some(Ok(p))) = (
        std::fs::metadata(target),
        target.parent().map(std::fs::metadata),
    ) else {
        return false;
    };
    t.dev() != p.dev()
}

/// Makes the root file system available; returns its host path.
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<PathBuf, MountError> {
    if let Some(src) = bind_source(mounts) {
        return Ok(src.to_path_buf());
    }
    let [m] = mounts else {
        return Err(MountError::Unsupported(format!("{} mounts", mounts.len())));
    };
    if m.kind != "overlay" {
        return Err(MountError::Unsupported(m.to_string()));
    }
    std::fs::create_dir_all(target).map_err(|source| MountError::MountPoint {
        target: target.into(),
        source,
    })?;
    if is_mounted(target) {
        return Ok(target.to_path_buf());
    }
    let data = std::ffi::CString::new(m.options.join(","))
        .map_err(|_| MountError::Unsupported("NUL in mount options".into()))?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| MountError::Mount {
        kind: m.kind.clone(),
        target: target.into(),
        source: e.into(),
    })?;
    Ok(target.to_path_buf())
}

/// Unmounts what [`mount_rootfs`] mounted (nothing for a bind source).
pub fn unmount_rootfs(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    if bind_source(mounts).is_some() || !is_mounted(target) {
        return Ok(());
    }
    match rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(MountError::Unmount {
            target: target.into(),
            source: e.into(),
        }),
    }
}

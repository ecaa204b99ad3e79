//! Snapshotters: layered file system trees for images and containers, in containerd's
//! model. A snapshotter *returns* the mounts that assemble a snapshot and never mounts
//! anything itself: the caller (the unpacker writing a layer, the engine starting a
//! container) decides where and how to mount.
//!
//! Snapshots are *active* (writable, made by [`Snapshotter::prepare`]), *committed*
//! (read-only, made from an active one by [`Snapshotter::commit`], usable as a parent)
//! or *views* (read-only, [`Snapshotter::view`]). Image layers are committed under
//! their chain ID.
//!
//! # On-disk format, version 1 (both snapshotters)
//!
//! ```text
//! ROOT/metadata.db                SQLite: table `snapshots`, key → Info (JSON)
//! ROOT/snapshots/<id>/fs          the snapshot's tree (overlay: its upper dir)
//! ROOT/snapshots/<id>/work        overlay work dir (active overlay snapshots)
//! ```

mod native;
mod overlay;
mod storage;
#[cfg(test)]
mod testsuite;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use native::NativeSnapshotter;
pub use overlay::{OverlayOptions, OverlaySnapshotter};

use crate::errdefs::{ErrorKind, HasKind};
use crate::metadata::DbError;
use crate::unpack::WhiteoutMode;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot has this key.
    #[error("snapshot {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The key is taken.
    #[error("snapshot {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// The operation needs a snapshot of another kind (committed parent, active key).
    #[error("snapshot {key} is {actual:?}, expected {expected}")]
    WrongKind {
        /// The key.
        key: String,
        /// Its kind.
        actual: Kind,
        /// What was needed.
        expected: &'static str,
    },
    /// The snapshot still has children.
    #[error("snapshot {key} has {children} children; remove them first")]
    HasChildren {
        /// The key.
        key: String,
        /// How many.
        children: usize,
    },
    /// The snapshotter cannot do this.
    #[error("snapshotter {snapshotter}: {what} is not supported")]
    Unsupported {
        /// Which snapshotter.
        snapshotter: &'static str,
        /// The operation.
        what: &'static str,
    },
    /// A key is not acceptable.
    #[error("invalid snapshot key {key:?}")]
    InvalidKey {
        /// The key.
        key: String,
    },
    /// A file system operation failed.
    #[error("snapshot {key}: {op} {path}")]
    Io {
        /// The snapshot.
        key: String,
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The snapshot database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl HasKind for SnapshotError {
    fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound { .. } => ErrorKind::NotFound,
            SnapshotError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            SnapshotError::WrongKind { .. } | SnapshotError::HasChildren { .. } => {
                ErrorKind::FailedPrecondition
            }
            SnapshotError::Unsupported { .. } => ErrorKind::Unsupported,
            SnapshotError::InvalidKey { .. } => ErrorKind::InvalidArgument,
            SnapshotError::Io { source, .. } => crate::errdefs::io_kind(source),
            SnapshotError::Db(e) => e.kind(),
        }
    }
}

/// The kind of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Writable.
    Active,
    /// Read-only, usable as a parent.
    Committed,
    /// Read-only view of a parent.
    View,
}

/// What the snapshotter knows about one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Key (active, view) or name (committed).
    pub key: String,
    /// The kind.
    pub kind: Kind,
    /// The parent's name, if any.
    pub parent: Option<String>,
    /// Internal directory id.
    pub id: u64,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
}

/// A mount, as `mount(8)` would take it: type, source, options. Targets are the
/// caller's business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// File system type: `bind`, `overlay`, `fuse3.fuse-overlayfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Source path (or `overlay`).
    pub source: PathBuf,
    /// Options (`ro`, `rbind`, `lowerdir=...`, ...).
    pub options: Vec<String>,
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "type={} source={} options={}",
            self.kind,
            self.source.display(),
            self.options.join(",")
        )
    }
}

/// A snapshotter. Implementations are safe to share between threads and processes
/// (their metadata lives in a locked database).
pub trait Snapshotter: Send + Sync + fmt::Debug {
    /// The snapshotter's name (`overlayfs`, `native`).
    fn name(&self) -> &'static str;

    /// How layers must be applied into this snapshotter's active snapshots.
    fn whiteout_mode(&self) -> WhiteoutMode;

    /// Whether a layer can be applied into an active snapshot prepared *without* its
    /// parent and given the parent afterwards with [`Snapshotter::set_parent`] (true
    /// for overlay, whose layer directories only hold their own changes). Callers use
    /// this to unpack layers in parallel.
    fn supports_detached_apply(&self) -> bool;

    /// Info about a snapshot.
    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;

    /// The mounts of an active snapshot or view.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;

    /// Creates an active snapshot on top of the committed `parent`; returns its mounts.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;

    /// Creates a read-only view of the committed `parent`; returns its mounts.
    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;

    /// Sets the parent of an active snapshot that has none yet (only when
    /// [`Snapshotter::supports_detached_apply`]).
    fn set_parent(&self, key: &str, parent: &str) -> Result<(), SnapshotError>;

    /// Turns active snapshot `key` into committed snapshot `name`.
    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError>;

    /// Removes a snapshot without children.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;

    /// All snapshots.
    fn walk(&self) -> Result<Vec<Info>, SnapshotError>;

    /// Disk usage of a snapshot's own directory, in bytes.
    fn usage(&self, key: &str) -> Result<u64, SnapshotError>;
}

pub(crate) fn validate_key(key: &str) -> Result<(), SnapshotError> {
    if key.is_empty() || key.len() > 512 || key.contains('\0') {
        return Err(SnapshotError::InvalidKey { key: key.into() });
    }
    Ok(())
}

/// Whether the kernel lists overlayfs in `/proc/filesystems` (or can load it).
pub fn overlay_supported() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|s| s.lines().any(|l| l.ends_with("\toverlay")))
        .unwrap_or(false)
        || std::path::Path::new("/sys/module/overlay").exists()
}

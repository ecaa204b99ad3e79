//! Applying layers: decompression (gzip, zstd, none) with a size bound, diff ID
//! computation on the uncompressed stream, and safe extraction of the tar into a
//! directory given by the snapshotter's mounts (never by mounting anything).
//!
//! Whiteouts follow image-spec `layer.md`: `.wh.NAME` deletes `NAME` from lower layers,
//! `.wh..wh..opq` makes its directory opaque. In [`WhiteoutMode::Overlay`] they are
//! converted to overlayfs' form (a 0/0 character device, the `overlay.opaque` xattr);
//! in [`WhiteoutMode::Apply`] the lower content is removed from the tree directly.

mod fs;
mod tar;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Digester, HashingReader};
use crate::errdefs::{ErrorKind, HasKind};
use crate::manifest::Compression;
use crate::snapshot::Mount;

pub use self::tar::ApplyStats;

/// Validates a relative path the way layer entries are validated (no absolute path,
/// no `..`) and returns its components.
pub fn components_of(name: &str) -> Result<Vec<&str>, &'static str> {
    fs::components(name)
}

/// Default bound on the uncompressed size of one layer (a decompression bomb guard).
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 64 << 30;
/// Default bound on the number of entries of one layer.
pub const DEFAULT_MAX_ENTRIES: u64 = 4_000_000;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry's name or link target is not acceptable (absolute, `..`, too long).
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    BadEntry {
        /// The layer blob.
        layer: String,
        /// The entry name.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// An entry's path or link target resolves outside the root (through a symlink).
    #[error("layer {layer}: entry {entry:?} resolves outside the unpack root (through a symlink or '..'); refused")]
    Escape {
        /// The layer blob.
        layer: String,
        /// The entry name.
        entry: String,
    },
    /// A file system operation on an entry failed.
    #[error("layer {layer}: entry {entry:?}: {op}")]
    Entry {
        /// The layer blob.
        layer: String,
        /// The entry name.
        entry: String,
        /// The operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tar stream is malformed or reading it failed.
    #[error("layer {layer}: read tar stream")]
    Read {
        /// The layer blob.
        layer: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The uncompressed layer exceeds the size or entry bound.
    #[error("layer {layer}: exceeds the bound of {limit} {what} (decompression bomb?)")]
    TooLarge {
        /// The layer blob.
        layer: String,
        /// Bytes or entries.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
    /// The uncompressed stream does not hash to the config's diff ID.
    #[error("layer {layer}: diff id mismatch: config says {expected}, content is {actual}")]
    DiffIdMismatch {
        /// The layer blob.
        layer: String,
        /// The diff ID in the config.
        expected: Digest,
        /// The digest of the uncompressed stream.
        actual: Digest,
    },
    /// The mounts are not something we can write into without mounting.
    #[error("cannot apply a layer to mounts {mounts}: only bind and overlay (with upperdir) are supported")]
    UnsupportedMounts {
        /// The mounts, for the message.
        mounts: String,
    },
    /// The root directory cannot be opened.
    #[error("open unpack root {path}")]
    Root {
        /// The root.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl HasKind for UnpackError {
    fn kind(&self) -> ErrorKind {
        match self {
            UnpackError::BadEntry { .. }
            | UnpackError::Escape { .. }
            | UnpackError::DiffIdMismatch { .. } => ErrorKind::DataCorrupt,
            UnpackError::Read { source, .. } => {
                if source
                    .get_ref()
                    .is_some_and(|r| r.is::<crate::remote::RemoteError>())
                {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::DataCorrupt
                }
            }
            UnpackError::TooLarge { .. } => ErrorKind::LimitExceeded,
            UnpackError::UnsupportedMounts { .. } => ErrorKind::Unsupported,
            UnpackError::Entry { .. } | UnpackError::Root { .. } => ErrorKind::Internal,
        }
    }
}

/// How whiteouts are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Convert to overlayfs whiteouts; `xattr_prefix` is `trusted.` (root) or `user.`
    /// (rootless overlay with `userxattr`).
    Overlay {
        /// Prefix of the `overlay.opaque` xattr.
        xattr_prefix: String,
    },
    /// Remove the whited-out lower content from the tree (native snapshotter).
    Apply,
    /// Not a layer but an ordinary archive (a build's `ADD`): `.wh.` names are files
    /// like any other.
    Plain,
}

/// One contiguous range of an ID mapping (like `/proc/PID/uid_map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First ID inside the container.
    pub container: u32,
    /// First ID on the host.
    pub host: u32,
    /// Number of IDs.
    pub size: u32,
}

/// Maps image (container) IDs to the IDs the files get on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMapping {
    /// UID ranges.
    pub uids: Vec<IdRange>,
    /// GID ranges.
    pub gids: Vec<IdRange>,
}

fn map_id(ranges: &[IdRange], id: u32) -> Option<u32> {
    if ranges.is_empty() {
        return Some(id);
    }
    ranges
        .iter()
        .find(|r| id >= r.container && id - r.container < r.size)
        .map(|r| r.host + (id - r.container))
}

impl IdMapping {
    /// The host UID for an image UID (`None`: unmapped).
    pub fn uid(&self, id: u32) -> Option<u32> {
        map_id(&self.uids, id)
    }
    /// The host GID for an image GID (`None`: unmapped).
    pub fn gid(&self, id: u32) -> Option<u32> {
        map_id(&self.gids, id)
    }
}

/// Options for applying a layer.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Whiteout handling.
    pub whiteouts: WhiteoutMode,
    /// Set file ownership from the tar (needs CAP_CHOWN); otherwise files belong to us.
    pub chown: bool,
    /// ID mapping applied to ownership when `chown` is set.
    pub id_mapping: IdMapping,
    /// Device nodes that cannot be created are skipped with a warning instead of failing.
    pub skip_devices_on_eperm: bool,
    /// Bound on uncompressed bytes.
    pub max_size: u64,
    /// Bound on entries.
    pub max_entries: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        let root = rustix::process::geteuid().is_root();
        ApplyOptions {
            whiteouts: WhiteoutMode::Apply,
            chown: root,
            id_mapping: IdMapping::default(),
            skip_devices_on_eperm: true,
            max_size: DEFAULT_MAX_LAYER_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Wraps a compressed stream in its decompressor.
pub fn decompress<'a, R: Read + 'a>(r: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(256 << 10, r),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
    })
}

/// Fails reads once more than `limit` bytes went through.
struct Bounded<R> {
    inner: R,
    left: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("uncompressed size bound exceeded")]
struct BoundExceeded;

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(BoundExceeded));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The directory a layer is written into, from a snapshotter's mounts: the source of a
/// single bind mount, or the `upperdir` of an overlay mount.
pub fn target_dir(mounts: &[Mount]) -> Result<PathBuf, UnpackError> {
    let unsupported = || UnpackError::UnsupportedMounts {
        mounts: mounts
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    };
    match mounts {
        [m] if m.kind == "bind" || m.kind == "rbind" => Ok(m.source.clone()),
        [m] if m.kind == "overlay" || m.kind.ends_with("fuse-overlayfs") => m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(PathBuf::from)
            .ok_or_else(unsupported),
        _ => Err(unsupported()),
    }
}

/// Decompresses `compressed` and applies it to `root`, checking the uncompressed
/// stream's digest against `diff_id` when given. `layer` names the blob in errors.
/// The whole compressed stream is consumed (so a hashing reader below sees it all).
pub fn apply_layer<R: Read>(
    root: &Path,
    compressed: R,
    compression: Compression,
    diff_id: Option<&Digest>,
    layer: &str,
    opts: &ApplyOptions,
) -> Result<(Digest, ApplyStats), UnpackError> {
    let read_err = |e: io::Error| {
        if e.get_ref().is_some_and(|r| r.is::<BoundExceeded>()) {
            UnpackError::TooLarge {
                layer: layer.to_string(),
                what: "bytes",
                limit: opts.max_size,
            }
        } else {
            UnpackError::Read {
                layer: layer.to_string(),
                source: e,
            }
        }
    };
    let mut compressed = compressed;
    let stats;
    let actual;
    {
        let dec = decompress(&mut compressed, compression).map_err(read_err)?;
        let bounded = Bounded {
            inner: dec,
            left: opts.max_size,
        };
        let digester = diff_id.map(Digester::for_digest).unwrap_or_default();
        let mut hashing = HashingReader::new(bounded, digester);
        stats = self::tar::apply(root, &mut hashing, layer, opts).map_err(|e| match e {
            UnpackError::Read { source, .. } => read_err(source),
            other => other,
        })?;
        // the tar end marker may be followed by padding: hash it too
        let (d, _, _) = hashing.finish().map_err(read_err)?;
        actual = d;
    }
    io::copy(&mut compressed, &mut io::sink()).map_err(read_err)?;
    if let Some(expected) = diff_id {
        if *expected != actual {
            return Err(UnpackError::DiffIdMismatch {
                layer: layer.to_string(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok((actual, stats))
}

#[cfg(test)]
mod tests;

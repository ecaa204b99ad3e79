//! The content store: blobs addressed by digest, written through an ingest directory
//! and renamed into place only after their size and digest have been verified, so a
//! blob path that exists always holds exactly the bytes its name promises.
//!
//! # On-disk format, version 1
//!
//! ```text
//! ROOT/VERSION                    "1"
//! ROOT/blobs/<alg>/<hex>          verified blobs, read-only (0444)
//! ROOT/ingest/<sha256(ref)>/      one directory per ingest in progress
//!     ref                         the ingest reference (the expected digest)
//!     total                       the expected size in decimal
//!     data                        the bytes received so far
//!     lock                        flock(2)ed exclusively by the writer while it runs
//! ```
//!
//! An ingest survives a crash (`kill -9`): the next writer for the same reference takes
//! the lock, re-hashes `data` and continues from its end, so finished parts of a
//! download are never fetched again. Garbage collection removes ingests nobody holds
//! the lock of once they are older than its grace period.

mod ingest;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use ingest::Writer;

use crate::digest::{self, Digest, DigestError};
use crate::errdefs::{ErrorKind, HasKind};

/// On-disk format version of the content store.
pub const FORMAT_VERSION: u32 = 1;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A file system operation failed.
    #[error("content store: {op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The blob is not in the store.
    #[error("blob {digest} not found in the content store")]
    NotFound {
        /// The blob.
        digest: Digest,
    },
    /// Written bytes do not hash to the expected digest.
    #[error("blob {expected}: digest mismatch, the data hashes to {actual}")]
    DigestMismatch {
        /// The expected digest.
        expected: Digest,
        /// What the data hashes to.
        actual: Digest,
    },
    /// Written bytes do not have the expected size.
    #[error("blob {digest}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The expected size.
        expected: u64,
        /// The size written.
        actual: u64,
    },
    /// A blob is larger than a caller's bound.
    #[error("blob {digest} is too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// The digest cannot name a blob.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The store was written by an incompatible version.
    #[error("content store {path}: format version {found} is not supported (this build reads {FORMAT_VERSION})")]
    Version {
        /// The VERSION file.
        path: PathBuf,
        /// The version found.
        found: String,
    },
}

impl HasKind for ContentError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContentError::Io { source, .. } => crate::errdefs::io_kind(source),
            ContentError::NotFound { .. } => ErrorKind::NotFound,
            ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. } => {
                ErrorKind::DataCorrupt
            }
            ContentError::TooLarge { .. } => ErrorKind::LimitExceeded,
            ContentError::Digest(e) => e.kind(),
            ContentError::Version { .. } => ErrorKind::FailedPrecondition,
        }
    }
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A blob in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Last modification (commit) time.
    pub modified: std::time::SystemTime,
}

/// A content store rooted at a directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        for d in [
            root.join("blobs/sha256"),
            root.join("blobs/sha512"),
            root.join("ingest"),
        ] {
            std::fs::create_dir_all(&d).map_err(io_err("create directory", &d))?;
        }
        let vf = root.join("VERSION");
        match std::fs::read_to_string(&vf) {
            Ok(v) if v.trim() == FORMAT_VERSION.to_string() => {}
            Ok(v) => {
                return Err(ContentError::Version {
                    path: vf,
                    found: v.trim().to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Written aside and renamed into place: a process opening the store at
                // the same moment sees no file or the whole file, never an empty one.
                let tmp = root.join(format!(".VERSION.{}", std::process::id()));
                std::fs::write(&tmp, format!("{FORMAT_VERSION}\n"))
                    .map_err(io_err("write", &tmp))?;
                std::fs::rename(&tmp, &vf).map_err(io_err("rename into place", &vf))?;
            }
            Err(e) => {
                return Err(ContentError::Io {
                    op: "read",
                    path: vf,
                    source: e,
                })
            }
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path a blob has (or would have) in the store.
    pub fn blob_path(&self, d: &Digest) -> Result<PathBuf, ContentError> {
        digest::validate(d)?;
        Ok(self
            .root
            .join("blobs")
            .join(digest::algorithm(d))
            .join(digest::hex_part(d)))
    }

    /// Size and time of a blob, if present.
    pub fn info(&self, d: &Digest) -> Result<Option<BlobInfo>, ContentError> {
        let p = self.blob_path(d)?;
        match std::fs::metadata(&p) {
            Ok(m) => Ok(Some(BlobInfo {
                digest: d.clone(),
                size: m.len(),
                modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContentError::Io {
                op: "stat",
                path: p,
                source: e,
            }),
        }
    }

    /// Whether a blob is present.
    pub fn contains(&self, d: &Digest) -> Result<bool, ContentError> {
        Ok(self.info(d)?.is_some())
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.blob_path(d)?;
        File::open(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ContentError::NotFound { digest: d.clone() }
            } else {
                ContentError::Io {
                    op: "open",
                    path: p.clone(),
                    source: e,
                }
            }
        })
    }

    /// Reads a whole blob, refusing blobs over `limit` bytes.
    pub fn read_blob(&self, d: &Digest, limit: u64) -> Result<Vec<u8>, ContentError> {
        let f = self.open_blob(d)?;
        let p = self.blob_path(d)?;
        let size = f.metadata().map_err(io_err("stat", &p))?.len();
        if size > limit {
            return Err(ContentError::TooLarge {
                digest: d.clone(),
                size,
                limit,
            });
        }
        let mut v = Vec::with_capacity(size as usize);
        f.take(limit + 1)
            .read_to_end(&mut v)
            .map_err(io_err("read", &p))?;
        Ok(v)
    }

    /// Stores `bytes` as blob `expected` (verified) and returns its size.
    pub fn write_blob(&self, expected: &Digest, bytes: &[u8]) -> Result<u64, ContentError> {
        if self.contains(expected)? {
            return Ok(bytes.len() as u64);
        }
        let mut w = self.writer(expected, bytes.len() as u64)?;
        if w.offset() > 0 {
            w.reset()?;
        }
        std::io::Write::write_all(&mut w, bytes).map_err(io_err("write", &self.root))?;
        w.commit()?;
        Ok(bytes.len() as u64)
    }

    /// Opens an ingest writer for blob `expected` of `size` bytes; it resumes the data of
    /// an interrupted earlier ingest. Blocks while another process writes the same blob.
    pub fn writer(&self, expected: &Digest, size: u64) -> Result<Writer, ContentError> {
        digest::validate(expected)?;
        Writer::open(self, expected, size)
    }

    /// Removes a blob (missing blobs are fine).
    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        let p = self.blob_path(d)?;
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io {
                op: "remove",
                path: p,
                source: e,
            }),
        }
    }

    /// Every blob in the store.
    pub fn walk(&self) -> Result<Vec<BlobInfo>, ContentError> {
        let mut out = Vec::new();
        for alg in ["sha256", "sha512"] {
            let dir = self.root.join("blobs").join(alg);
            let rd = std::fs::read_dir(&dir).map_err(io_err("list", &dir))?;
            for e in rd {
                let e = e.map_err(io_err("list", &dir))?;
                let name = e.file_name().to_string_lossy().to_string();
                let Ok(d) = digest::parse(&format!("{alg}:{name}")) else {
                    tracing::warn!(path = %e.path().display(), "ignoring stray file in content store");
                    continue;
                };
                let m = e.metadata().map_err(io_err("stat", &e.path()))?;
                out.push(BlobInfo {
                    digest: d,
                    size: m.len(),
                    modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
                });
            }
        }
        Ok(out)
    }

    /// Removes ingests older than `grace` that no writer holds; returns bytes freed.
    pub fn prune_ingests(&self, grace: std::time::Duration) -> Result<u64, ContentError> {
        ingest::prune(self, grace)
    }

    /// The partial ingest of `expected`, if any: bytes received so far.
    pub fn ingest_progress(&self, expected: &Digest) -> Result<Option<u64>, ContentError> {
        ingest::progress(self, expected)
    }
}

#[cfg(test)]
mod tests;

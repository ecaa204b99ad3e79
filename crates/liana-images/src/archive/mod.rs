//! Saving images to and loading them from files: OCI image layouts (a directory or a
//! tar of one, image-spec `image-layout.md`) and docker-archive tars (`docker save`'s
//! `manifest.json` format).
//!
//! Loading extracts tars with the same safe applier as layers (no entry can escape the
//! temporary directory), imports every blob through the verifying content store, and
//! unpacks the images.

mod docker;
mod oci;

use std::path::{Path, PathBuf};

use crate::content::ContentError;
use crate::errdefs::{ErrorKind, HasKind};
use crate::manifest::ManifestError;
use crate::metadata::ImageRecord;
use crate::pull::PullError;
use crate::reference::ReferenceError;
use crate::store::{ImageStore, StoreError};
use crate::unpack::UnpackError;

/// Archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An OCI layout directory.
    OciDir,
    /// A tar of an OCI layout (`oci-archive`).
    OciArchive,
    /// A docker-archive tar.
    DockerArchive,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file operation failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The input is not an archive we know.
    #[error("{path}: not an OCI layout or docker-archive ({reason})")]
    UnknownFormat {
        /// The input.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A JSON document in the archive is malformed.
    #[error("{path}: invalid {what}")]
    Json {
        /// The archive.
        path: PathBuf,
        /// Which document.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A blob the archive refers to is missing or corrupt.
    #[error("{path}: blob {what}")]
    Blob {
        /// The archive.
        path: PathBuf,
        /// Which blob.
        what: String,
        /// The cause.
        #[source]
        source: ContentError,
    },
    /// Extraction of the tar failed.
    #[error("{path}: extract")]
    Extract {
        /// The archive.
        path: PathBuf,
        /// The cause.
        #[source]
        source: UnpackError,
    },
    /// A manifest in the archive is unusable.
    #[error("{path}")]
    Manifest {
        /// The archive.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ManifestError,
    },
    /// A name in the archive is invalid.
    #[error("{path}")]
    Reference {
        /// The archive.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ReferenceError,
    },
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Unpacking a loaded image failed.
    #[error(transparent)]
    Unpack(#[from] PullError),
    /// Nothing to save or load.
    #[error("{path}: contains no image")]
    Empty {
        /// The archive.
        path: PathBuf,
    },
}

impl HasKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Io { source, .. } => crate::errdefs::io_kind(source),
            ArchiveError::UnknownFormat { .. } | ArchiveError::Empty { .. } => {
                ErrorKind::InvalidArgument
            }
            ArchiveError::Json { .. } => ErrorKind::DataCorrupt,
            ArchiveError::Blob { source, .. } => source.kind(),
            ArchiveError::Extract { source, .. } => source.kind(),
            ArchiveError::Manifest { source, .. } => source.kind(),
            ArchiveError::Reference { source, .. } => source.kind(),
            ArchiveError::Store(e) => e.kind(),
            ArchiveError::Unpack(e) => e.kind(),
        }
    }
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A temporary directory under the store root, removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(store: &ImageStore, what: &str) -> Result<Self, ArchiveError> {
        let p = store.root().join("tmp").join(format!(
            "{what}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the images `names` (at least one) to `dest` in `format`.
pub fn save(
    store: &ImageStore,
    names: &[String],
    dest: &Path,
    format: Format,
) -> Result<(), ArchiveError> {
    let recs = names
        .iter()
        .map(|n| store.find(n))
        .collect::<Result<Vec<_>, _>>()?;
    if recs.is_empty() {
        return Err(ArchiveError::Empty { path: dest.into() });
    }
    match format {
        Format::OciDir => oci::save_dir(store, &recs, dest),
        Format::OciArchive => oci::save_tar(store, &recs, dest),
        Format::DockerArchive => docker::save(store, &recs, dest),
    }
}

/// Loads every image in `src` (format detected), unpacks them and returns their
/// records.
pub fn load(store: &ImageStore, src: &Path) -> Result<Vec<ImageRecord>, ArchiveError> {
    let recs = if src.is_dir() {
        if !src.join("oci-layout").exists() {
            return Err(ArchiveError::UnknownFormat {
                path: src.into(),
                reason: "directory without oci-layout".into(),
            });
        }
        oci::load_dir(store, src, src)?
    } else {
        let tmp = TempDir::new(store, "load")?;
        let f = std::fs::File::open(src).map_err(io_err("open", src))?;
        let opts = crate::unpack::ApplyOptions {
            chown: false,
            whiteouts: crate::unpack::WhiteoutMode::Apply,
            ..Default::default()
        };
        let name = src.display().to_string();
        crate::unpack::apply_layer(
            &tmp.0,
            std::io::BufReader::new(f),
            sniff(src)?,
            None,
            &name,
            &opts,
        )
        .map_err(|e| ArchiveError::Extract {
            path: src.into(),
            source: e,
        })?;
        if tmp.0.join("oci-layout").exists() {
            oci::load_dir(store, &tmp.0, src)?
        } else if tmp.0.join("manifest.json").exists() {
            docker::load(store, &tmp.0, src)?
        } else {
            return Err(ArchiveError::UnknownFormat {
                path: src.into(),
                reason: "no oci-layout or manifest.json".into(),
            });
        }
    };
    if recs.is_empty() {
        return Err(ArchiveError::Empty { path: src.into() });
    }
    let mut out = Vec::new();
    for mut r in recs {
        r.snapshot = crate::pull::unpack_local(store, &r, &crate::pull::NoProgress)?;
        r.snapshotter = Some(store.snapshotter().name().to_string());
        store
            .metadata()
            .put_image(r.clone())
            .map_err(StoreError::from)?;
        out.push(r);
    }
    Ok(out)
}

/// The compression of a file, from its magic bytes.
pub(crate) fn sniff(p: &Path) -> Result<crate::manifest::Compression, ArchiveError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(p).map_err(io_err("open", p))?;
    let n = f.read(&mut magic).map_err(io_err("read", p))?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => crate::manifest::Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => crate::manifest::Compression::Zstd,
        _ => crate::manifest::Compression::None,
    })
}

/// Imports the file `p` as a blob; verifies `expected` when given; returns digest and size.
pub(crate) fn import_blob(
    store: &ImageStore,
    p: &Path,
    expected: Option<&crate::digest::Digest>,
    archive: &Path,
) -> Result<(crate::digest::Digest, u64), ArchiveError> {
    let blob_err = |what: String| {
        move |e| ArchiveError::Blob {
            path: archive.into(),
            what,
            source: e,
        }
    };
    let actual = match expected {
        Some(d) => d.clone(),
        None => {
            let f = std::fs::File::open(p).map_err(io_err("open", p))?;
            let (d, _, _) =
                crate::digest::HashingReader::new(f, crate::digest::Digester::default())
                    .finish()
                    .map_err(io_err("read", p))?;
            d
        }
    };
    let size = std::fs::metadata(p).map_err(io_err("stat", p))?.len();
    if store
        .content()
        .contains(&actual)
        .map_err(blob_err(actual.to_string()))?
    {
        return Ok((actual, size));
    }
    let mut w = store
        .content()
        .writer(&actual, size)
        .map_err(blob_err(actual.to_string()))?;
    if w.offset() > 0 {
        w.reset().map_err(blob_err(actual.to_string()))?;
    }
    let mut f = std::fs::File::open(p).map_err(io_err("open", p))?;
    std::io::copy(&mut f, &mut w).map_err(io_err("read", p))?;
    w.commit()
        .map_err(blob_err(format!("{} ({})", actual, p.display())))?;
    Ok((actual, size))
}

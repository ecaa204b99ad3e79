//! Push: upload an image's blobs (skipping those the registry has, mounting from the
//! repository it was pulled from when on the same registry) and put its manifest, and
//! for an index whose children are all present, every child and then the index.

use oci_spec::image::Descriptor;

use crate::errdefs::{ErrorKind, HasKind};
use crate::manifest;
use crate::metadata::ImageRecord;
use crate::reference::{Reference, ReferenceError};
use crate::remote::{PushedBlob, Registry, RemoteConfig, RemoteError, UploadSource};
use crate::store::{ImageStore, StoreError};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The destination does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The local image is missing or unreadable.
    #[error("push {image}")]
    Store {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The registry failed.
    #[error("push {image} to {destination}")]
    Remote {
        /// The image.
        image: String,
        /// Where to.
        destination: String,
        /// The cause.
        #[source]
        source: RemoteError,
    },
}

impl HasKind for PushError {
    fn kind(&self) -> ErrorKind {
        match self {
            PushError::Reference(e) => e.kind(),
            PushError::Store { source, .. } => source.kind(),
            PushError::Remote { source, .. } => source.kind(),
        }
    }
}

/// Per-blob outcome, for progress output.
pub trait PushProgress: Sync {
    /// A blob was handled.
    fn blob(&self, desc: &Descriptor, how: PushedBlob);
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPushProgress;
impl PushProgress for NoPushProgress {
    fn blob(&self, _desc: &Descriptor, _how: PushedBlob) {}
}

struct Ctx<'a> {
    store: &'a ImageStore,
    reg: Registry,
    repo: String,
    mount_from: Option<String>,
    image: String,
    dest: String,
    progress: &'a dyn PushProgress,
}

impl Ctx<'_> {
    fn remote(&self, e: RemoteError) -> PushError {
        PushError::Remote {
            image: self.image.clone(),
            destination: self.dest.clone(),
            source: e,
        }
    }
    fn store_err(&self, e: impl Into<StoreError>) -> PushError {
        PushError::Store {
            image: self.image.clone(),
            source: e.into(),
        }
    }

    fn blob(&self, d: &Descriptor) -> Result<(), PushError> {
        let path = self
            .store
            .content()
            .blob_path(d.digest())
            .map_err(|e| self.store_err(e))?;
        if !path.exists() {
            return Err(self.store_err(crate::content::ContentError::NotFound {
                digest: d.digest().clone(),
            }));
        }
        let how = self
            .reg
            .push_blob(
                &self.repo,
                d,
                &UploadSource::File(path),
                self.mount_from.as_deref(),
            )
            .map_err(|e| self.remote(e))?;
        self.progress.blob(d, how);
        Ok(())
    }

    /// Pushes a manifest's blobs and then the manifest under `tag_or_digest`.
    fn manifest(&self, d: &Descriptor, tag_or_digest: &str) -> Result<(), PushError> {
        let limit = self.store.options().max_manifest_size;
        let bytes = self
            .store
            .content()
            .read_blob(d.digest(), limit)
            .map_err(|e| self.store_err(e))?;
        let m = manifest::parse_manifest(&bytes, d.digest()).map_err(|e| self.store_err(e))?;
        self.blob(m.config())?;
        for l in m.layers() {
            self.blob(l)?;
        }
        self.reg
            .put_manifest(&self.repo, tag_or_digest, d.media_type().as_ref(), &bytes)
            .map_err(|e| self.remote(e))
    }
}

/// Pushes the local image `image` to `destination` (default: its own name).
/// Returns the digest of the manifest or index pushed.
pub fn push(
    store: &ImageStore,
    image: &str,
    destination: Option<&str>,
    remote: &RemoteConfig,
    progress: &dyn PushProgress,
) -> Result<crate::digest::Digest, PushError> {
    let rec: ImageRecord = store.find(image).map_err(|e| PushError::Store {
        image: image.into(),
        source: e,
    })?;
    let dest = Reference::parse(destination.unwrap_or(&rec.name))?;
    let ep = remote
        .registries
        .endpoints(&dest)
        .ok()
        .and_then(|v| v.into_iter().last())
        .unwrap_or(crate::config::Endpoint {
            reference: dest.clone(),
            insecure: false,
            mirror: false,
        });
    let target = &ep.reference;
    let reg = remote
        .client(target.registry(), target.repository(), ep.insecure)
        .map_err(|e| PushError::Remote {
            image: image.into(),
            destination: dest.to_string(),
            source: e,
        })?;
    let mount_from = rec
        .source
        .as_deref()
        .and_then(|s| s.strip_prefix(&format!("{}/", target.registry())))
        .map(str::to_string);
    let ctx = Ctx {
        store,
        reg,
        repo: target.repository().to_string(),
        mount_from,
        image: image.into(),
        dest: dest.to_string(),
        progress,
    };
    let tag = dest
        .tag()
        .map(str::to_string)
        .unwrap_or_else(|| rec.manifest.digest().to_string());
    let target_mt = rec.target.media_type().to_string();
    let limit = store.options().max_manifest_size;
    if manifest::is_index(&target_mt) {
        let bytes = store
            .content()
            .read_blob(rec.target.digest(), limit)
            .map_err(|e| ctx.store_err(e))?;
        let idx =
            manifest::parse_index(&bytes, rec.target.digest()).map_err(|e| ctx.store_err(e))?;
        let complete = idx
            .manifests()
            .iter()
            .all(|d| store.content().contains(d.digest()).unwrap_or(false));
        if complete {
            for d in idx.manifests() {
                ctx.manifest(d, d.digest().as_ref())?;
            }
            ctx.reg
                .put_manifest(&ctx.repo, &tag, &target_mt, &bytes)
                .map_err(|e| ctx.remote(e))?;
            return Ok(rec.target.digest().clone());
        }
        tracing::info!(
            image,
            "index children not all present locally: pushing the platform manifest only"
        );
    }
    ctx.manifest(&rec.manifest, &tag)?;
    Ok(rec.manifest.digest().clone())
}

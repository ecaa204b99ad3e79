//! [`ImageStore`]: one storage root holding a content store, a metadata database and a
//! snapshotter, with image-level operations (lookup, tag, remove, inspect) on top.
//!
//! # On-disk layout, version 1
//!
//! ```text
//! ROOT/content/            the content store (see crate::content)
//! ROOT/metadata.db         images and leases (see crate::metadata)
//! ROOT/snapshots/overlayfs/ or ROOT/snapshots/native/   a snapshotter (see crate::snapshot)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::content::{ContentError, ContentStore};
use crate::errdefs::{ErrorKind, HasKind};
use crate::manifest::{self, ManifestError};
use crate::metadata::{ImageRecord, MetadataError, MetadataStore};
use crate::reference::{Reference, ReferenceError, ShortName};
use crate::snapshot::{
    self, NativeSnapshotter, OverlayOptions, OverlaySnapshotter, SnapshotError, Snapshotter,
};
use crate::unpack::ApplyOptions;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Content store failure.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Metadata failure.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Snapshotter failure.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A stored manifest or config is malformed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A name does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// No image matches the name or ID.
    #[error("image {name} not found")]
    ImageNotFound {
        /// What was looked up.
        name: String,
    },
    /// An ID names an image with several names and `force` was not given.
    #[error("image {id} has {names} names ({list}); remove them by name or use --force")]
    MultipleNames {
        /// The ID given.
        id: String,
        /// How many names.
        names: usize,
        /// The names.
        list: String,
    },
    /// The root cannot be created.
    #[error("create storage root {path}")]
    Root {
        /// The root.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Content(e) => e.kind(),
            StoreError::Metadata(e) => e.kind(),
            StoreError::Snapshot(e) => e.kind(),
            StoreError::Manifest(e) => e.kind(),
            StoreError::Reference(e) => e.kind(),
            StoreError::ImageNotFound { .. } => ErrorKind::NotFound,
            StoreError::MultipleNames { .. } => ErrorKind::FailedPrecondition,
            StoreError::Root { source, .. } => crate::errdefs::io_kind(source),
        }
    }
}

/// Which snapshotter a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotterKind {
    /// overlayfs.
    Overlay,
    /// Full copies.
    Native,
    /// overlayfs when the kernel has it and we are root, else native.
    Auto,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The storage root.
    pub root: PathBuf,
    /// The snapshotter.
    pub snapshotter: SnapshotterKind,
    /// Layer application options (ownership, bounds); the whiteout mode is set from
    /// the snapshotter.
    pub apply: ApplyOptions,
    /// Size bound for manifests, indexes and configs.
    pub max_manifest_size: u64,
}

impl StoreOptions {
    /// Defaults for `root`.
    pub fn new(root: &Path) -> Self {
        StoreOptions {
            root: root.to_path_buf(),
            snapshotter: SnapshotterKind::Auto,
            apply: ApplyOptions::default(),
            max_manifest_size: crate::remote::DEFAULT_MAX_MANIFEST_SIZE,
        }
    }
}

/// A storage root. Cheap to clone; safe to share between threads.
#[derive(Debug, Clone)]
pub struct ImageStore {
    opts: StoreOptions,
    content: ContentStore,
    meta: MetadataStore,
    snapshotter: Arc<dyn Snapshotter>,
}

impl ImageStore {
    /// Opens (creating) the store.
    pub fn open(opts: StoreOptions) -> Result<Self, StoreError> {
        let root = &opts.root;
        std::fs::create_dir_all(root).map_err(|e| StoreError::Root {
            path: root.clone(),
            source: e,
        })?;
        let content = ContentStore::open(&root.join("content"))?;
        let meta = MetadataStore::open(&root.join("metadata.db"))?;
        let kind = match opts.snapshotter {
            SnapshotterKind::Auto
                if snapshot::overlay_supported() && rustix::process::geteuid().is_root() =>
            {
                SnapshotterKind::Overlay
            }
            SnapshotterKind::Auto => SnapshotterKind::Native,
            k => k,
        };
        let snapshotter: Arc<dyn Snapshotter> = match kind {
            SnapshotterKind::Overlay => Arc::new(OverlaySnapshotter::open(
                &root.join("snapshots/overlayfs"),
                OverlayOptions::default(),
            )?),
            _ => Arc::new(NativeSnapshotter::open(&root.join("snapshots/native"))?),
        };
        let mut opts = opts;
        opts.apply.whiteouts = snapshotter.whiteout_mode();
        Ok(ImageStore {
            opts,
            content,
            meta,
            snapshotter,
        })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.opts.root
    }
    /// The options in use.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }
    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }
    /// The metadata store.
    pub fn metadata(&self) -> &MetadataStore {
        &self.meta
    }
    /// The snapshotter.
    pub fn snapshotter(&self) -> &Arc<dyn Snapshotter> {
        &self.snapshotter
    }

    /// All image records.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self.meta.images()?)
    }

    /// The records `name` designates: a full or short name (`busybox` matches
    /// `docker.io/library/busybox:latest` and `<any registry>/busybox:latest`), a
    /// digest-pinned name, or an image ID or ID prefix (all names of that image).
    pub fn lookup(&self, name: &str) -> Result<Vec<ImageRecord>, StoreError> {
        let all = self.meta.images()?;
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 3
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let by_id: Vec<_> = all
                .iter()
                .filter(|r| crate::digest::hex_part(r.config.digest()).starts_with(hex))
                .cloned()
                .collect();
            if !by_id.is_empty() {
                return Ok(by_id);
            }
        }
        let short = ShortName::parse(name)?;
        let full = Reference::parse(name)?.to_string();
        if let Some(r) = all.iter().find(|r| r.name == full) {
            return Ok(vec![r.clone()]);
        }
        if short.is_short() {
            // any registry: match on the repository path's tail and the tag/digest
            let probe = short.qualify("localhost").to_string();
            let tail = probe
                .strip_prefix("localhost/")
                .unwrap_or(&probe)
                .to_string();
            let found: Vec<_> = all
                .iter()
                .filter(|r| {
                    let rest = r.name.split_once('/').map(|(_, x)| x).unwrap_or("");
                    rest == tail || rest.strip_prefix("library/") == Some(tail.as_str())
                })
                .cloned()
                .collect();
            if let Some(first) = found.into_iter().next() {
                return Ok(vec![first]);
            }
        }
        Err(StoreError::ImageNotFound { name: name.into() })
    }

    /// The one record `name` designates (the first, for an ID with several names).
    pub fn find(&self, name: &str) -> Result<ImageRecord, StoreError> {
        Ok(self.lookup(name)?.remove(0))
    }

    /// The manifest of an image.
    pub fn manifest(&self, rec: &ImageRecord) -> Result<ImageManifest, StoreError> {
        let b = self
            .content
            .read_blob(rec.manifest.digest(), self.opts.max_manifest_size)?;
        Ok(manifest::parse_manifest(&b, rec.manifest.digest())?)
    }

    /// The config of an image.
    pub fn config(&self, rec: &ImageRecord) -> Result<ImageConfiguration, StoreError> {
        let b = self
            .content
            .read_blob(rec.config.digest(), self.opts.max_manifest_size)?;
        let m = self.manifest(rec)?;
        Ok(manifest::parse_config(
            &b,
            rec.config.digest(),
            m.layers().len(),
        )?)
    }

    /// Adds name `new` for the image `src` designates.
    pub fn tag(&self, src: &str, new: &str) -> Result<ImageRecord, StoreError> {
        let rec = self.find(src)?;
        let new = Reference::parse(new)?;
        let mut n = rec.clone();
        n.name = new.to_string();
        n.created_at = crate::metadata::now_secs();
        self.meta.put_image(n.clone())?;
        Ok(n)
    }

    /// Removes the names `name` designates (all names of an ID only with `force`, or
    /// when there is one), then collects garbage. Returns the removed names.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<String>, StoreError> {
        let recs = self.lookup(name)?;
        let by_name = recs.len() == 1 && recs[0].id() != name && !recs[0].id().ends_with(name);
        if recs.len() > 1 && !force && !by_name {
            return Err(StoreError::MultipleNames {
                id: name.into(),
                names: recs.len(),
                list: recs
                    .iter()
                    .map(|r| r.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut removed = Vec::new();
        for r in recs {
            self.meta.delete_image(&r.name)?;
            removed.push(r.name);
        }
        crate::gc::collect(self, &[])?;
        Ok(removed)
    }

    /// Total size of an image: its blobs in the content store.
    pub fn size(&self, rec: &ImageRecord) -> Result<u64, StoreError> {
        let m = self.manifest(rec)?;
        let mut total = rec.manifest.size() + rec.config.size();
        for l in m.layers() {
            total += l.size();
        }
        Ok(total)
    }
}

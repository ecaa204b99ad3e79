//! Pull: resolve a reference through registries.conf (short names, mirrors,
//! rewrites), fetch the manifest (selecting the platform from an index) and config,
//! then fetch and unpack the layers in parallel, each decompressed and applied while
//! it downloads, with its digest and diff ID verified on the way.
//!
//! A pull holds a lease so that a concurrent garbage collection keeps its content. If
//! it fails, the lease is dropped and garbage is collected, leaving nothing
//! half-stored; partial downloads interrupted by network errors (or a `kill -9`) stay
//! in the content store's ingest directory and are resumed by the next pull.

mod layers;

use std::time::Duration;

use crate::config::registries::RegistriesError;
use crate::content::ContentError;
use crate::digest::{self, Digest};
use crate::errdefs::{ErrorKind, HasKind};
use crate::manifest::{self, ManifestError, Platform};
use crate::metadata::{now_secs, ImageRecord};
use crate::reference::{Reference, ReferenceError, ShortName};
use crate::remote::{RemoteConfig, RemoteError};
use crate::snapshot::SnapshotError;
use crate::store::{ImageStore, StoreError};
use crate::unpack::UnpackError;

pub use layers::LayerState;

/// How long a pull's lease protects its content if the pull dies.
pub const LEASE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Options of a pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registries, credentials, certificates, TLS.
    pub remote: RemoteConfig,
    /// The platform to select from an index.
    pub platform: Platform,
    /// Unpack into the snapshotter (else only fetch the blobs).
    pub unpack: bool,
    /// Layers fetched at the same time.
    pub max_concurrent: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            remote: RemoteConfig::default(),
            platform: Platform::host(),
            unpack: true,
            max_concurrent: 4,
        }
    }
}

/// Progress events, in order per blob.
#[derive(Debug, Clone)]
pub enum Event {
    /// The reference resolved to a manifest or index.
    Resolved {
        /// The reference as pulled (after rewrites).
        reference: String,
        /// The digest of what it points at.
        digest: Digest,
    },
    /// A layer will be processed.
    Layer {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Bytes of a layer received so far (including a resumed prefix).
    Bytes {
        /// The blob.
        digest: Digest,
        /// Bytes so far.
        done: u64,
    },
    /// A layer is finished.
    LayerDone {
        /// The blob.
        digest: Digest,
        /// How.
        state: LayerState,
    },
    /// The image is recorded.
    Done {
        /// The image ID (config digest).
        id: Digest,
    },
}

/// Receives progress events (from several threads).
pub trait Progress: Sync {
    /// One event.
    fn event(&self, e: &Event);
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _e: &Event) {}
}

/// A failure of one layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Fetching failed or the blob failed verification.
    #[error(transparent)]
    Fetch(#[from] RemoteError),
    /// Applying failed (bad entry, escape, diff ID mismatch, bomb).
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// Storing failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl HasKind for LayerError {
    fn kind(&self) -> ErrorKind {
        match self {
            LayerError::Fetch(e) => e.kind(),
            LayerError::Unpack(e) => e.kind(),
            LayerError::Content(e) => e.kind(),
            LayerError::Snapshot(e) => e.kind(),
        }
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The reference does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// registries.conf refuses it.
    #[error(transparent)]
    Registries(#[from] RegistriesError),
    /// Talking to the registry failed.
    #[error("pull {reference}")]
    Remote {
        /// The image.
        reference: String,
        /// The cause.
        #[source]
        source: RemoteError,
    },
    /// A manifest, index or config is unusable.
    #[error("pull {reference}")]
    Manifest {
        /// The image.
        reference: String,
        /// The cause.
        #[source]
        source: ManifestError,
    },
    /// The config's diff IDs are malformed.
    #[error("pull {reference}: config {config} has an invalid diff id {diff_id:?}")]
    BadDiffId {
        /// The image.
        reference: String,
        /// The config.
        config: Digest,
        /// The bad value.
        diff_id: String,
    },
    /// A layer failed.
    #[error("pull {reference}: layer {digest}")]
    Layer {
        /// The image.
        reference: String,
        /// The layer blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: LayerError,
    },
    /// The local store failed.
    #[error("pull {reference}")]
    Store {
        /// The image.
        reference: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// A short name was found in none of the search registries.
    #[error("{input}: not found in any search registry (tried {tried})")]
    ShortName {
        /// The name.
        input: String,
        /// The candidates tried.
        tried: String,
        /// The last failure.
        #[source]
        source: Box<PullError>,
    },
}

impl HasKind for PullError {
    fn kind(&self) -> ErrorKind {
        match self {
            PullError::Reference(e) => e.kind(),
            PullError::Registries(e) => e.kind(),
            PullError::Remote { source, .. } => source.kind(),
            PullError::Manifest { source, .. } => source.kind(),
            PullError::BadDiffId { .. } => ErrorKind::DataCorrupt,
            PullError::Layer { source, .. } => source.kind(),
            PullError::Store { source, .. } => source.kind(),
            PullError::ShortName { source, .. } => source.kind(),
        }
    }
}

/// Pulls `input` (a full or short reference) into `store`.
pub fn pull(
    store: &ImageStore,
    input: &str,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<ImageRecord, PullError> {
    let short = ShortName::parse(input)?;
    let candidates = short.candidates(&opts.remote.registries.unqualified_search_registries);
    if !short.is_short() || candidates.len() == 1 {
        return pull_reference(store, &candidates[0], opts, progress);
    }
    let mut last = None;
    for c in &candidates {
        match pull_reference(store, c, opts, progress) {
            Ok(r) => return Ok(r),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::Unauthorized | ErrorKind::Unavailable
                ) =>
            {
                tracing::info!(candidate = %c, error = %e, "short-name candidate failed");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(PullError::ShortName {
        input: input.into(),
        tried: candidates
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        source: Box::new(last.expect("at least two candidates")),
    })
}

/// Pulls a qualified reference, trying its registries.conf endpoints (mirrors first).
pub fn pull_reference(
    store: &ImageStore,
    reference: &Reference,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<ImageRecord, PullError> {
    let endpoints = opts.remote.registries.endpoints(reference)?;
    let mut last = None;
    for ep in &endpoints {
        match pull_from(store, reference, ep, opts, progress) {
            Ok(r) => return Ok(r),
            Err(e) if ep.mirror => {
                tracing::warn!(mirror = %ep.reference, error = %e, "mirror failed, trying the next endpoint");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("endpoints end with the primary location"))
}

/// Unpacks an image whose blobs are all in the content store (after a load).
pub fn unpack_local(
    store: &ImageStore,
    rec: &ImageRecord,
    progress: &dyn Progress,
) -> Result<Option<String>, PullError> {
    let rname = rec.name.clone();
    let st = |e: StoreError| PullError::Store {
        reference: rname.clone(),
        source: e,
    };
    let man = |e: ManifestError| PullError::Manifest {
        reference: rname.clone(),
        source: e,
    };
    let m = store.manifest(rec).map_err(st)?;
    let config = store.config(rec).map_err(st)?;
    let compressions = m
        .layers()
        .iter()
        .map(manifest::layer_compression)
        .collect::<Result<Vec<_>, _>>()
        .map_err(man)?;
    let mut diff_ids = Vec::new();
    for d in config.rootfs().diff_ids() {
        diff_ids.push(digest::parse(d).map_err(|_| PullError::BadDiffId {
            reference: rname.clone(),
            config: m.config().digest().clone(),
            diff_id: d.clone(),
        })?);
    }
    let chain = manifest::chain_ids(config.rootfs().diff_ids());
    let lease = store
        .metadata()
        .create_lease(LEASE_TTL)
        .map_err(|e| st(e.into()))?;
    let _guard = LeaseGuard {
        store,
        id: lease.clone(),
        ok: true,
    };
    let snaps: Vec<String> = chain
        .iter()
        .map(|c| layers::extract_key(&lease, c))
        .chain(chain.iter().cloned())
        .collect();
    store
        .metadata()
        .lease_add(&lease, &[], &snaps)
        .map_err(|e| st(e.into()))?;
    let opts = PullOptions::default();
    let job = layers::Job {
        store,
        reg: None,
        repository: "",
        reference: &rname,
        layers: m.layers(),
        compressions: &compressions,
        diff_ids: &diff_ids,
        chain: &chain,
        lease: &lease,
        opts: &opts,
        progress,
    };
    job.run()
}

/// Drops the lease when the pull ends; on failure also collects garbage so nothing
/// of the failed pull stays.
struct LeaseGuard<'a> {
    store: &'a ImageStore,
    id: String,
    ok: bool,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.store.metadata().delete_lease(&self.id) {
            tracing::warn!(lease = %self.id, error = %e, "cannot delete lease");
        }
        if !self.ok {
            if let Err(e) = crate::gc::collect(self.store, &[]) {
                tracing::warn!(error = %e, "garbage collection after failed pull");
            }
        }
    }
}

fn pull_from(
    store: &ImageStore,
    name: &Reference,
    ep: &crate::config::Endpoint,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<ImageRecord, PullError> {
    let src = &ep.reference;
    let rname = name.to_string();
    let remote = |e: RemoteError| PullError::Remote {
        reference: rname.clone(),
        source: e,
    };
    let man = |e: ManifestError| PullError::Manifest {
        reference: rname.clone(),
        source: e,
    };
    let st = |e: StoreError| PullError::Store {
        reference: rname.clone(),
        source: e,
    };
    let mut rc = opts.remote.clone();
    rc.max_manifest_size = Some(store.options().max_manifest_size);
    let reg = rc
        .client(src.registry(), src.repository(), ep.insecure)
        .map_err(remote)?;
    let target = reg.fetch_manifest(src).map_err(remote)?;
    progress.event(&Event::Resolved {
        reference: src.to_string(),
        digest: target.descriptor.digest().clone(),
    });
    let target_mt = target.descriptor.media_type().to_string();
    let fetched = if manifest::is_index(&target_mt) {
        let idx = manifest::parse_index(&target.bytes, target.descriptor.digest()).map_err(man)?;
        let d = manifest::select_platform(&idx, &opts.platform, &rname).map_err(man)?;
        let child = reg.fetch_child_manifest(src, d).map_err(remote)?;
        if !manifest::is_manifest(child.descriptor.media_type().as_ref()) {
            return Err(remote(RemoteError::UnsupportedMediaType {
                reference: rname.clone(),
                media_type: child.descriptor.media_type().to_string(),
            }));
        }
        child
    } else {
        target.clone()
    };
    let mdigest = fetched.descriptor.digest().clone();
    let m = manifest::parse_manifest(&fetched.bytes, &mdigest).map_err(man)?;
    let config_bytes = reg.fetch_small_blob(src, m.config()).map_err(remote)?;
    let config = manifest::parse_config(&config_bytes, m.config().digest(), m.layers().len())
        .map_err(man)?;
    let compressions = m
        .layers()
        .iter()
        .map(manifest::layer_compression)
        .collect::<Result<Vec<_>, _>>()
        .map_err(man)?;
    let mut diff_ids = Vec::new();
    for d in config.rootfs().diff_ids() {
        diff_ids.push(digest::parse(d).map_err(|_| PullError::BadDiffId {
            reference: rname.clone(),
            config: m.config().digest().clone(),
            diff_id: d.clone(),
        })?);
    }
    let chain = manifest::chain_ids(config.rootfs().diff_ids());

    let lease = store
        .metadata()
        .create_lease(LEASE_TTL)
        .map_err(|e| st(e.into()))?;
    let mut guard = LeaseGuard {
        store,
        id: lease.clone(),
        ok: false,
    };
    let mut content: Vec<String> = vec![
        target.descriptor.digest().to_string(),
        mdigest.to_string(),
        m.config().digest().to_string(),
    ];
    content.extend(m.layers().iter().map(|l| l.digest().to_string()));
    let mut snaps = chain.clone();
    snaps.extend(chain.iter().map(|c| layers::extract_key(&lease, c)));
    store
        .metadata()
        .lease_add(&lease, &content, &snaps)
        .map_err(|e| st(e.into()))?;
    let cs = store.content();
    cs.write_blob(target.descriptor.digest(), &target.bytes)
        .map_err(|e| st(e.into()))?;
    cs.write_blob(&mdigest, &fetched.bytes)
        .map_err(|e| st(e.into()))?;
    cs.write_blob(m.config().digest(), &config_bytes)
        .map_err(|e| st(e.into()))?;

    let job = layers::Job {
        store,
        reg: Some(&reg),
        repository: src.repository(),
        reference: &rname,
        layers: m.layers(),
        compressions: &compressions,
        diff_ids: &diff_ids,
        chain: &chain,
        lease: &lease,
        opts,
        progress,
    };
    let top = job.run()?;
    let now = now_secs();
    let rec = ImageRecord {
        name: rname.clone(),
        target: target.descriptor.clone(),
        manifest: fetched.descriptor.clone(),
        config: m.config().clone(),
        snapshot: if opts.unpack { top } else { None },
        snapshotter: opts.unpack.then(|| store.snapshotter().name().to_string()),
        source: Some(src.name()),
        created_at: now,
        updated_at: now,
    };
    store
        .metadata()
        .put_image(rec.clone())
        .map_err(|e| st(e.into()))?;
    guard.ok = true;
    progress.event(&Event::Done {
        id: m.config().digest().clone(),
    });
    Ok(rec)
}

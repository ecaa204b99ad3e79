//! The build's lease: what the build made or uses is kept from garbage collection
//! until the image records exist. Created on first need and extended in the same
//! database transaction (each transaction of the metadata database costs two syncs,
//! so a fully cached build never writes one).

use std::sync::atomic::{AtomicBool, Ordering};

use liana_images::metadata::{now_secs, Lease, LEASES};
use liana_images::ImageStore;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct BuildLease {
    id: String,
    created: AtomicBool,
}

impl BuildLease {
    pub(crate) fn new(build_id: &str) -> Self {
        BuildLease {
            id: format!("lease-build-{}-{build_id}", std::process::id()),
            created: AtomicBool::new(false),
        }
    }

    /// Protects `content` and `snapshots` (creating the lease if needed).
    pub(crate) fn add(
        &self,
        store: &ImageStore,
        content: &[String],
        snapshots: &[String],
    ) -> Result<(), liana_images::metadata::MetadataError> {
        store.metadata().db().write(|tx| {
            let mut l: Lease = tx.get_json(LEASES, &self.id)?.unwrap_or_default();
            l.expires_at = now_secs() + 24 * 3600;
            l.content.extend(content.iter().cloned());
            l.snapshots.extend(snapshots.iter().cloned());
            tx.put_json(LEASES, &self.id, &l)?;
            Ok::<_, liana_images::metadata::MetadataError>(())
        })?;
        self.created.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Creates the lease on first need, protecting the snapshot keys the build will
    /// use (`keys`); later calls cost nothing. The active snapshot of a step protects
    /// its ancestors; the blobs are added when the image is written. (A garbage
    /// collection between the commit of a step and the next step's start, or between a
    /// blob's store and the image's, could still take them: a rare window, not worth a
    /// database write per step.)
    pub(crate) fn ensure(
        &self,
        store: &ImageStore,
        keys: impl FnOnce() -> Vec<String>,
    ) -> Result<(), liana_images::metadata::MetadataError> {
        if self.created.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.add(store, &[], &keys())
    }

    /// Deletes the lease, if it was created.
    pub(crate) fn release(&self, store: &ImageStore) {
        if self.created.load(Ordering::Relaxed) {
            if let Err(e) = store.metadata().delete_lease(&self.id) {
                tracing::warn!("delete build lease {}: {e}", self.id);
            }
        }
    }
}

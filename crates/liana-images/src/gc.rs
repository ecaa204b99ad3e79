//! Garbage collection: everything reachable from image records, live leases and the
//! caller's extra roots is kept; unreferenced blobs, snapshots and stale ingests go.
//!
//! Roots → content: an image's target; for an index its children that are present;
//! for each manifest its config and layers. Roots → snapshots: an image's committed
//! top snapshot and all its ancestors; lease snapshot keys; extra roots (the engine's
//! container snapshots).

use std::collections::HashSet;
use std::time::Duration;

use crate::manifest;
use crate::store::{ImageStore, StoreError};

/// Ingests untouched for this long, and not protected by a lease, are removed.
pub const INGEST_GRACE: Duration = Duration::from_secs(600);

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Blobs removed.
    pub blobs_removed: usize,
    /// Bytes of blobs and ingests freed.
    pub bytes_freed: u64,
    /// Snapshots removed.
    pub snapshots_removed: usize,
}

fn mark_manifest(store: &ImageStore, digest: &crate::digest::Digest, keep: &mut HashSet<String>) {
    keep.insert(digest.to_string());
    let Ok(bytes) = store
        .content()
        .read_blob(digest, store.options().max_manifest_size)
    else {
        return;
    };
    let mt = manifest::detect_media_type("", &bytes);
    if manifest::is_index(&mt) {
        if let Ok(idx) = manifest::parse_index(&bytes, digest) {
            for d in idx.manifests() {
                if store.content().contains(d.digest()).unwrap_or(false) {
                    mark_manifest(store, d.digest(), keep);
                }
            }
        }
    } else if let Ok(m) = manifest::parse_manifest(&bytes, digest) {
        keep.insert(m.config().digest().to_string());
        for l in m.layers() {
            keep.insert(l.digest().to_string());
        }
    }
}

/// Collects garbage in `store`; `extra_snapshots` are kept with their ancestors.
pub fn collect(store: &ImageStore, extra_snapshots: &[String]) -> Result<GcStats, StoreError> {
    let mut keep_content = HashSet::new();
    let mut snapshot_roots: Vec<String> = extra_snapshots.to_vec();
    for rec in store.images()? {
        mark_manifest(store, rec.target.digest(), &mut keep_content);
        mark_manifest(store, rec.manifest.digest(), &mut keep_content);
        keep_content.insert(rec.config.digest().to_string());
        if let Some(s) = rec.snapshot {
            snapshot_roots.push(s);
        }
    }
    let mut leased_content = HashSet::new();
    for (_, lease) in store.metadata().live_leases()? {
        leased_content.extend(lease.content.iter().cloned());
        snapshot_roots.extend(lease.snapshots);
    }
    keep_content.extend(leased_content.iter().cloned());

    let mut stats = GcStats::default();
    for b in store.content().walk()? {
        if !keep_content.contains(&b.digest.to_string()) {
            store.content().delete(&b.digest)?;
            stats.blobs_removed += 1;
            stats.bytes_freed += b.size;
        }
    }
    stats.bytes_freed += store.content().prune_ingests(INGEST_GRACE)?;

    // snapshots: mark roots and ancestors, then remove unmarked leaves until none is left
    let sn = store.snapshotter();
    let all = sn.walk()?;
    let parent_of: std::collections::HashMap<String, Option<String>> = all
        .iter()
        .map(|i| (i.key.clone(), i.parent.clone()))
        .collect();
    let mut keep = HashSet::new();
    for r in snapshot_roots {
        let mut cur = Some(r);
        while let Some(k) = cur {
            if !keep.insert(k.clone()) {
                break;
            }
            cur = parent_of.get(&k).cloned().flatten();
        }
    }
    let mut remaining: Vec<_> = all.into_iter().filter(|i| !keep.contains(&i.key)).collect();
    loop {
        let parents: HashSet<String> = sn.walk()?.into_iter().filter_map(|i| i.parent).collect();
        let (leaves, rest): (Vec<_>, Vec<_>) = remaining
            .into_iter()
            .partition(|i| !parents.contains(&i.key));
        if leaves.is_empty() {
            break;
        }
        for l in leaves {
            sn.remove(&l.key)?;
            stats.snapshots_removed += 1;
        }
        remaining = rest;
    }
    tracing::debug!(?stats, "garbage collected");
    Ok(stats)
}

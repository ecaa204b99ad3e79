//! The container's own layer on top of an overlayfs image: the image's committed
//! layers as lower directories and the container's `upper` and `work` directories
//! under `ROOT/containers/ID/`, mounted as one overlay at `ROOT/containers/ID/rootfs`.
//!
//! This is what an active snapshot of the overlay snapshotter would be, without its two
//! database transactions (each a synced commit) on the way in and out of every
//! container: the container's lease on the image's top snapshot
//! keeps the layers from garbage collection, and the container's directory holds the
//! rest. Other snapshotters (native, for rootless) go through
//! [`liana_images::snapshot::Snapshotter::prepare`].
//!
//! # Cache, version 1
//!
//! `ROOT/containers/.lowerdirs/<snapshot>`: the lower directories of an image's top
//! snapshot (JSON array of paths, top first), as a view of it returned them; entries
//! whose directories are gone are recomputed.

use std::path::{Path, PathBuf};

use liana_images::snapshot::Mount;
use liana_images::ImageStore;

use crate::error::{Error, Result};

fn cache_path(root: &Path, snapshot: &str) -> PathBuf {
    let name: String = snapshot
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    root.join("containers/.lowerdirs").join(name)
}

/// The lower directories of the image snapshot `snapshot`, top first.
pub fn lowerdirs(store: &ImageStore, root: &Path, snapshot: &str) -> Result<Vec<PathBuf>> {
    let cache = cache_path(root, snapshot);
    if let Ok(b) = std::fs::read(&cache) {
        if let Ok(v) = serde_json::from_slice::<Vec<PathBuf>>(&b) {
            if !v.is_empty() && v.iter().all(|p| p.is_dir()) {
                return Ok(v);
            }
        }
    }
    let sn = store.snapshotter();
    let key = format!("liana-lowerdirs-{}", crate::ids::new_id());
    let mounts = sn.view(&key, Some(snapshot))?;
    let removed = sn.remove(&key);
    let lower = match mounts.as_slice() {
        [m] if m.kind == "bind" => vec![m.source.clone()],
        [m] => m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("lowerdir="))
            .map(|l| l.split(':').map(PathBuf::from).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    removed?;
    if lower.is_empty() {
        return Err(crate::mount::MountError::Unsupported(format!(
            "view of {snapshot}: {mounts:?}"
        ))
        .into());
    }
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
        let tmp = cache.with_extension("tmp");
        if std::fs::write(&tmp, serde_json::to_vec(&lower).expect("paths serialize")).is_ok() {
            let _ = std::fs::rename(&tmp, &cache);
        }
    }
    Ok(lower)
}

/// Makes the container's upper and work directories under `dir`.
pub fn create_dirs(dir: &Path) -> Result<()> {
    for d in ["upper", "work"] {
        std::fs::create_dir_all(dir.join(d))
            .map_err(Error::io("create container layer", dir.join(d)))?;
    }
    Ok(())
}

/// The overlay mount of the container whose directory is `dir`.
pub fn mount_of(lower: &[PathBuf], dir: &Path) -> Vec<Mount> {
    let lower: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    vec![Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            "index=off".into(),
            format!("lowerdir={}", lower.join(":")),
            format!("upperdir={}", dir.join("upper").display()),
            format!("workdir={}", dir.join("work").display()),
        ],
    }]
}

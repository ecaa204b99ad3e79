//! The layer cache: a step's key (a hash chained from its parent's key and everything
//! that determines its result: the instruction after substitution, the build args and
//! environment in force, the content of the files it copies) → the layer it produced.
//!
//! # On-disk format, version 1
//!
//! `ROOT/build-cache/v1/<hex of the key>`: JSON [`Entry`]. An entry is only used while
//! its blob and committed snapshot still exist (garbage collection may take them).

use std::path::{Path, PathBuf};

use liana_images::digest::{self, Digest};
use oci_spec::image::Descriptor;
use serde::{Deserialize, Serialize};

/// What a step produced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The layer, or none when the step changed nothing.
    pub layer: Option<Descriptor>,
    /// Its diff ID.
    pub diff_id: Option<String>,
}

/// The cache directory of a storage root.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// The key following `parent` for a step described by `parts`.
pub fn key(parent: &str, parts: &[&str]) -> String {
    let mut s = String::from(parent);
    for p in parts {
        s.push('\n');
        s.push_str(&p.len().to_string());
        s.push(':');
        s.push_str(p);
    }
    digest::sha256_of(s.as_bytes()).to_string()
}

impl Cache {
    /// The cache of the storage root `root`.
    pub fn new(root: &Path) -> Self {
        Cache {
            dir: root.join("build-cache/v1"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key.strip_prefix("sha256:").unwrap_or(key))
    }

    /// The entry of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let b = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&b).ok()
    }

    /// The JSON value stored under `key`, if any.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let b = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&b).ok()
    }

    /// Stores a JSON value under `key` (best effort).
    pub fn put_json<T: Serialize>(&self, key: &str, v: &T) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let p = self.path(key);
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, serde_json::to_vec(v).expect("value serializes")).is_ok() {
            let _ = std::fs::rename(&tmp, &p);
        }
    }

    /// Records an entry (best effort: a cache that cannot be written only costs time).
    pub fn put(&self, key: &str, e: &Entry) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let p = self.path(key);
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, serde_json::to_vec(e).expect("entry serializes")).is_ok() {
            let _ = std::fs::rename(&tmp, &p);
        }
    }
}

/// The image a fully cached build made before: same inputs, same image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageEntry {
    /// Its manifest.
    pub manifest: Descriptor,
    /// Its config.
    pub config: Descriptor,
}

/// The chain ID after `parent` for `diff_id`.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => digest::sha256_of(format!("{p} {diff_id}").as_bytes()).to_string(),
    }
}

/// Parses a digest we wrote ourselves.
pub fn parse_digest(s: &str) -> Option<Digest> {
    digest::parse(s).ok()
}

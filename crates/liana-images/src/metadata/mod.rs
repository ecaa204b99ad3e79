//! The metadata database: image records (names → manifests and unpacked snapshots) and
//! leases that protect content while an operation is in flight.
//!
//! # Schema, version 1 (`ROOT/metadata.db`, SQLite, see [`db`])
//!
//! | table    | key                                  | value (JSON)       |
//! |----------|--------------------------------------|--------------------|
//! | `images` | full reference (`reg/repo:tag` or `reg/repo@sha256:…`) | [`ImageRecord`] |
//! | `leases` | lease id                             | [`Lease`]          |
//!
//! The schema version is SQLite's `user_version`.
//!
//! An image record's `target` is the manifest or index pulled; `manifest` and `config`
//! are the platform's manifest and config; `snapshot` is the committed snapshot (the
//! chain ID of the top layer) in `snapshotter`. Garbage collection ([`crate::gc`]) keeps
//! everything reachable from image records and unexpired leases.

pub mod db;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oci_spec::image::Descriptor;
use serde::{Deserialize, Serialize};

pub use db::{Db, DbError, TableName};

use crate::errdefs::{ErrorKind, HasKind};

/// Schema version of the metadata database.
pub const SCHEMA_VERSION: u32 = 1;
/// Images table.
pub const IMAGES: TableName = TableName("images");
/// Leases table.
pub const LEASES: TableName = TableName("leases");

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// A database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The image name is not in the database.
    #[error("image {name} not found")]
    NotFound {
        /// The name.
        name: String,
    },
}

impl HasKind for MetadataError {
    fn kind(&self) -> ErrorKind {
        match self {
            MetadataError::Db(e) => e.kind(),
            MetadataError::NotFound { .. } => ErrorKind::NotFound,
        }
    }
}

/// Seconds since the epoch, now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One image name and what it points at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// The full reference (the key).
    pub name: String,
    /// What was pulled, loaded or tagged: a manifest or an index.
    pub target: Descriptor,
    /// The platform's manifest (equal to `target` when that is a manifest).
    pub manifest: Descriptor,
    /// The image config.
    pub config: Descriptor,
    /// The committed top snapshot (chain ID), if unpacked.
    pub snapshot: Option<String>,
    /// The snapshotter holding `snapshot`.
    pub snapshotter: Option<String>,
    /// `registry/repository` the image came from (for push mounts), if pulled.
    pub source: Option<String>,
    /// When this name was created (seconds since the epoch).
    pub created_at: u64,
    /// When this name was last updated.
    pub updated_at: u64,
}

impl ImageRecord {
    /// The image ID: the config digest, as docker and podman use it.
    pub fn id(&self) -> String {
        self.config.digest().to_string()
    }
}

/// A lease keeps content and snapshots from garbage collection until it expires or is
/// deleted (a pull holds one; a crashed pull's lease expires).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
    /// Protected blobs.
    pub content: Vec<String>,
    /// Protected snapshot keys.
    pub snapshots: Vec<String>,
}

/// The metadata store of one storage root.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    db: Db,
}

impl MetadataStore {
    /// Opens (creating) `path`.
    pub fn open(path: &Path) -> Result<Self, MetadataError> {
        Ok(MetadataStore {
            db: Db::open(path, SCHEMA_VERSION, &[IMAGES, LEASES])?,
        })
    }

    /// The underlying database, for callers composing transactions.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// All image records, by name.
    pub fn images(&self) -> Result<Vec<ImageRecord>, MetadataError> {
        self.db.read(|tx| {
            Ok(tx
                .list_json::<ImageRecord>(IMAGES)?
                .into_iter()
                .map(|(_, v)| v)
                .collect())
        })
    }

    /// The record of `name`.
    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>, MetadataError> {
        self.db.read(|tx| Ok(tx.get_json(IMAGES, name)?))
    }

    /// Creates or replaces a record (keeping the original creation time).
    pub fn put_image(&self, mut rec: ImageRecord) -> Result<(), MetadataError> {
        self.db.write(|tx| {
            if let Some(old) = tx.get_json::<ImageRecord>(IMAGES, &rec.name)? {
                rec.created_at = old.created_at;
            }
            rec.updated_at = now_secs();
            tx.put_json(IMAGES, &rec.name.clone(), &rec)?;
            Ok(())
        })
    }

    /// Deletes a record.
    pub fn delete_image(&self, name: &str) -> Result<(), MetadataError> {
        self.db.write(|tx| {
            if tx.delete(IMAGES, name)? {
                Ok(())
            } else {
                Err(MetadataError::NotFound { name: name.into() })
            }
        })
    }

    /// Creates a lease valid for `ttl`; returns its id.
    pub fn create_lease(&self, ttl: Duration) -> Result<String, MetadataError> {
        let id = format!(
            "lease-{}-{}-{}",
            std::process::id(),
            now_secs(),
            rand_suffix()
        );
        let lease = Lease {
            expires_at: now_secs() + ttl.as_secs(),
            ..Default::default()
        };
        self.db.write(|tx| {
            tx.put_json(LEASES, &id, &lease)?;
            Ok::<_, MetadataError>(())
        })?;
        Ok(id)
    }

    /// Adds resources to a lease.
    pub fn lease_add(
        &self,
        id: &str,
        content: &[String],
        snapshots: &[String],
    ) -> Result<(), MetadataError> {
        self.db.write(|tx| {
            let mut l: Lease = tx.get_json(LEASES, id)?.unwrap_or_default();
            l.content.extend(content.iter().cloned());
            l.snapshots.extend(snapshots.iter().cloned());
            tx.put_json(LEASES, id, &l)?;
            Ok(())
        })
    }

    /// Deletes a lease.
    pub fn delete_lease(&self, id: &str) -> Result<(), MetadataError> {
        self.db.write(|tx| {
            tx.delete(LEASES, id)?;
            Ok(())
        })
    }

    /// All unexpired leases; expired ones are removed.
    pub fn live_leases(&self) -> Result<Vec<(String, Lease)>, MetadataError> {
        let now = now_secs();
        self.db.write(|tx| {
            let mut live = Vec::new();
            for (k, l) in tx.list_json::<Lease>(LEASES)? {
                if l.expires_at <= now {
                    tx.delete(LEASES, &k)?;
                } else {
                    live.push((k, l));
                }
            }
            Ok(live)
        })
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str) -> ImageRecord {
        let d: Descriptor = serde_json::from_str(
            r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}"#,
        )
        .unwrap();
        ImageRecord {
            name: name.into(),
            target: d.clone(),
            manifest: d.clone(),
            config: d,
            snapshot: None,
            snapshotter: None,
            source: None,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn images_and_leases() {
        let dir = tempfile::tempdir().unwrap();
        let m = MetadataStore::open(&dir.path().join("metadata.db")).unwrap();
        m.put_image(rec("r/a:1")).unwrap();
        m.put_image(rec("r/b:1")).unwrap();
        assert_eq!(m.images().unwrap().len(), 2);
        assert_eq!(m.image("r/a:1").unwrap().unwrap().created_at, 1);
        m.delete_image("r/a:1").unwrap();
        assert_eq!(
            m.delete_image("r/a:1").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let l = m.create_lease(Duration::from_secs(60)).unwrap();
        m.lease_add(&l, &["sha256:x".into()], &[]).unwrap();
        assert_eq!(m.live_leases().unwrap()[0].1.content, ["sha256:x"]);
        let expired = m.create_lease(Duration::ZERO).unwrap();
        assert!(m.live_leases().unwrap().iter().all(|(k, _)| *k != expired));
        // reopening keeps data and checks the schema
        drop(m);
        let m = MetadataStore::open(&dir.path().join("metadata.db")).unwrap();
        assert_eq!(m.images().unwrap().len(), 1);
        // the schema is checked on the first transaction of a handle
        let other = Db::open(&dir.path().join("metadata.db"), 99, &[]).unwrap();
        let e = other.read(|tx| tx.get(IMAGES, "x")).unwrap_err();
        assert!(matches!(e, DbError::Schema { .. }), "{e}");
    }
}

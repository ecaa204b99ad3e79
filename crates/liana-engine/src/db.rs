//! Container records in the metadata database shared with images.
//!
//! # Schema, version 1 (tables of `ROOT/metadata.db`, next to the image tables)
//!
//! | table             | key          | value (JSON)                      |
//! |-------------------|--------------|-----------------------------------|
//! | `containers`      | container id | [`Container`]                     |
//! | `container-names` | name         | container id (raw)                |
//! | `volumes`         | volume name  | [`crate::volumes::Volume`]        |
//! | `meta`            | `engine-schema` | `"1"` (raw)                    |
//!
//! Each container also holds a lease (`leases` table, id `liana-container-ID`, see
//! [`liana_images::metadata::Lease`]) on its snapshot, so that image garbage
//! collection keeps the snapshot and the image layers under it. Record, name and lease
//! are written and deleted in one transaction.

use liana_images::metadata::{Db, DbError as ImagesDbError, Lease, TableName, LEASES};

use crate::error::{Error, Result};
use crate::record::Container;

/// Containers table.
pub const CONTAINERS: TableName = TableName("containers");
/// Names table.
pub const CONTAINER_NAMES: TableName = TableName("container-names");
/// Volumes table.
pub const VOLUMES: TableName = TableName("volumes");
const META: TableName = TableName("meta");
const SCHEMA_KEY: &str = "engine-schema";
/// Schema version of the engine's tables.
pub const SCHEMA_VERSION: u32 = 1;

/// Database errors of the engine's tables.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] ImagesDbError),
    /// The engine tables have another version.
    #[error("container tables have schema version {found}; this build uses {SCHEMA_VERSION}")]
    Schema {
        /// Version found.
        found: String,
    },
    /// A stored value does not decode.
    #[error("container record {key}: invalid JSON")]
    Decode {
        /// The key.
        key: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

impl From<ImagesDbError> for Error {
    fn from(e: ImagesDbError) -> Self {
        Error::Db(DbError::Db(e))
    }
}

/// The lease id protecting a container's snapshot.
pub fn lease_id(id: &str) -> String {
    format!("liana-container-{id}")
}

/// The container tables.
#[derive(Debug, Clone)]
pub struct ContainerDb {
    db: Db,
}

fn check_schema(v: Option<Vec<u8>>) -> Result<()> {
    match v {
        None => Ok(()),
        Some(v) if v == SCHEMA_VERSION.to_string().as_bytes() => Ok(()),
        Some(v) => Err(DbError::Schema {
            found: String::from_utf8_lossy(&v).into_owned(),
        }
        .into()),
    }
}

fn decode(key: &str, v: &[u8]) -> Result<Container> {
    serde_json::from_slice(v).map_err(|source| {
        DbError::Decode {
            key: key.into(),
            source,
        }
        .into()
    })
}

impl ContainerDb {
    /// The engine's tables in `db` (the image metadata database).
    pub fn new(db: Db) -> Self {
        ContainerDb { db }
    }

    /// Inserts a new record, its name and (for snapshots) its lease, in one
    /// transaction. Fails if the name is taken.
    pub fn insert(&self, c: &Container, lease: Option<&Lease>) -> Result<()> {
        self.db.write(|tx| {
            check_schema(tx.get(META, SCHEMA_KEY)?)?;
            if let Some(owner) = tx.get(CONTAINER_NAMES, &c.name)? {
                return Err(Error::NameInUse {
                    name: c.name.clone(),
                    id: String::from_utf8_lossy(&owner).into_owned(),
                });
            }
            tx.put(META, SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())?;
            tx.put(CONTAINER_NAMES, &c.name, c.id.as_bytes())?;
            tx.put_json(CONTAINERS, &c.id, c)?;
            if let Some(l) = lease {
                tx.put_json(LEASES, &lease_id(&c.id), l)?;
            }
            Ok(())
        })
    }

    /// Every record.
    pub fn list(&self) -> Result<Vec<Container>> {
        self.db.read(|tx| {
            check_schema(tx.get(META, SCHEMA_KEY)?)?;
            tx.list(CONTAINERS)?
                .iter()
                .map(|(k, v)| decode(k, v))
                .collect()
        })
    }

    /// The record of a full id.
    pub fn get(&self, id: &str) -> Result<Option<Container>> {
        self.db
            .read(|tx| tx.get(CONTAINERS, id)?.map(|v| decode(id, &v)).transpose())
    }

    /// The record a user's word designates: a full id, a name, or a unique id prefix.
    pub fn resolve(&self, needle: &str) -> Result<Container> {
        self.db.read(|tx| {
            check_schema(tx.get(META, SCHEMA_KEY)?)?;
            if let Some(v) = tx.get(CONTAINERS, needle)? {
                return decode(needle, &v);
            }
            let name = needle.strip_prefix('/').unwrap_or(needle);
            if let Some(id) = tx.get(CONTAINER_NAMES, name)? {
                let id = String::from_utf8_lossy(&id).into_owned();
                if let Some(v) = tx.get(CONTAINERS, &id)? {
                    return decode(&id, &v);
                }
            }
            let hex = !needle.is_empty() && needle.bytes().all(|b| b.is_ascii_hexdigit());
            if hex {
                let found: Vec<_> = tx
                    .list(CONTAINERS)?
                    .into_iter()
                    .filter(|(k, _)| k.starts_with(needle))
                    .collect();
                match found.len() {
                    1 => return decode(&found[0].0, &found[0].1),
                    0 => {}
                    n => {
                        return Err(Error::Ambiguous {
                            prefix: needle.into(),
                            count: n,
                        })
                    }
                }
            }
            Err(Error::NoSuchContainer(needle.into()))
        })
    }

    /// Changes a record; `f` sees the current one. Fails if it is gone.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Container)) -> Result<Container> {
        self.db.write(|tx| {
            let Some(v) = tx.get(CONTAINERS, id)? else {
                return Err(Error::NoSuchContainer(id.into()));
            };
            let mut c = decode(id, &v)?;
            f(&mut c);
            tx.put_json(CONTAINERS, id, &c)?;
            Ok(c)
        })
    }

    /// Deletes a record, its name, its snapshot lease and its address leases; returns it
    /// if it existed.
    pub fn remove(&self, id: &str) -> Result<Option<Container>> {
        self.db.write(|tx| {
            let Some(v) = tx.get(CONTAINERS, id)? else {
                return Ok(None);
            };
            let c = decode(id, &v)?;
            tx.delete(CONTAINERS, id)?;
            if tx.get(CONTAINER_NAMES, &c.name)?.as_deref() == Some(id.as_bytes()) {
                tx.delete(CONTAINER_NAMES, &c.name)?;
            }
            tx.delete(LEASES, &lease_id(id))?;
            // Its address leases go in the same transaction.
            if let Some(net) = &c.settings.net.network {
                let prefix = format!("{net}/");
                for (k, v) in tx.list(crate::network::NETWORK_IPS)? {
                    let owned = serde_json::from_slice::<crate::network::Lease>(&v)
                        .is_ok_and(|l| l.container == id);
                    if k.starts_with(&prefix) && owned {
                        tx.delete(crate::network::NETWORK_IPS, &k)?;
                    }
                }
            }
            Ok(Some(c))
        })
    }

    /// Renames a container.
    pub fn rename(&self, id: &str, new: &str) -> Result<()> {
        self.db.write(|tx| {
            if let Some(owner) = tx.get(CONTAINER_NAMES, new)? {
                return Err(Error::NameInUse {
                    name: new.into(),
                    id: String::from_utf8_lossy(&owner).into_owned(),
                });
            }
            let Some(v) = tx.get(CONTAINERS, id)? else {
                return Err(Error::NoSuchContainer(id.into()));
            };
            let mut c = decode(id, &v)?;
            tx.delete(CONTAINER_NAMES, &c.name)?;
            c.name = new.into();
            tx.put(CONTAINER_NAMES, new, id.as_bytes())?;
            tx.put_json(CONTAINERS, id, &c)?;
            Ok(())
        })
    }

    /// The underlying database.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;

    fn rec(id: &str, name: &str) -> Container {
        Container {
            version: RECORD_VERSION,
            id: id.into(),
            name: name.into(),
            created: "2024-01-01T00:00:00Z".into(),
            image: "busybox".into(),
            image_id: None,
            image_ref: None,
            rootfs: RootfsSource::Dir { path: "/x".into() },
            command: vec!["true".into()],
            settings: Settings::default(),
            state: State::default(),
        }
    }

    #[test]
    fn records_names_leases() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("metadata.db"),
            liana_images::metadata::SCHEMA_VERSION,
            &[],
        )
        .unwrap();
        let c = ContainerDb::new(db);
        let a = "a".repeat(64);
        let b = format!("ab{}", "0".repeat(62));
        c.insert(&rec(&a, "one"), Some(&Lease::default())).unwrap();
        c.insert(&rec(&b, "two"), None).unwrap();
        assert!(matches!(
            c.insert(&rec(&"c".repeat(64), "one"), None),
            Err(Error::NameInUse { .. })
        ));
        assert_eq!(c.resolve("one").unwrap().id, a);
        assert_eq!(c.resolve("ab").unwrap().id, b);
        assert!(matches!(c.resolve("a"), Err(Error::Ambiguous { .. })));
        assert!(matches!(c.resolve("zzz"), Err(Error::NoSuchContainer(_))));
        c.rename(&a, "uno").unwrap();
        assert!(c.resolve("one").is_err());
        assert_eq!(c.resolve("uno").unwrap().name, "uno");
        c.update(&a, |r| r.state.exit_code = Some(3)).unwrap();
        assert_eq!(c.get(&a).unwrap().unwrap().state.exit_code, Some(3));
        assert!(c.remove(&a).unwrap().is_some());
        assert!(c.remove(&a).unwrap().is_none());
        assert_eq!(c.list().unwrap().len(), 1);
        let leases = c
            .db()
            .read(|tx| tx.list(LEASES))
            .map_err(Error::from)
            .unwrap();
        assert!(leases.is_empty());
    }
}

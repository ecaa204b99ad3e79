//! A small key-value layer over redb shared by the metadata store and the snapshotters.
//!
//! A liana process opens the database only for the length of one transaction, under an
//! exclusive `flock` on `<db>.lock`: commands run concurrently (a long pull and a
//! `liana images`) and each only waits for the other's short transactions. redb commits
//! are durable (fsync) and survive `kill -9`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use rustix::fs::{flock, FlockOperation};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::errdefs::{ErrorKind, HasKind};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database or its lock could not be opened.
    #[error("open database {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A redb operation failed.
    #[error("database {path}")]
    Redb {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: redb::Error,
    },
    /// A stored value does not decode.
    #[error("database {path}: table {table} key {key:?} holds an invalid value")]
    Decode {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The schema version is not one this build understands.
    #[error(
        "database {path}: schema version {found} is not supported (this build uses {expected})"
    )]
    Schema {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The version expected.
        expected: u32,
    },
}

impl HasKind for DbError {
    fn kind(&self) -> ErrorKind {
        match self {
            DbError::Schema { .. } => ErrorKind::FailedPrecondition,
            DbError::Decode { .. } => ErrorKind::DataCorrupt,
            _ => ErrorKind::Internal,
        }
    }
}

type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// A table name; all tables map string keys to JSON (or raw) bytes.
#[derive(Debug, Clone, Copy)]
pub struct TableName(pub &'static str);

impl TableName {
    fn def(self) -> Table {
        TableDefinition::new(self.0)
    }
}

const META: TableName = TableName("meta");

/// A database file with a schema version.
#[derive(Debug, Clone)]
pub struct Db {
    path: PathBuf,
    lock_path: PathBuf,
    schema: u32,
    checked: Arc<AtomicBool>,
}

/// Field order matters: the database must close before the lock is released.
struct Guard {
    db: Database,
    _lock: File,
}

impl Db {
    /// Opens (creating) the database at `path`; `tables` are created, and the schema
    /// version is recorded or checked.
    ///
    /// Opening an existing database costs nothing: redb syncs the file twice every time
    /// it is opened, so the schema is checked on this handle's first transaction, and
    /// tables are created by the first write that uses them (reads see a missing table
    /// as empty).
    pub fn open(path: &Path, schema: u32, tables: &[TableName]) -> Result<Self, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Open {
                path: path.into(),
                source: e,
            })?;
        }
        let db = Db {
            path: path.to_path_buf(),
            lock_path: path.with_extension("lock"),
            schema,
            checked: Arc::new(AtomicBool::new(false)),
        };
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return Ok(db);
        }
        db.write(|tx| {
            for t in tables.iter().chain(std::iter::once(&META)) {
                tx.tx.open_table(t.def()).map_err(|e| tx.err(e.into()))?;
            }
            Ok::<_, DbError>(())
        })?;
        Ok(db)
    }

    /// Records the schema version in a new database or checks it, once per handle.
    fn check_schema(&self, db: &Database) -> Result<(), DbError> {
        if self.checked.load(Ordering::Acquire) {
            return Ok(());
        }
        let redb_err = |e: redb::Error| DbError::Redb {
            path: self.path.clone(),
            source: e,
        };
        let found = {
            let tx = db.begin_read().map_err(|e| redb_err(e.into()))?;
            match tx.open_table(META.def()) {
                Ok(t) => t
                    .get("schema")
                    .map_err(|e| redb_err(e.into()))?
                    .map(|v| v.value().to_vec()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(redb_err(e.into())),
            }
        };
        let want = self.schema.to_string();
        match found {
            Some(v) if v == want.as_bytes() => {}
            Some(v) => {
                return Err(DbError::Schema {
                    path: self.path.clone(),
                    found: String::from_utf8_lossy(&v).into_owned(),
                    expected: self.schema,
                })
            }
            None => {
                let tx = db.begin_write().map_err(|e| redb_err(e.into()))?;
                {
                    let mut t = tx.open_table(META.def()).map_err(|e| redb_err(e.into()))?;
                    t.insert("schema", want.as_bytes())
                        .map_err(|e| redb_err(e.into()))?;
                }
                tx.commit().map_err(|e| redb_err(e.into()))?;
            }
        }
        self.checked.store(true, Ordering::Release);
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<Guard, DbError> {
        let open_err = |e| DbError::Open {
            path: self.path.clone(),
            source: e,
        };
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(open_err)?;
        flock(&lock, FlockOperation::LockExclusive).map_err(|e| open_err(e.into()))?;
        let db = Database::create(&self.path).map_err(|e| DbError::Redb {
            path: self.path.clone(),
            source: e.into(),
        })?;
        self.check_schema(&db)?;
        Ok(Guard { db, _lock: lock })
    }

    /// Runs `f` in a write transaction and commits it if `f` succeeds.
    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let g = self.lock()?;
        let mut tx = g.db.begin_write().map_err(|e| DbError::Redb {
            path: self.path.clone(),
            source: e.into(),
        })?;
        // Saving the allocator state with the commit spares redb the extra commit it
        // makes when the database is closed after a write (two syncs fewer per write).
        tx.set_quick_repair(true);
        let w = WriteTx {
            tx,
            path: &self.path,
        };
        let out = f(&w)?;
        w.tx.commit().map_err(|e| DbError::Redb {
            path: self.path.clone(),
            source: e.into(),
        })?;
        Ok(out)
    }

    /// Runs `f` in a read transaction.
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&ReadTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let g = self.lock()?;
        let tx = g.db.begin_read().map_err(|e| DbError::Redb {
            path: self.path.clone(),
            source: e.into(),
        })?;
        let rtx = ReadTx {
            tx,
            path: &self.path,
        };
        let out = f(&rtx);
        // The read transaction keeps the database file (and redb's lock on it) alive:
        // it must end before the guard releases our lock, not after, as a temporary in
        // the tail expression would.
        drop(rtx);
        drop(g);
        out
    }
}

/// A write transaction.
pub struct WriteTx<'a> {
    tx: redb::WriteTransaction,
    path: &'a Path,
}

/// A read transaction.
pub struct ReadTx<'a> {
    tx: redb::ReadTransaction,
    path: &'a Path,
}

impl std::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriteTx({})", self.path.display())
    }
}
impl std::fmt::Debug for ReadTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadTx({})", self.path.display())
    }
}

fn decode<T: DeserializeOwned>(
    path: &Path,
    table: TableName,
    key: &str,
    v: &[u8],
) -> Result<T, DbError> {
    serde_json::from_slice(v).map_err(|e| DbError::Decode {
        path: path.into(),
        table: table.0,
        key: key.into(),
        source: e,
    })
}

macro_rules! read_methods {
    () => {
        fn err(&self, e: redb::Error) -> DbError {
            DbError::Redb {
                path: self.path.to_path_buf(),
                source: e,
            }
        }

        /// The raw value of `key` (none when the table does not exist yet).
        pub fn get(&self, t: TableName, key: &str) -> Result<Option<Vec<u8>>, DbError> {
            let table = match self.tx.open_table(t.def()) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(self.err(e.into())),
            };
            let v = table.get(key).map_err(|e| self.err(e.into()))?;
            Ok(v.map(|g| g.value().to_vec()))
        }

        /// The JSON value of `key`.
        pub fn get_json<T: DeserializeOwned>(
            &self,
            t: TableName,
            key: &str,
        ) -> Result<Option<T>, DbError> {
            self.get(t, key)?
                .map(|v| decode(self.path, t, key, &v))
                .transpose()
        }

        /// Every entry of a table, in key order (none when it does not exist yet).
        pub fn list(&self, t: TableName) -> Result<Vec<(String, Vec<u8>)>, DbError> {
            let table = match self.tx.open_table(t.def()) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(self.err(e.into())),
            };
            let mut out = Vec::new();
            for item in table.iter().map_err(|e| self.err(e.into()))? {
                let (k, v) = item.map_err(|e| self.err(e.into()))?;
                out.push((k.value().to_string(), v.value().to_vec()));
            }
            Ok(out)
        }

        /// Every entry of a table decoded from JSON.
        pub fn list_json<T: DeserializeOwned>(
            &self,
            t: TableName,
        ) -> Result<Vec<(String, T)>, DbError> {
            self.list(t)?
                .into_iter()
                .map(|(k, v)| decode(self.path, t, &k, &v).map(|x| (k, x)))
                .collect()
        }
    };
}

impl WriteTx<'_> {
    read_methods!();

    /// Sets `key` to raw bytes.
    pub fn put(&self, t: TableName, key: &str, value: &[u8]) -> Result<(), DbError> {
        let mut table = self
            .tx
            .open_table(t.def())
            .map_err(|e| self.err(e.into()))?;
        table.insert(key, value).map_err(|e| self.err(e.into()))?;
        Ok(())
    }

    /// Sets `key` to a JSON value.
    pub fn put_json<T: Serialize>(
        &self,
        t: TableName,
        key: &str,
        value: &T,
    ) -> Result<(), DbError> {
        let v = serde_json::to_vec(value).expect("metadata values serialize");
        self.put(t, key, &v)
    }

    /// Deletes `key`; whether it existed.
    pub fn delete(&self, t: TableName, key: &str) -> Result<bool, DbError> {
        let mut table = self
            .tx
            .open_table(t.def())
            .map_err(|e| self.err(e.into()))?;
        let old = table.remove(key).map_err(|e| self.err(e.into()))?;
        Ok(old.is_some())
    }
}

impl ReadTx<'_> {
    read_methods!();
}

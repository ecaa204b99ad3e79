//! A small key-value layer over SQLite shared by the metadata store, the snapshotters
//! and the engine.
//!
//! Every table maps text keys to bytes (JSON, or raw). The database is in WAL mode: many
//! `liana` processes use one file at once (a long pull and a `liana images`), readers
//! never wait for a writer, and writers queue on SQLite's own lock. A process keeps one
//! connection per [`Db`] handle for its whole life, so a transaction costs no open or
//! close of the file; a commit syncs the log once (`synchronous=FULL`), which makes it
//! durable across `kill -9` and power loss.
//!
//! Why SQLite and not redb (used before, 2026-11): a redb database can be open in only
//! one process at a time, so every transaction had to open and close the file, and each
//! opening costs redb two to four syncs; a pull made about 40 of them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::errdefs::{ErrorKind, HasKind};

/// How long a transaction waits for another process's write transaction to end.
const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database directory could not be made.
    #[error("open database {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An SQLite operation failed.
    #[error("database {path}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not an SQLite database (a store written by an older liana).
    #[error("database {path} is not an SQLite database (stores made by liana before 2026-11-28 used redb): remove it, or use another --root")]
    NotSqlite {
        /// The database file.
        path: PathBuf,
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
            DbError::Schema { .. } | DbError::NotSqlite { .. } => ErrorKind::FailedPrecondition,
            DbError::Decode { .. } => ErrorKind::DataCorrupt,
            _ => ErrorKind::Internal,
        }
    }
}

fn sqlite_err(path: &Path, e: rusqlite::Error) -> DbError {
    if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        return DbError::NotSqlite { path: path.into() };
    }
    DbError::Sqlite {
        path: path.into(),
        source: e,
    }
}

/// Whether `e` says a table does not exist (reads see a missing table as empty).
fn no_such_table(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(_, Some(m)) if m.starts_with("no such table"))
}

/// A table name; all tables map text keys to JSON (or raw) bytes. Names are quoted SQL
/// identifiers made of ASCII letters, digits, `_` and `-`.
#[derive(Debug, Clone, Copy)]
pub struct TableName(pub &'static str);

impl TableName {
    fn ident(self) -> &'static str {
        debug_assert!(
            !self.0.is_empty()
                && self
                    .0
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "table name {:?}",
            self.0
        );
        self.0
    }
}

/// A database file with a schema version.
#[derive(Debug, Clone)]
pub struct Db {
    path: PathBuf,
    schema: u32,
    tables: Arc<Vec<TableName>>,
    conn: Arc<Mutex<Option<Connection>>>,
}

impl Db {
    /// Opens (creating) the database at `path`; `tables` are created, and the schema
    /// version is recorded or checked, on this handle's first transaction. Tables not
    /// listed are created by the first write that uses them (reads see a missing table
    /// as empty).
    pub fn open(path: &Path, schema: u32, tables: &[TableName]) -> Result<Self, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Open {
                path: path.into(),
                source: e,
            })?;
        }
        Ok(Db {
            path: path.to_path_buf(),
            schema,
            tables: Arc::new(tables.to_vec()),
            conn: Arc::new(Mutex::new(None)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`Db::try_connect`], again while another process holds a lock SQLite will not
    /// wait for: processes opening a new database at once switch it to WAL mode and
    /// record its schema, and SQLite answers one of two such lock upgrades with BUSY at
    /// once rather than let them wait for each other.
    fn connect(&self) -> Result<Connection, DbError> {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match self.try_connect() {
                Err(DbError::Sqlite { source, .. })
                    if source.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && start.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                r => return r,
            }
        }
    }

    /// Opens the connection: WAL mode, durable commits, a long busy wait, and the
    /// schema checked (or recorded, with the tables, in a new database).
    fn try_connect(&self) -> Result<Connection, DbError> {
        let err = |e| sqlite_err(&self.path, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&self.path, flags).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(db = %self.path.display(), mode, "database is not in WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous=FULL").map_err(err)?;
        let version = |c: &Connection| -> Result<u32, DbError> {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| sqlite_err(&self.path, e))
        };
        let mut found = version(&conn)?;
        if found == 0 {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            found = version(&tx)?;
            if found == 0 {
                for t in self.tables.iter() {
                    create_table(&tx, *t).map_err(err)?;
                }
                tx.execute_batch(&format!("PRAGMA user_version = {}", self.schema))
                    .map_err(err)?;
                found = self.schema;
            }
            tx.commit().map_err(err)?;
        }
        if found != self.schema {
            return Err(DbError::Schema {
                path: self.path.clone(),
                found: found.to_string(),
                expected: self.schema,
            });
        }
        Ok(conn)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Option<Connection>>, DbError> {
        // A panic in another thread's transaction rolled it back; the connection is fine.
        let mut g = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(self.connect()?);
        }
        Ok(g)
    }

    /// Runs `f` in a write transaction and commits it if `f` succeeds.
    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut g = self.lock()?;
        let conn = g.as_mut().expect("connected");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_err(&self.path, e))?;
        let w = WriteTx {
            tx,
            path: &self.path,
        };
        let out = f(&w)?;
        w.tx.commit().map_err(|e| sqlite_err(&self.path, e))?;
        Ok(out)
    }

    /// Runs `f` in a read transaction (one consistent view of the database).
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&ReadTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut g = self.lock()?;
        let conn = g.as_mut().expect("connected");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| sqlite_err(&self.path, e))?;
        let rtx = ReadTx {
            tx,
            path: &self.path,
        };
        f(&rtx)
        // Dropping the transaction ends it (a rollback, which a reader does not mind).
    }
}

fn create_table(c: &Connection, t: TableName) -> rusqlite::Result<()> {
    c.prepare_cached(&format!(
        "CREATE TABLE IF NOT EXISTS \"{}\" (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID",
        t.ident()
    ))?
    .execute([])?;
    Ok(())
}

/// A write transaction.
pub struct WriteTx<'a> {
    tx: rusqlite::Transaction<'a>,
    path: &'a Path,
}

/// A read transaction.
pub struct ReadTx<'a> {
    tx: rusqlite::Transaction<'a>,
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
        fn err(&self, e: rusqlite::Error) -> DbError {
            sqlite_err(self.path, e)
        }

        /// The raw value of `key` (none when the table does not exist yet).
        pub fn get(&self, t: TableName, key: &str) -> Result<Option<Vec<u8>>, DbError> {
            let sql = format!("SELECT value FROM \"{}\" WHERE key = ?1", t.ident());
            let mut st = match self.tx.prepare_cached(&sql) {
                Ok(st) => st,
                Err(e) if no_such_table(&e) => return Ok(None),
                Err(e) => return Err(self.err(e)),
            };
            st.query_row([key], |r| r.get::<_, Vec<u8>>(0))
                .optional()
                .map_err(|e| self.err(e))
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
            let sql = format!("SELECT key, value FROM \"{}\" ORDER BY key", t.ident());
            let mut st = match self.tx.prepare_cached(&sql) {
                Ok(st) => st,
                Err(e) if no_such_table(&e) => return Ok(Vec::new()),
                Err(e) => return Err(self.err(e)),
            };
            let rows = st
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| self.err(e))
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
        create_table(&self.tx, t).map_err(|e| self.err(e))?;
        let sql = format!(
            "INSERT INTO \"{}\" (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            t.ident()
        );
        self.tx
            .prepare_cached(&sql)
            .and_then(|mut st| st.execute(rusqlite::params![key, value]))
            .map_err(|e| self.err(e))?;
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
        let sql = format!("DELETE FROM \"{}\" WHERE key = ?1", t.ident());
        match self.tx.prepare_cached(&sql) {
            Ok(mut st) => Ok(st.execute([key]).map_err(|e| self.err(e))? > 0),
            Err(e) if no_such_table(&e) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }
}

impl ReadTx<'_> {
    read_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TableName = TableName("things");
    const LAZY: TableName = TableName("lazy-table");

    #[test]
    fn tables_missing_tables_and_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("m.db"), 3, &[T]).unwrap();
        assert_eq!(db.read(|tx| tx.list(LAZY)).unwrap(), vec![]);
        assert_eq!(db.read(|tx| tx.get(LAZY, "k")).unwrap(), None);
        assert!(!db.write(|tx| tx.delete(LAZY, "k")).unwrap());
        db.write(|tx| {
            tx.put(LAZY, "b", b"2")?;
            tx.put_json(T, "a", &vec![1, 2])?;
            tx.put(T, "a", b"[3]")
        })
        .unwrap();
        let failed: Result<(), DbError> = db.write(|tx| {
            tx.put(T, "z", b"1")?;
            Err(DbError::NotSqlite { path: "x".into() })
        });
        assert!(failed.is_err());
        // A second handle (another connection) sees the committed state only.
        let other = Db::open(db.path(), 3, &[]).unwrap();
        assert_eq!(
            other.read(|tx| tx.list_json::<Vec<u8>>(T)).unwrap(),
            vec![("a".to_string(), vec![3])]
        );
        assert_eq!(
            other.read(|tx| tx.get(LAZY, "b")).unwrap(),
            Some(b"2".to_vec())
        );
        assert!(other.write(|tx| tx.delete(LAZY, "b")).unwrap());
    }

    #[test]
    fn concurrent_writers_on_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        std::thread::scope(|s| {
            for i in 0..4 {
                let path = path.clone();
                s.spawn(move || {
                    let db = Db::open(&path, 1, &[T]).unwrap();
                    for j in 0..25 {
                        db.write(|tx| {
                            let n: u32 = tx.get_json(T, "n")?.unwrap_or(0);
                            tx.put_json(T, "n", &(n + 1))?;
                            tx.put(T, &format!("{i}-{j}"), b"")
                        })
                        .unwrap();
                    }
                });
            }
        });
        let db = Db::open(&path, 1, &[T]).unwrap();
        assert_eq!(db.read(|tx| tx.get_json::<u32>(T, "n")).unwrap(), Some(100));
        assert_eq!(db.read(|tx| tx.list(T)).unwrap().len(), 101);
    }

    #[test]
    fn refuses_other_files_and_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let e = Db::open(&path, 1, &[T])
            .unwrap()
            .read(|tx| tx.get(T, "k"))
            .unwrap_err();
        assert!(matches!(e, DbError::NotSqlite { .. }), "{e:?}");
        assert!(e.to_string().contains("old.db"), "{e}");

        let path = dir.path().join("new.db");
        Db::open(&path, 1, &[T])
            .unwrap()
            .write(|tx| tx.put(T, "k", b"v"))
            .unwrap();
        let e = Db::open(&path, 2, &[T])
            .unwrap()
            .read(|tx| tx.get(T, "k"))
            .unwrap_err();
        assert!(matches!(e, DbError::Schema { expected: 2, .. }), "{e:?}");
    }
}

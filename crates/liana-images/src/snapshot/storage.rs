//! Snapshot records shared by the snapshotters: a database table of [`Info`] by key, an id
//! counter, and directory management under `ROOT/snapshots/<id>`.

use std::path::{Path, PathBuf};

use super::{validate_key, Info, Kind, SnapshotError};
use crate::metadata::{now_secs, Db, TableName};

const SNAPSHOTS: TableName = TableName("snapshots");
const COUNTER: TableName = TableName("counter");
/// Schema version of a snapshotter database.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub(crate) struct Storage {
    root: PathBuf,
    db: Db,
}

impl Storage {
    pub(crate) fn open(root: &Path) -> Result<Self, SnapshotError> {
        let snaps = root.join("snapshots");
        std::fs::create_dir_all(&snaps).map_err(|e| SnapshotError::Io {
            key: String::new(),
            op: "create",
            path: snaps.clone(),
            source: e,
        })?;
        let db = Db::open(
            &root.join("metadata.db"),
            SCHEMA_VERSION,
            &[SNAPSHOTS, COUNTER],
        )?;
        Ok(Storage {
            root: root.to_path_buf(),
            db,
        })
    }

    pub(crate) fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    pub(crate) fn get(&self, key: &str) -> Result<Info, SnapshotError> {
        self.db
            .read(|tx| {
                tx.get_json::<Info>(SNAPSHOTS, key)
                    .map_err(SnapshotError::from)
            })?
            .ok_or_else(|| SnapshotError::NotFound { key: key.into() })
    }

    /// Records a new snapshot; checks key uniqueness and parent kind. Returns its info.
    pub(crate) fn create(
        &self,
        key: &str,
        kind: Kind,
        parent: Option<&str>,
    ) -> Result<Info, SnapshotError> {
        validate_key(key)?;
        self.db.write(|tx| {
            if tx.get(SNAPSHOTS, key)?.is_some() {
                return Err(SnapshotError::AlreadyExists { key: key.into() });
            }
            if let Some(p) = parent {
                let pi: Info = tx
                    .get_json(SNAPSHOTS, p)?
                    .ok_or_else(|| SnapshotError::NotFound { key: p.into() })?;
                if pi.kind != Kind::Committed {
                    return Err(SnapshotError::WrongKind {
                        key: p.into(),
                        actual: pi.kind,
                        expected: "committed (as a parent)",
                    });
                }
            }
            let next = tx
                .get(COUNTER, "next")?
                .and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok())
                .unwrap_or(1);
            tx.put(COUNTER, "next", (next + 1).to_string().as_bytes())?;
            let info = Info {
                key: key.into(),
                kind,
                parent: parent.map(str::to_string),
                id: next,
                created_at: now_secs(),
            };
            tx.put_json(SNAPSHOTS, key, &info)?;
            Ok(info)
        })
    }

    pub(crate) fn set_parent(&self, key: &str, parent: &str) -> Result<(), SnapshotError> {
        self.db.write(|tx| {
            let mut i: Info = tx
                .get_json(SNAPSHOTS, key)?
                .ok_or_else(|| SnapshotError::NotFound { key: key.into() })?;
            if i.kind != Kind::Active || i.parent.is_some() {
                return Err(SnapshotError::WrongKind {
                    key: key.into(),
                    actual: i.kind,
                    expected: "active without parent",
                });
            }
            let pi: Info = tx
                .get_json(SNAPSHOTS, parent)?
                .ok_or_else(|| SnapshotError::NotFound { key: parent.into() })?;
            if pi.kind != Kind::Committed {
                return Err(SnapshotError::WrongKind {
                    key: parent.into(),
                    actual: pi.kind,
                    expected: "committed (as a parent)",
                });
            }
            i.parent = Some(parent.into());
            tx.put_json(SNAPSHOTS, key, &i)?;
            Ok(())
        })
    }

    pub(crate) fn commit(&self, name: &str, key: &str) -> Result<Info, SnapshotError> {
        validate_key(name)?;
        self.db.write(|tx| {
            let mut i: Info = tx
                .get_json(SNAPSHOTS, key)?
                .ok_or_else(|| SnapshotError::NotFound { key: key.into() })?;
            if i.kind != Kind::Active {
                return Err(SnapshotError::WrongKind {
                    key: key.into(),
                    actual: i.kind,
                    expected: "active",
                });
            }
            if tx.get(SNAPSHOTS, name)?.is_some() {
                return Err(SnapshotError::AlreadyExists { key: name.into() });
            }
            tx.delete(SNAPSHOTS, key)?;
            i.key = name.into();
            i.kind = Kind::Committed;
            tx.put_json(SNAPSHOTS, name, &i)?;
            Ok(i)
        })
    }

    /// Removes the record (no children allowed); returns it so the caller removes the dir.
    pub(crate) fn remove(&self, key: &str) -> Result<Info, SnapshotError> {
        self.db.write(|tx| {
            let i: Info = tx
                .get_json(SNAPSHOTS, key)?
                .ok_or_else(|| SnapshotError::NotFound { key: key.into() })?;
            let children = tx
                .list_json::<Info>(SNAPSHOTS)?
                .into_iter()
                .filter(|(_, c)| c.parent.as_deref() == Some(key))
                .count();
            if children > 0 {
                return Err(SnapshotError::HasChildren {
                    key: key.into(),
                    children,
                });
            }
            tx.delete(SNAPSHOTS, key)?;
            Ok(i)
        })
    }

    pub(crate) fn walk(&self) -> Result<Vec<Info>, SnapshotError> {
        Ok(self
            .db
            .read(|tx| tx.list_json::<Info>(SNAPSHOTS))?
            .into_iter()
            .map(|(_, i)| i)
            .collect())
    }

    /// The chain of committed ancestors of `info`, nearest first.
    pub(crate) fn ancestors(&self, info: &Info) -> Result<Vec<Info>, SnapshotError> {
        let mut out = Vec::new();
        let mut cur = info.parent.clone();
        while let Some(p) = cur {
            let pi = self.get(&p)?;
            cur = pi.parent.clone();
            out.push(pi);
            if out.len() > 4096 {
                break;
            }
        }
        Ok(out)
    }

    pub(crate) fn io(
        key: &str,
        op: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> SnapshotError {
        let key = key.to_string();
        let path = path.to_path_buf();
        move |source| SnapshotError::Io {
            key,
            op,
            path,
            source,
        }
    }

    pub(crate) fn remove_dir(&self, info: &Info) -> Result<(), SnapshotError> {
        let d = self.dir(info.id);
        match std::fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SnapshotError::Io {
                key: info.key.clone(),
                op: "remove",
                path: d,
                source: e,
            }),
        }
    }
}

/// Bytes used by the files under `dir` (hard links counted once).
pub(crate) fn disk_usage(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
        }
    }
    Ok(total)
}

//! Ingest writers: crash-safe, resumable, verified-before-visible blob writes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{flock, FlockOperation};

use super::{io_err, ContentError, ContentStore};
use crate::digest::{self, Digest, Digester};

fn ingest_dir(store: &ContentStore, expected: &Digest) -> PathBuf {
    let key = digest::sha256_of(expected.as_ref().as_bytes());
    store.root.join("ingest").join(digest::hex_part(&key))
}

/// Writes one blob into the store. Bytes go to the ingest's `data` file and are hashed
/// on the way; [`Writer::commit`] verifies and renames into place.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    data: File,
    _lock: File,
    blob_path: PathBuf,
    expected: Digest,
    size: u64,
    offset: u64,
    digester: Digester,
    hashing: bool,
    already_present: bool,
}

impl Writer {
    pub(super) fn open(
        store: &ContentStore,
        expected: &Digest,
        size: u64,
    ) -> Result<Self, ContentError> {
        let dir = ingest_dir(store, expected);
        let lock_path = dir.join("lock");
        let mut attempts = 0;
        let lock = loop {
            attempts += 1;
            match std::fs::create_dir_all(&dir) {
                Ok(()) => {}
                // Another writer removed the directory while it was being created or
                // checked (create_dir_all then reports it as existing, not a dir): again.
                Err(e)
                    if attempts < 100
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound
                        ) =>
                {
                    continue
                }
                Err(e) => return Err(io_err("create ingest", &dir)(e)),
            }
            let lock = match OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
            {
                Ok(f) => f,
                // The ingest directory was removed between the two calls: again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("open", &lock_path)(e)),
            };
            // blocks while another process ingests the same blob
            flock(&lock, FlockOperation::LockExclusive).map_err(|e| ContentError::Io {
                op: "lock",
                path: lock_path.clone(),
                source: e.into(),
            })?;
            // The writer we waited for removes the whole ingest directory once it has
            // committed (or given up): the lock we now hold may be on a removed file.
            // Only a lock on the file still at `lock_path` counts.
            if same_file(&lock, &lock_path) {
                break lock;
            }
        };
        let blob_path = store.blob_path(expected)?;
        let already_present = blob_path.exists();
        let _ = std::fs::write(dir.join("ref"), expected.as_ref());
        let _ = std::fs::write(dir.join("total"), size.to_string());
        let data_path = dir.join("data");
        let mut data = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&data_path)
            .map_err(io_err("open", &data_path))?;
        let mut digester = Digester::for_digest(expected);
        let mut offset = 0u64;
        let have = data.metadata().map_err(io_err("stat", &data_path))?.len();
        if have > size || already_present {
            data.set_len(0).map_err(io_err("truncate", &data_path))?;
        } else if have > 0 {
            // re-hash what an earlier, interrupted writer left
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = data.read(&mut buf).map_err(io_err("read", &data_path))?;
                if n == 0 {
                    break;
                }
                digester.update(&buf[..n]);
                offset += n as u64;
            }
            tracing::debug!(digest = %expected, offset, "resuming ingest");
        }
        data.seek(SeekFrom::Start(offset))
            .map_err(io_err("seek", &data_path))?;
        Ok(Writer {
            dir,
            data,
            _lock: lock,
            blob_path,
            expected: expected.clone(),
            size,
            offset,
            digester,
            hashing: true,
            already_present,
        })
    }

    /// Whether the blob was already in the store when the writer was opened (the
    /// caller can [`Writer::abort`] and use it).
    pub fn already_present(&self) -> bool {
        self.already_present
    }

    /// Bytes already written (resumed from an earlier ingest, then written here).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The hash state after the bytes written so far (to continue hashing elsewhere).
    pub fn digester(&self) -> Digester {
        self.digester.clone()
    }

    /// A reader over the bytes already in the ingest (to replay a resumed prefix).
    pub fn read_prefix(&self) -> Result<impl Read, ContentError> {
        let p = self.dir.join("data");
        let f = File::open(&p).map_err(io_err("open", &p))?;
        Ok(f.take(self.offset))
    }

    /// Stops hashing in the writer: the caller verifies the digest of the complete
    /// stream itself (a [`crate::remote::BlobReader`] seeded with [`Writer::digester`])
    /// and only calls [`Writer::commit_verified`] after that check passed.
    pub fn trust_caller_hash(&mut self) {
        self.hashing = false;
    }

    /// Drops what was written and starts over.
    pub fn reset(&mut self) -> Result<(), ContentError> {
        let p = self.dir.join("data");
        self.data.set_len(0).map_err(io_err("truncate", &p))?;
        self.data
            .seek(SeekFrom::Start(0))
            .map_err(io_err("seek", &p))?;
        self.offset = 0;
        self.digester = Digester::for_digest(&self.expected);
        Ok(())
    }

    /// Verifies size and digest, syncs, and renames the blob into the store. A
    /// mismatch removes the ingest (its data is wrong, resuming it would be too).
    pub fn commit(mut self) -> Result<(), ContentError> {
        let p = self.dir.join("data");
        if self.offset != self.size {
            let err = ContentError::SizeMismatch {
                digest: self.expected.clone(),
                expected: self.size,
                actual: self.offset,
            };
            self.remove_dir();
            return Err(err);
        }
        let actual = if self.hashing {
            self.digester.clone().finish()
        } else {
            self.expected.clone()
        };
        if actual != self.expected {
            self.remove_dir();
            return Err(ContentError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        self.data.flush().map_err(io_err("flush", &p))?;
        self.data.sync_all().map_err(io_err("sync", &p))?;
        let _ = self
            .data
            .set_permissions(std::fs::Permissions::from_mode(0o444));
        std::fs::rename(&p, &self.blob_path)
            .map_err(io_err("rename into store", &self.blob_path))?;
        if let Some(parent) = self.blob_path.parent() {
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        self.remove_dir();
        Ok(())
    }

    /// Commits after the caller verified the digest (see [`Writer::trust_caller_hash`]).
    pub fn commit_verified(self) -> Result<(), ContentError> {
        self.commit()
    }

    /// Gives up and removes the ingest.
    pub fn abort(self) {
        self.remove_dir();
    }

    /// Keeps the partial data for a later resume and releases the lock.
    pub fn suspend(self) {
        let _ = self.data.sync_data();
    }

    fn remove_dir(&self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove ingest");
            }
        }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.data.write(buf)?;
        if self.hashing {
            self.digester.update(&buf[..n]);
        }
        self.offset += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.data.flush()
    }
}

pub(super) fn progress(
    store: &ContentStore,
    expected: &Digest,
) -> Result<Option<u64>, ContentError> {
    let p = ingest_dir(store, expected).join("data");
    match std::fs::metadata(&p) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ContentError::Io {
            op: "stat",
            path: p,
            source: e,
        }),
    }
}

pub(super) fn prune(store: &ContentStore, grace: Duration) -> Result<u64, ContentError> {
    let dir = store.root.join("ingest");
    let rd = std::fs::read_dir(&dir).map_err(io_err("list", &dir))?;
    let mut freed = 0;
    for e in rd.flatten() {
        let path = e.path();
        let lock_path = path.join("lock");
        let Ok(lock) = File::open(&lock_path) else {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        };
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a writer is active
        }
        let data = path.join("data");
        let (age, size) = match std::fs::metadata(&data) {
            Ok(m) => (
                m.modified()
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok()),
                m.len(),
            ),
            Err(_) => (Some(Duration::MAX), 0),
        };
        if age.is_some_and(|a| a >= grace) {
            std::fs::remove_dir_all(&path).map_err(io_err("remove ingest", &path))?;
            freed += size;
        }
    }
    Ok(freed)
}

/// Whether `f` is the file now at `path`.
fn same_file(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

//! The layer pipeline of a pull: a pool of threads, each taking the next layer and
//! streaming it from the registry through the content store's ingest writer (tee),
//! the decompressor and the tar applier in one pass. With a snapshotter that supports
//! detached apply (overlay) every layer is unpacked concurrently into its own active
//! snapshot and the snapshots are committed in order at the end; otherwise blobs are
//! fetched concurrently and applied in order from the content store.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_spec::image::Descriptor;

use super::{Event, LayerError, Progress, PullError, PullOptions};
use crate::content::Writer;
use crate::digest::Digest;
use crate::errdefs::HasKind;
use crate::manifest::Compression;
use crate::remote::{BlobReader, Registry, RemoteError};
use crate::snapshot::SnapshotError;
use crate::store::ImageStore;
use crate::unpack::{self, UnpackError};

/// How a layer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    /// Downloaded (and unpacked, when unpacking).
    Downloaded,
    /// Unpacked from a blob already in the content store.
    FromStore,
    /// Already unpacked and stored: nothing to do.
    Exists,
}

/// The active snapshot key a pull extracts layer `chain` into.
pub(super) fn extract_key(lease: &str, chain: &str) -> String {
    format!("extract-{lease}-{chain}")
}

pub(super) struct Job<'a> {
    pub store: &'a ImageStore,
    pub reg: Option<&'a Registry>,
    pub repository: &'a str,
    pub reference: &'a str,
    pub layers: &'a [Descriptor],
    pub compressions: &'a [Compression],
    pub diff_ids: &'a [Digest],
    pub chain: &'a [String],
    pub lease: &'a str,
    pub opts: &'a PullOptions,
    pub progress: &'a dyn Progress,
}

/// Copies bytes from the registry into the ingest writer while handing them on.
struct Tee<'r, 'p> {
    remote: BlobReader<'r>,
    writer: Writer,
    digest: Digest,
    progress: &'p dyn Progress,
}

impl Read for Tee<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.remote.read(buf)?;
        io::Write::write_all(&mut self.writer, &buf[..n])?;
        if n > 0 {
            self.progress.event(&Event::Bytes {
                digest: self.digest.clone(),
                done: self.remote.position(),
            });
        }
        Ok(n)
    }
}

/// A resumed prefix from the ingest, then the rest from the registry through a tee.
type RemoteSource<'a> = (Box<dyn Read + Send>, Tee<'a, 'a>);

/// Reads a blob already in the store, reporting progress.
struct Counting<'p, R> {
    inner: R,
    done: u64,
    digest: Digest,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if n > 0 {
            self.progress.event(&Event::Bytes {
                digest: self.digest.clone(),
                done: self.done,
            });
        }
        Ok(n)
    }
}

const CHUNK: usize = 256 << 10;

/// The receiving end of the download thread's chunks, as a reader.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the download finished
            }
        }
        let n = (self.cur.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The `RemoteError` inside an unpack read error, if the stream failed remotely.
fn remote_cause(e: &UnpackError) -> Option<&RemoteError> {
    match e {
        UnpackError::Read { source, .. } => source
            .get_ref()
            .and_then(|r| r.downcast_ref::<RemoteError>()),
        _ => None,
    }
}

fn take_remote(e: UnpackError) -> Result<RemoteError, UnpackError> {
    match e {
        UnpackError::Read { layer, source } => {
            if source.get_ref().is_some_and(|r| r.is::<RemoteError>()) {
                Ok(crate::remote::unwrap_io(source, layer))
            } else {
                Err(UnpackError::Read { layer, source })
            }
        }
        other => Err(other),
    }
}

fn is_verification(e: &RemoteError) -> bool {
    matches!(
        e,
        RemoteError::DigestMismatch { .. } | RemoteError::SizeMismatch { .. }
    )
}

impl Job<'_> {
    fn err(&self, i: usize, e: impl Into<LayerError>) -> PullError {
        PullError::Layer {
            reference: self.reference.into(),
            digest: self.layers[i].digest().clone(),
            source: e.into(),
        }
    }

    /// Runs the pipeline; returns the top chain ID.
    pub(super) fn run(&self) -> Result<Option<String>, PullError> {
        let n = self.layers.len();
        if n == 0 {
            return Ok(None);
        }
        let sn = self.store.snapshotter();
        let committed = |c: &str| {
            sn.stat(c)
                .is_ok_and(|i| i.kind == crate::snapshot::Kind::Committed)
        };
        // layers below `start` are unpacked already (a chain ID covers all lower layers)
        let start = if self.opts.unpack {
            (0..n)
                .rev()
                .find(|&i| committed(&self.chain[i]))
                .map_or(0, |i| i + 1)
        } else {
            n
        };
        let mut need_fetch = Vec::with_capacity(n);
        for (i, l) in self.layers.iter().enumerate() {
            self.progress.event(&Event::Layer {
                digest: l.digest().clone(),
                size: l.size(),
            });
            let have = self
                .store
                .content()
                .contains(l.digest())
                .map_err(|e| self.err(i, e))?;
            need_fetch.push(!have);
        }
        let detached = sn.supports_detached_apply();
        // what each worker does with layer i: unpack it here, or only fetch it
        let unpack_here = |i: usize| i >= start && detached;
        let todo: Vec<usize> = (0..n)
            .filter(|&i| unpack_here(i) || need_fetch[i])
            .collect();
        for i in (0..n).filter(|i| !todo.contains(i) && (*i < start || detached)) {
            self.progress.event(&Event::LayerDone {
                digest: self.layers[i].digest().clone(),
                state: super::LayerState::Exists,
            });
        }
        let keys: Mutex<Vec<Option<String>>> = Mutex::new(vec![None; n]);
        let first_err: Mutex<Option<PullError>> = Mutex::new(None);
        let next = AtomicUsize::new(0);
        let abort = AtomicBool::new(false);
        let workers = self.opts.max_concurrent.clamp(1, 16).min(todo.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    if k >= todo.len() || abort.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = todo[k];
                    let res = if unpack_here(i) {
                        self.unpack_one(i, need_fetch[i]).map(Some)
                    } else {
                        self.fetch_only(i).map(|_| None)
                    };
                    match res {
                        Ok(key) => keys.lock().expect("lock")[i] = key,
                        Err(e) => {
                            abort.store(true, Ordering::SeqCst);
                            first_err.lock().expect("lock").get_or_insert(e);
                        }
                    }
                });
            }
        });
        let keys = keys.into_inner().expect("lock");
        if let Some(e) = first_err.into_inner().expect("lock") {
            for k in keys.into_iter().flatten() {
                let _ = sn.remove(&k);
            }
            return Err(e);
        }
        if detached {
            self.commit_in_order(start, keys)?;
        } else {
            for i in start..n {
                self.apply_sequential(i)?;
            }
        }
        Ok(Some(self.chain[n - 1].clone()))
    }

    fn commit_in_order(&self, start: usize, keys: Vec<Option<String>>) -> Result<(), PullError> {
        let sn = self.store.snapshotter();
        let mut keys = keys;
        for i in start..self.layers.len() {
            let key = keys[i].take().expect("every layer from start was unpacked");
            let res = (|| {
                if i > 0 {
                    sn.set_parent(&key, &self.chain[i - 1])?;
                }
                match sn.commit(&self.chain[i], &key) {
                    Err(SnapshotError::AlreadyExists { .. }) => {
                        // a concurrent pull committed the same layer first
                        sn.remove(&key)
                    }
                    other => other,
                }
            })();
            if let Err(e) = res {
                for k in keys.iter().flatten().chain(std::iter::once(&key)) {
                    let _ = sn.remove(k);
                }
                return Err(self.err(i, e));
            }
        }
        Ok(())
    }

    /// Opens the ingest writer and the registry stream for layer `i`, resuming a
    /// partial download. `None` when the blob appeared in the store meanwhile.
    fn open_remote(&self, i: usize) -> Result<Option<RemoteSource<'_>>, PullError> {
        let l = &self.layers[i];
        let mut w = self
            .store
            .content()
            .writer(l.digest(), l.size())
            .map_err(|e| self.err(i, e))?;
        if w.already_present() {
            w.abort();
            return Ok(None);
        }
        let offset = w.offset();
        if offset > 0 {
            tracing::info!(digest = %l.digest(), offset, "resuming partial download");
        }
        let prefix: Box<dyn Read + Send> = Box::new(w.read_prefix().map_err(|e| self.err(i, e))?);
        let digester = w.digester();
        w.trust_caller_hash();
        let Some(reg) = self.reg else {
            w.abort();
            return Err(self.err(
                i,
                crate::content::ContentError::NotFound {
                    digest: l.digest().clone(),
                },
            ));
        };
        let remote = match reg.fetch_blob(self.repository, l, offset, digester) {
            Ok(r) => r,
            Err(e) => {
                if is_verification(&e) {
                    w.abort();
                } else {
                    w.suspend();
                }
                return Err(self.err(i, e));
            }
        };
        Ok(Some((
            prefix,
            Tee {
                remote,
                writer: w,
                digest: l.digest().clone(),
                progress: self.progress,
            },
        )))
    }

    fn fetch_only(&self, i: usize) -> Result<(), PullError> {
        let Some((prefix, tee)) = self.open_remote(i)? else {
            return Ok(());
        };
        let mut chain = prefix.chain(tee);
        let res = io::copy(&mut chain, &mut io::sink());
        let (_, tee) = chain.into_inner();
        match res {
            Ok(_) => {
                tee.writer.commit_verified().map_err(|e| self.err(i, e))?;
                self.progress.event(&Event::LayerDone {
                    digest: self.layers[i].digest().clone(),
                    state: super::LayerState::Downloaded,
                });
                Ok(())
            }
            Err(e) => {
                let r = crate::remote::unwrap_io(e, self.layers[i].digest().to_string());
                if is_verification(&r) {
                    tee.writer.abort();
                } else {
                    tee.writer.suspend();
                }
                Err(self.err(i, r))
            }
        }
    }

    /// Prepares a detached snapshot and applies layer `i` into it, from the network
    /// (`fetch`) or from the content store. Returns the snapshot key.
    fn unpack_one(&self, i: usize, fetch: bool) -> Result<String, PullError> {
        let sn = self.store.snapshotter();
        let key = extract_key(self.lease, &self.chain[i]);
        let _ = sn.remove(&key); // left over from a killed pull with the same lease id
        let mounts = sn.prepare(&key, None).map_err(|e| self.err(i, e))?;
        let res = self.apply_into(i, fetch, &mounts);
        match res {
            Ok(()) => Ok(key),
            Err(e) => {
                let _ = sn.remove(&key);
                Err(e)
            }
        }
    }

    fn apply_into(
        &self,
        i: usize,
        fetch: bool,
        mounts: &[crate::snapshot::Mount],
    ) -> Result<(), PullError> {
        let l = &self.layers[i];
        let dir = unpack::target_dir(mounts).map_err(|e| self.err(i, e))?;
        let opts = &self.store.options().apply;
        let name = l.digest().to_string();
        let remote = if fetch { self.open_remote(i)? } else { None };
        let Some((prefix, tee)) = remote else {
            let f = self
                .store
                .content()
                .open_blob(l.digest())
                .map_err(|e| self.err(i, e))?;
            let r = Counting {
                inner: io::BufReader::with_capacity(256 << 10, f),
                done: 0,
                digest: l.digest().clone(),
                progress: self.progress,
            };
            unpack::apply_layer(
                &dir,
                r,
                self.compressions[i],
                Some(&self.diff_ids[i]),
                &name,
                opts,
            )
            .map_err(|e| self.err(i, e))?;
            self.progress.event(&Event::LayerDone {
                digest: l.digest().clone(),
                state: super::LayerState::FromStore,
            });
            return Ok(());
        };
        // two stages on two threads: network → hash → ingest file, and
        // decompress → hash → tar → files; chunks are handed over through a channel
        let (res, (mut tee, unseen)) = std::thread::scope(|sc| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(16);
            let producer = sc.spawn(move || {
                let mut chain = prefix.chain(tee);
                // an error the unpacker did not get to see (it had stopped already)
                let mut unseen = None;
                loop {
                    let mut buf = vec![0u8; CHUNK];
                    match chain.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            if tx.send(Ok(buf)).is_err() {
                                break; // the unpacker stopped
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            if let Err(std::sync::mpsc::SendError(Err(e))) = tx.send(Err(e)) {
                                unseen = Some(e);
                            }
                            break;
                        }
                    }
                }
                (chain.into_inner().1, unseen)
            });
            let reader = ChannelReader {
                rx,
                cur: Vec::new(),
                pos: 0,
            };
            let res = unpack::apply_layer(
                &dir,
                reader,
                self.compressions[i],
                Some(&self.diff_ids[i]),
                &name,
                opts,
            );
            (
                res,
                producer.join().expect("download thread does not panic"),
            )
        });
        match res {
            Ok(_) => {
                tee.writer.commit_verified().map_err(|e| self.err(i, e))?;
                self.progress.event(&Event::LayerDone {
                    digest: l.digest().clone(),
                    state: super::LayerState::Downloaded,
                });
                Ok(())
            }
            Err(e) if remote_cause(&e).is_some() => {
                let r = take_remote(e).expect("checked");
                if is_verification(&r) {
                    tee.writer.abort();
                } else {
                    tee.writer.suspend();
                }
                Err(self.err(i, r))
            }
            Err(e) => {
                // the content was rejected: if the blob itself is corrupt say so, which
                // needs the rest of it; either way nothing of it is kept
                if e.kind() == crate::ErrorKind::DataCorrupt {
                    let drained = match unseen {
                        Some(err) => Err(err),
                        None => io::copy(&mut tee, &mut io::sink()).map(|_| ()),
                    };
                    if let Err(drain) = drained {
                        let r = crate::remote::unwrap_io(drain, name.clone());
                        if is_verification(&r) {
                            tee.writer.abort();
                            return Err(self.err(i, r));
                        }
                    }
                }
                tee.writer.abort();
                Err(self.err(i, e))
            }
        }
    }

    /// Native path: prepare on top of the parent and apply from the content store.
    fn apply_sequential(&self, i: usize) -> Result<(), PullError> {
        let sn = self.store.snapshotter();
        let key = extract_key(self.lease, &self.chain[i]);
        let _ = sn.remove(&key);
        let parent = if i > 0 {
            Some(self.chain[i - 1].as_str())
        } else {
            None
        };
        let mounts = sn.prepare(&key, parent).map_err(|e| self.err(i, e))?;
        let res = self.apply_into(i, false, &mounts).and_then(|_| {
            match sn.commit(&self.chain[i], &key) {
                Err(SnapshotError::AlreadyExists { .. }) => {
                    sn.remove(&key).map_err(|e| self.err(i, e))
                }
                other => other.map_err(|e| self.err(i, e)),
            }
        });
        if res.is_err() {
            let _ = sn.remove(&key);
        }
        res
    }
}

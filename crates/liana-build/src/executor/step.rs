//! A filesystem-changing step: cache lookup, else an active snapshot over the stage's
//! layers mounted at `RUNROOT/build/ID/rootfs`, the step's action on it, then its upper
//! directory written as a layer, stored, and the snapshot committed under the layer's
//! chain ID. Whatever happens, nothing stays mounted and no active snapshot or
//! temporary directory is left behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use liana_images::snapshot::Mount;
use oci_spec::image::{Descriptor, DescriptorBuilder, MediaType};

use super::state::StageState;
use super::{BuildError, Builder};
use crate::cache::{self, Entry};
use crate::layer::{self, LayerOptions};

/// What a step action may leave behind that must not be in the layer: mount points the
/// runtime created (paths relative to the root, checked before the action).
#[derive(Debug, Default)]
pub(crate) struct Leftovers(
    pub Vec<String>,
    pub std::collections::HashMap<String, (u32, u32)>,
);

/// The active snapshot of a step, undone on drop unless committed.
pub(crate) struct Active<'a> {
    b: &'a Builder<'a>,
    pub key: String,
    pub mounts: Vec<Mount>,
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub upper: PathBuf,
    snapshot_live: bool,
    /// Native snapshotter: a view of the parent to diff against, and its key.
    parent_view: Option<(String, PathBuf)>,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        let _ = liana_engine::mount::unmount_rootfs(&self.mounts, &self.dir.join("rootfs"));
        if self.snapshot_live {
            if let Err(e) = self.b.store.snapshotter().remove(&self.key) {
                tracing::warn!("remove build snapshot {}: {e}", self.key);
            }
        }
        if let Some((k, _)) = &self.parent_view {
            let _ = self.b.store.snapshotter().remove(k);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn upper_of(mounts: &[Mount]) -> Option<PathBuf> {
    match mounts {
        [m] if m.kind == "bind" => Some(m.source.clone()),
        [m] => m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(PathBuf::from),
        _ => None,
    }
}

static VIEW_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether `rel` exists in the root `rootfs` (without leaving it).
pub(crate) fn exists_in(rootfs: &Path, rel: &str) -> bool {
    liana_container::resolve::Root::open(rootfs)
        .and_then(|r| r.resolve(Path::new(rel)))
        .is_ok()
}

/// A read-only view of a stage's layers, unmounted and removed on drop.
pub(crate) struct View<'a> {
    b: &'a Builder<'a>,
    key: Option<String>,
    mounts: Vec<Mount>,
    dir: PathBuf,
    pub rootfs: PathBuf,
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        let _ = liana_engine::mount::unmount_rootfs(&self.mounts, &self.dir.join("rootfs"));
        if let Some(k) = &self.key {
            let _ = self.b.store.snapshotter().remove(k);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Builder<'_> {
    /// Mounts a read-only view of the layers of `st`.
    pub(crate) fn view(&self, st: &StageState) -> Result<View<'_>, BuildError> {
        let seq = VIEW_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self
            .engine
            .paths()
            .runroot
            .join("build")
            .join(format!("{}-view{seq}", self.build_id));
        let mut v = View {
            b: self,
            key: None,
            mounts: Vec::new(),
            dir: dir.clone(),
            rootfs: dir.join("empty"),
        };
        liana_engine::paths::create_private_dir(&dir)
            .map_err(BuildError::io("create build directory", &dir))?;
        let Some(chain) = &st.chain else {
            std::fs::create_dir_all(&v.rootfs).map_err(BuildError::io("create", &v.rootfs))?;
            return Ok(v);
        };
        if self.store.snapshotter().name() != "overlayfs" {
            let key = format!("liana-build-{}-view{seq}", self.build_id);
            self.ensure_lease()?;
            v.mounts = self.store.snapshotter().view(&key, Some(chain))?;
            v.key = Some(key);
        } else {
            // the layers' directories straight from the engine's cache of lower dirs
            let lower =
                liana_engine::layers::lowerdirs(self.store, &self.engine.paths().root, chain)?;
            v.mounts = match lower.as_slice() {
                [one] => vec![Mount {
                    kind: "bind".into(),
                    source: one.clone(),
                    options: vec!["ro".into()],
                }],
                many => vec![Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![format!(
                        "lowerdir={}",
                        many.iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(":")
                    )],
                }],
            };
        }
        v.rootfs = liana_engine::mount::mount_rootfs(&v.mounts, &dir.join("rootfs"))
            .map_err(liana_engine::Error::from)?;
        Ok(v)
    }

    /// Creates the build's lease on first need, with every snapshot key it may use.
    fn ensure_lease(&self) -> Result<(), BuildError> {
        let id = &self.build_id;
        let n = self.layer_steps + 64;
        self.lease.ensure(self.store, || {
            (1..=n)
                .map(|i| format!("liana-build-{id}-{i}"))
                .chain((0..n).map(|i| format!("liana-build-{id}-view{i}")))
                .chain((1..=n).map(|i| format!("liana-build-{id}-{i}-parent")))
                .collect()
        })?;
        Ok(())
    }

    /// Prepares and mounts an active snapshot on top of `parent`.
    pub(crate) fn activate(
        &self,
        seq: usize,
        parent: Option<&str>,
    ) -> Result<Active<'_>, BuildError> {
        let sn = self.store.snapshotter();
        let key = format!("liana-build-{}-{seq}", self.build_id);
        self.ensure_lease()?;
        let dir = self
            .engine
            .paths()
            .runroot
            .join("build")
            .join(format!("{}-{seq}", self.build_id));
        let mounts = sn.prepare(&key, parent)?;
        let mut a = Active {
            b: self,
            key: key.clone(),
            mounts,
            dir: dir.clone(),
            rootfs: PathBuf::new(),
            upper: PathBuf::new(),
            snapshot_live: true,
            parent_view: None,
        };
        if let (Some(p), false) = (parent, sn.supports_detached_apply()) {
            // a full copy: the layer is its difference from the parent
            let vkey = format!("{key}-parent");
            let vm = sn.view(&vkey, Some(p))?;
            a.parent_view = Some((vkey.clone(), PathBuf::new()));
            let src = liana_engine::mount::bind_source(&vm)
                .map(Path::to_path_buf)
                .ok_or_else(|| BuildError::Invalid(format!("unsupported view mounts {vm:?}")))?;
            a.parent_view = Some((vkey, src));
        }
        liana_engine::paths::create_private_dir(&dir)
            .map_err(BuildError::io("create build directory", &dir))?;
        a.upper = upper_of(&a.mounts).ok_or_else(|| {
            BuildError::Invalid(format!("unsupported snapshot mounts {:?}", a.mounts))
        })?;
        a.rootfs = liana_engine::mount::mount_rootfs(&a.mounts, &dir.join("rootfs"))
            .map_err(liana_engine::Error::from)?;
        Ok(a)
    }

    /// Runs a filesystem step: from the cache, or by `action` on a fresh snapshot.
    pub(crate) fn layer_step(
        &self,
        st: &mut StageState,
        key: String,
        text: &str,
        history: &str,
        action: impl FnOnce(
            &Builder<'_>,
            &StageState,
            &Active<'_>,
            usize,
        ) -> Result<Leftovers, BuildError>,
    ) -> Result<(), BuildError> {
        let key = cache::key(&key, &[self.opts.compression.media_type()]);
        let n = self.next_step();
        let t = Instant::now();
        self.progress.begin(n, text);
        if !self.opts.no_cache {
            if let Some(e) = self.cache.get(&key) {
                if self.usable(st, &e) {
                    self.apply(st, &e, history);
                    st.key = key;
                    self.progress.done(n, t.elapsed(), true);
                    return Ok(());
                }
            }
        }
        let seq = self
            .snap_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        self.all_cached
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let entry = {
            let this: &Builder<'_> = self;
            let mut a = this.activate(seq, st.chain.as_deref())?;
            let workdir = st.config.working_dir().clone().unwrap_or_default();
            if !workdir.is_empty() && workdir != "/" {
                liana_container::resolve::Root::open(&a.rootfs)
                    .and_then(|r| {
                        r.create_all(Path::new(&workdir), liana_container::resolve::Create::Dir)
                    })
                    .map_err(BuildError::io("create WORKDIR", &workdir))?;
            }
            let left = action(this, st, &a, n)?;
            liana_engine::mount::unmount_rootfs(&a.mounts, &a.dir.join("rootfs"))
                .map_err(liana_engine::Error::from)?;
            for rel in left.0.iter().rev() {
                let p = a.upper.join(rel.trim_start_matches('/'));
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.is_file() && m.len() == 0 => {
                        let _ = std::fs::remove_file(&p);
                    }
                    Ok(m) if m.is_dir() => {
                        let _ = std::fs::remove_dir(&p);
                    }
                    _ => {}
                }
            }
            let e = this.commit_layer(st, &mut a, left.1)?;
            this.cache.put(&key, &e);
            e
        };
        self.apply(st, &entry, history);
        st.key = key;
        self.progress.done(n, t.elapsed(), false);
        Ok(())
    }

    fn usable(&self, st: &StageState, e: &Entry) -> bool {
        match (&e.layer, &e.diff_id) {
            (None, _) => true,
            (Some(l), Some(d)) => {
                let chain = cache::chain_id(st.chain.as_deref(), d);
                self.store.content().contains(l.digest()).unwrap_or(false)
                    && self.is_committed(&chain)
            }
            _ => false,
        }
    }

    /// Rootless: host → image id ranges (the user is root, then the subordinate ids).
    pub(crate) fn id_maps(&self) -> (crate::layer::IdRanges, crate::layer::IdRanges) {
        if !self.engine.rootless() {
            return (Vec::new(), Vec::new());
        }
        let m = liana_engine::rootless::mappings_for_caller(
            Path::new("/etc/subuid"),
            Path::new("/etc/subgid"),
        );
        let conv = |v: &[liana_engine::rootless::IdMap]| {
            v.iter().map(|x| (x.container, x.host, x.size)).collect()
        };
        (conv(&m.uids), conv(&m.gids))
    }

    /// Whether `chain` is a committed snapshot (the list is read once per build).
    fn is_committed(&self, chain: &str) -> bool {
        let mut c = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        if c.is_none() {
            let all = self.store.snapshotter().walk().unwrap_or_default();
            *c = Some(
                all.into_iter()
                    .filter(|i| i.kind == liana_images::snapshot::Kind::Committed)
                    .map(|i| i.key)
                    .collect(),
            );
        }
        c.as_ref().is_some_and(|s| s.contains(chain))
    }

    fn apply(&self, st: &mut StageState, e: &Entry, history: &str) {
        match (&e.layer, &e.diff_id) {
            (Some(l), Some(d)) => {
                st.chain = Some(cache::chain_id(st.chain.as_deref(), d));
                st.layers.push(l.clone());
                st.diff_ids.push(d.clone());
                st.push_history(history, false, self.opts.source_date_epoch);
            }
            _ => st.push_history(history, true, self.opts.source_date_epoch),
        }
    }

    /// Writes the upper directory of `a` as a layer, stores it and commits the snapshot.
    fn commit_layer(
        &self,
        st: &StageState,
        a: &mut Active<'_>,
        owners: std::collections::HashMap<String, (u32, u32)>,
    ) -> Result<Entry, BuildError> {
        let (uid_map, gid_map) = self.id_maps();
        let lo = LayerOptions {
            parent: a.parent_view.as_ref().map(|(_, p)| p.clone()),
            copy_owner: (a.parent_view.is_some() && self.engine.rootless()).then(|| {
                (
                    rustix::process::geteuid().as_raw(),
                    rustix::process::getegid().as_raw(),
                )
            }),
            uid_map,
            gid_map,
            owners,
            compression: self.opts.compression,
            source_date_epoch: self.opts.source_date_epoch,
            xattr_prefix: match self.store.snapshotter().whiteout_mode() {
                liana_images::unpack::WhiteoutMode::Overlay { xattr_prefix } => xattr_prefix,
                _ => "trusted.".into(),
            },
        };
        let file = a.dir.join("layer");
        let w = layer::write(&a.upper, &file, &lo)
            .map_err(BuildError::io("write layer of", &a.upper))?;
        if w.entries == 0 {
            return Ok(Entry {
                layer: None,
                diff_id: None,
            });
        }
        self.import(&file, &w.digest, w.size)?;
        let diff_id = w.diff_id.to_string();
        let chain = cache::chain_id(st.chain.as_deref(), &diff_id);
        let sn = self.store.snapshotter();
        match sn.commit(&chain, &a.key) {
            Ok(()) => a.snapshot_live = false,
            Err(liana_images::snapshot::SnapshotError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(set) = self
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            set.insert(chain);
        }
        let desc: Descriptor = DescriptorBuilder::default()
            .media_type(MediaType::from(self.opts.compression.media_type()))
            .digest(w.digest.clone())
            .size(w.size)
            .build()
            .expect("descriptor fields set");
        Ok(Entry {
            layer: Some(desc),
            diff_id: Some(diff_id),
        })
    }

    /// Copies the file `p` into the content store as blob `digest`.
    pub(crate) fn import(
        &self,
        p: &Path,
        digest: &liana_images::digest::Digest,
        size: u64,
    ) -> Result<(), BuildError> {
        let content = self.store.content();
        if content.contains(digest)? {
            return Ok(());
        }
        let mut w = content.writer(digest, size)?;
        if w.offset() > 0 {
            w.reset()?;
        }
        let mut f = std::fs::File::open(p).map_err(BuildError::io("open", p))?;
        std::io::copy(&mut f, &mut w).map_err(BuildError::io("store layer", p))?;
        w.flush().map_err(BuildError::io("store layer", p))?;
        w.commit()?;
        Ok(())
    }
}

//! `create` (and the first half of `run`): image → snapshot → root file system →
//! volumes → /etc files → OCI spec → bundle, recorded in the database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use liana_images::metadata::{ImageRecord, Lease};
use liana_images::pull::{Progress, PullOptions};
use liana_monitor::logfile::LogDriver;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::etc::EtcInput;
use crate::ids;
use crate::options::RunOptions;
use crate::record::{Container, MountInfo, RootfsSource, Settings, State, Status, RECORD_VERSION};
use crate::spec::{self, ResolvedMount, SpecInput};
use crate::volumes::VolumeSource;

/// What the container's root file system comes from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// A local image.
    Image(Box<ImageRecord>),
    /// A directory (`--rootfs`).
    Rootfs(PathBuf),
}

/// The snapshot key of a container.
pub fn snapshot_key(id: &str) -> String {
    format!("liana-container-{id}")
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// Parses a signal name or number (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    liana_container::signals::parse(s)
}

/// Removes what a failed create left.
pub(crate) struct Undo<'a> {
    engine: &'a Engine,
    id: String,
    snapshot: Option<String>,
    dir: Option<PathBuf>,
    volumes: Vec<String>,
    /// The network whose address lease to give back.
    net_lease: Option<String>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let e = self.engine;
        let _ = crate::mount::unmount_rootfs(&[], &e.paths.rootfs_mount(&self.id));
        if let (Some(k), Ok(s)) = (&self.snapshot, e.store()) {
            if let Err(err) = s.snapshotter().remove(k) {
                tracing::warn!("undo create: remove snapshot {k}: {err}");
            }
        }
        if let Ok(v) = e.volumes() {
            for n in &self.volumes {
                let _ = v.remove(n);
            }
        }
        if let Some(n) = &self.net_lease {
            if let Err(err) = e.release_ip(n, &self.id) {
                tracing::warn!("undo create: release the address on {n}: {err}");
            }
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
        let _ = std::fs::remove_dir_all(e.paths.run_dir(&self.id));
    }
}

impl Engine {
    /// The local image `name`, pulled when missing.
    pub fn image_for_run(
        &self,
        name: &str,
        pull: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<ImageRecord> {
        let store = self.store()?;
        match store.find(name) {
            Ok(r) if r.snapshot.is_some() => Ok(r),
            Ok(_) | Err(liana_images::StoreError::ImageNotFound { .. }) => {
                Ok(liana_images::pull::pull(store, name, pull, progress)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a container.
    pub fn create(&self, o: &RunOptions, src: ImageSource) -> Result<Container> {
        let mut p = self.prepare(o, src)?;
        self.commit(&mut p)?;
        Ok(p.container)
    }

    /// Records a prepared container (and its lease) in one transaction; a generated
    /// name that turns out taken is replaced.
    pub(crate) fn commit(&self, p: &mut Prepared<'_>) -> Result<()> {
        // (Between the snapshot's creation and this commit, only a concurrent image
        // garbage collection could take the unleased snapshot; the create would then
        // fail cleanly.)
        let db = self.db()?;
        loop {
            match db.insert(&p.container, p.lease.as_ref()) {
                Err(Error::NameInUse { .. }) if p.generated_name => {
                    p.container.name = ids::random_name()
                }
                r => break r?,
            }
        }
        p.undo.armed = false;
        if let Some(n) = &p.container.settings.net.network {
            self.refresh_hosts(n, None);
        }
        Ok(())
    }

    /// Everything of `create` but the database record.
    pub(crate) fn prepare(&self, o: &RunOptions, src: ImageSource) -> Result<Prepared<'_>> {
        let id = ids::new_id();
        let runtime_name = o
            .runtime
            .clone()
            .unwrap_or_else(|| self.config.engine.runtime.clone());
        // Fail early on an unknown runtime.
        self.runtime(&runtime_name)?;
        let log_driver = o
            .log_driver
            .clone()
            .unwrap_or_else(|| self.config.engine.log_driver.clone());
        if LogDriver::parse(&log_driver).is_none() {
            return Err(Error::flag(
                "--log-driver",
                format!("{log_driver:?}: expected k8s-file, json-file or none"),
            ));
        }
        tracing::debug!(id = %id, "create: begin");
        let image_config = match &src {
            ImageSource::Image(r) => self.store()?.config(r)?.config().clone(),
            ImageSource::Rootfs(_) => None,
        };
        let stop_signal_text = o
            .stop_signal
            .clone()
            .or_else(|| image_config.as_ref().and_then(|c| c.stop_signal().clone()))
            .unwrap_or_else(|| "SIGTERM".into());
        let stop_signal = parse_signal(&stop_signal_text)
            .ok_or_else(|| Error::flag("--stop-signal", format!("{stop_signal_text:?}")))?;
        let mut labels = BTreeMap::new();
        for l in &o.labels {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
        if self.rootless && !self.cgroups_usable() {
            let asked: Vec<&str> = [
                (o.memory.is_some(), "--memory"),
                (o.memory_swap.is_some(), "--memory-swap"),
                (o.cpus.is_some(), "--cpus"),
                (o.cpu_shares.is_some(), "--cpu-shares"),
                (o.cpuset_cpus.is_some(), "--cpuset-cpus"),
                (o.pids_limit.is_some(), "--pids-limit"),
            ]
            .into_iter()
            .filter_map(|(set, f)| set.then_some(f))
            .collect();
            if !asked.is_empty() {
                tracing::warn!(
                    "rootless on a host without delegated cgroups (cgroup v1): {} ignored",
                    asked.join(", ")
                );
            }
        }

        let dir = self.paths.container_dir(&id);
        let mut undo = Undo {
            engine: self,
            id: id.clone(),
            snapshot: None,
            dir: None,
            volumes: Vec::new(),
            net_lease: None,
            armed: true,
        };
        let (rootfs_source, lease, image_name, image_id, image_ref) = match &src {
            ImageSource::Image(r) => {
                let store = self.store()?;
                let sn = store.snapshotter();
                let image_snapshot = r
                    .snapshot
                    .clone()
                    .ok_or_else(|| Error::flag("image", format!("{} is not unpacked", r.name)))?;
                let source = if sn.name() == "overlayfs" {
                    RootfsSource::Overlay {
                        lower: crate::layers::lowerdirs(store, &self.paths.root, &image_snapshot)?,
                        image_snapshot: image_snapshot.clone(),
                    }
                } else {
                    RootfsSource::Snapshot {
                        key: snapshot_key(&id),
                        snapshotter: sn.name().into(),
                        mounts: Vec::new(),
                    }
                };
                let leased = match &source {
                    RootfsSource::Snapshot { key, .. } => key.clone(),
                    _ => image_snapshot,
                };
                (
                    source,
                    Some(Lease {
                        expires_at: u64::MAX / 2,
                        content: vec![
                            r.manifest.digest().to_string(),
                            r.config.digest().to_string(),
                        ],
                        snapshots: vec![leased],
                    }),
                    r.name.clone(),
                    Some(r.id()),
                    Some(r.name.clone()),
                )
            }
            ImageSource::Rootfs(p) => {
                let p = p
                    .canonicalize()
                    .map_err(Error::io("--rootfs", p.as_path()))?;
                (
                    RootfsSource::Dir { path: p.clone() },
                    None,
                    p.display().to_string(),
                    None,
                    None,
                )
            }
        };
        let hostname = o
            .hostname
            .clone()
            .unwrap_or_else(|| ids::short(&id).to_string());
        let mut c = Container {
            version: RECORD_VERSION,
            id: id.clone(),
            name: String::new(),
            created: now(),
            image: image_name.clone(),
            image_id,
            image_ref,
            rootfs: rootfs_source,
            command: Vec::new(),
            settings: Settings {
                runtime: runtime_name,
                tty: o.tty,
                interactive: o.interactive,
                rm: o.rm,
                log_driver,
                stop_signal,
                stop_timeout: o.stop_timeout.unwrap_or(self.config.engine.stop_timeout),
                hostname: hostname.clone(),
                rootless: self.rootless,
                labels,
                init: o.init,
                read_only: o.read_only,
                privileged: o.privileged,
                ..Default::default()
            },
            state: State {
                status: Some(Status::Created),
                ..Default::default()
            },
        };
        for (k, v) in [
            ("network", &o.network),
            ("pid", &o.pid),
            ("ipc", &o.ipc),
            ("uts", &o.uts),
        ] {
            if let Some(v) = v {
                c.settings.namespaces.insert(k.into(), v.clone());
            }
        }
        for (k, v) in [
            ("memory", o.memory.clone()),
            ("memory-swap", o.memory_swap.clone()),
            ("cpus", o.cpus.map(|x| x.to_string())),
            ("cpu-shares", o.cpu_shares.map(|x| x.to_string())),
            ("cpuset-cpus", o.cpuset_cpus.clone()),
            ("pids-limit", o.pids_limit.map(|x| x.to_string())),
        ] {
            if let Some(v) = v {
                c.settings.resources.insert(k.into(), v);
            }
        }
        c.name = match &o.name {
            Some(n) => ids::validate_name(n)?,
            None => ids::random_name(),
        };
        crate::paths::create_private_dir(&dir)
            .map_err(Error::io("create container directory", &dir))?;
        undo.dir = Some(dir.clone());

        let rootfs = match (&src, &c.rootfs) {
            (ImageSource::Image(r), RootfsSource::Snapshot { key, .. }) => {
                let parent = r.snapshot.clone();
                let mounts = self
                    .store()?
                    .snapshotter()
                    .prepare(key, parent.as_deref())?;
                undo.snapshot = Some(key.clone());
                crate::mount::mount_rootfs(&mounts, &self.paths.rootfs_mount(&id))?
            }
            (_, RootfsSource::Overlay { lower, .. }) => {
                crate::layers::create_dirs(&dir)?;
                crate::mount::mount_rootfs(
                    &crate::layers::mount_of(lower, &dir),
                    &self.paths.rootfs_mount(&id),
                )?
            }
            (_, RootfsSource::Dir { path }) => path.clone(),
            _ => unreachable!("source and record agree"),
        };

        tracing::debug!(id = %id, "create: root file system ready");
        // Volumes: -v, then the image's VOLUMEs not already covered.
        let mut resolved: Vec<ResolvedMount> = Vec::new();
        let mut specs = Vec::new();
        for v in &o.volumes {
            specs.push(crate::volumes::parse(v)?);
        }
        if let Some(vols) = image_config.as_ref().and_then(|c| c.volumes().clone()) {
            for dest in vols {
                let d = dest.trim_end_matches('/').to_string();
                if !specs.iter().any(|s| s.destination == d)
                    && !o.tmpfs.iter().any(|t| t.split(':').next() == Some(&d))
                {
                    specs.push(crate::volumes::VolumeSpec {
                        source: VolumeSource::Anonymous,
                        destination: d,
                        read_only: false,
                        options: Vec::new(),
                    });
                }
            }
        }
        for s in specs {
            let (source, kind, name, fresh) = match &s.source {
                VolumeSource::Bind(p) => {
                    if !p.exists() {
                        return Err(Error::flag(
                            "-v",
                            format!("bind source {} does not exist", p.display()),
                        ));
                    }
                    (p.clone(), "bind", String::new(), false)
                }
                VolumeSource::Named(n) => {
                    let (v, new) = self.volumes()?.ensure(n, false)?;
                    (v.mountpoint, "volume", n.clone(), new)
                }
                VolumeSource::Anonymous => {
                    let n = ids::new_id();
                    let (v, _) = self.volumes()?.ensure(&n, true)?;
                    undo.volumes.push(n.clone());
                    c.settings.anonymous_volumes.push(n.clone());
                    (v.mountpoint, "volume", n, true)
                }
            };
            if fresh {
                copy_up(&rootfs, &s.destination, &source);
            }
            c.settings.mounts.push(MountInfo {
                kind: kind.into(),
                name,
                source: source.clone(),
                destination: s.destination.clone(),
                rw: !s.read_only,
            });
            resolved.push(ResolvedMount {
                source,
                destination: s.destination,
                read_only: s.read_only,
                options: s.options,
            });
        }

        let plan = self.plan_network(o, &id)?;
        undo.net_lease = plan.settings.network.clone();
        c.settings.net = plan.settings.clone();
        let host_network = plan.ns == crate::network::attach::NsSpec::Host;
        let mut extra_hosts = plan.settings.add_hosts.clone();
        if let Some(n) = &plan.settings.network {
            for (ip, m) in self.network_members(n)? {
                for a in &m.settings.net.aliases {
                    extra_hosts.push((a.clone(), ip.to_string()));
                }
                extra_hosts.push((m.name, ip.to_string()));
            }
        }
        crate::etc::write_all(
            &dir,
            &EtcInput {
                hostname: &hostname,
                name: &c.name,
                id: &id,
                image: &image_name,
                host_network,
                rootless: self.rootless,
                ip: plan.settings.ip,
                extra_hosts: &extra_hosts,
                dns: &plan.resolvers,
            },
        )
        .map_err(Error::io("write /etc files into", &dir))?;

        let mappings = self.rootless.then(|| {
            crate::rootless::mappings_for_caller(Path::new("/etc/subuid"), Path::new("/etc/subgid"))
        });
        let init_path = if o.init { self.init_path() } else { None };
        if let Some(p) = &init_path {
            if !crate::engine::is_static_elf(p) {
                return Err(Error::flag(
                    "--init",
                    format!(
                        "{} is dynamically linked; the init must be static to run in any image",
                        p.display()
                    ),
                ));
            }
        }
        let builtin = c.settings.runtime == crate::runtime::BUILTIN;
        let input = SpecInput {
            id: &id,
            name: &c.name,
            rootfs: &rootfs,
            image: image_config.as_ref(),
            opts: o,
            userdata: &dir,
            hostname: &hostname,
            volumes: &resolved,
            rootless: mappings.as_ref(),
            user_namespace: self.rootless && builtin,
            init_path: init_path.as_deref(),
            cgroups_path: self.cgroups_usable().then(|| format!("/liana/{id}")),
            pids_limit: self.config.engine.pids_limit,
            cgroup2: is_cgroup2(),
            network: &plan.ns,
        };
        let spec = spec::generate(&input)?;
        tracing::debug!(id = %id, "create: spec generated");
        let process = spec.process().clone().unwrap_or_default();
        c.command = process.args().clone().unwrap_or_default();
        c.settings.env = process.env().clone().unwrap_or_default();
        c.settings.working_dir = process.cwd().display().to_string();
        c.settings.user = o
            .user
            .clone()
            .or_else(|| image_config.as_ref().and_then(|x| x.user().clone()))
            .unwrap_or_default();
        c.settings.entrypoint = match &o.entrypoint {
            Some(e) if !e.is_empty() => vec![e.clone()],
            Some(_) => Vec::new(),
            None => image_config
                .as_ref()
                .and_then(|x| x.entrypoint().clone())
                .unwrap_or_default(),
        };
        let bytes = serde_json::to_vec_pretty(&spec).expect("spec serializes");
        std::fs::write(dir.join("config.json"), bytes)
            .map_err(Error::io("write", dir.join("config.json")))?;
        Ok(Prepared {
            container: c,
            lease,
            generated_name: o.name.is_none(),
            undo,
        })
    }
}

/// A container ready to be recorded; dropped unrecorded, it is undone.
pub(crate) struct Prepared<'a> {
    pub(crate) container: Container,
    pub(crate) lease: Option<Lease>,
    generated_name: bool,
    undo: Undo<'a>,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("id", &self.container.id)
            .finish_non_exhaustive()
    }
}

/// Copies the image's content at `dest` into a new, empty volume.
fn copy_up(rootfs: &Path, dest: &str, volume: &Path) {
    let Ok(root) = liana_container::resolve::Root::open(rootfs) else {
        return;
    };
    let Ok(rel) = root.resolve(Path::new(dest)) else {
        return;
    };
    if !crate::volumes::is_empty_dir(volume) {
        return;
    }
    if let Err(e) = crate::cp::copy_tree_in_root(&root, &rel, volume) {
        tracing::warn!("copy {dest} of the image into its new volume: {e}");
    }
}

fn is_cgroup2() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.f_type == 0x6367_7270)
}

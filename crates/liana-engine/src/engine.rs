//! [`Engine`]: one engine instance (a storage root, a runtime state root, a config),
//! opened by every command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use liana_images::store::{SnapshotterKind, StoreOptions};
use liana_images::ImageStore;

use crate::config::Config;
use crate::db::ContainerDb;
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::record::Container;
use crate::runtime::{self, OciRuntime, RuntimeContext};
use crate::volumes::Volumes;

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Storage root.
    pub root: PathBuf,
    /// Runtime state root.
    pub runroot: PathBuf,
    /// The config file's content.
    pub config: Config,
    /// Snapshotter for images.
    pub snapshotter: SnapshotterKind,
    /// The `liana` binary, for the monitor's exit command.
    pub exe: PathBuf,
    /// Global flags that make `exe` address this same instance (`--root R --runroot
    /// RR [--config C]`).
    pub global_args: Vec<OsString>,
    /// The monitor binary, if given explicitly.
    pub monitor: Option<PathBuf>,
}

/// An engine instance.
#[derive(Debug)]
pub struct Engine {
    pub(crate) paths: Paths,
    pub(crate) config: Config,
    pub(crate) rootless: bool,
    store_opts: StoreOptions,
    store: OnceLock<ImageStore>,
    pub(crate) exe: PathBuf,
    pub(crate) global_args: Vec<OsString>,
    monitor: Option<PathBuf>,
}

fn sibling(exe: &Path, name: &str) -> Option<PathBuf> {
    let p = exe.parent()?.join(name);
    p.is_file().then_some(p)
}

/// Whether an ELF file has no program interpreter (is statically linked).
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(x) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) != 3
    })
}

impl Engine {
    /// Opens an instance (the image store is opened on first use).
    pub fn open(o: EngineOptions) -> Result<Self> {
        let rootless = !rustix::process::geteuid().is_root();
        let mut store_opts = StoreOptions::new(&o.root);
        store_opts.snapshotter = o.snapshotter;
        Ok(Engine {
            paths: Paths {
                root: o.root,
                runroot: o.runroot,
            },
            config: o.config,
            rootless,
            store_opts,
            store: OnceLock::new(),
            exe: o.exe,
            global_args: o.global_args,
            monitor: o.monitor,
        })
    }

    /// The paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the engine runs unprivileged.
    pub fn rootless(&self) -> bool {
        self.rootless
    }

    /// The image store.
    pub fn store(&self) -> Result<&ImageStore> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let s = ImageStore::open(self.store_opts.clone())?;
        Ok(self.store.get_or_init(|| s))
    }

    /// The container tables.
    pub fn db(&self) -> Result<ContainerDb> {
        Ok(ContainerDb::new(self.store()?.metadata().db().clone()))
    }

    /// The volumes.
    pub fn volumes(&self) -> Result<Volumes> {
        Ok(Volumes::new(
            self.paths.volumes_dir(),
            self.store()?.metadata().db().clone(),
        ))
    }

    /// The container a user's word designates.
    pub fn lookup(&self, needle: &str) -> Result<Container> {
        self.db()?.resolve(needle)
    }

    /// Every container.
    pub fn containers(&self) -> Result<Vec<Container>> {
        self.db()?.list()
    }

    /// Whether containers get cgroups (not rootless on a host without delegation).
    pub fn cgroups_usable(&self) -> bool {
        !self.rootless
    }

    /// The runtime `name`.
    pub fn runtime(&self, name: &str) -> Result<Box<dyn OciRuntime>> {
        let cgroups = self.cgroups_usable();
        let rootless = self.rootless;
        Ok(runtime::select(name, &self.config, |n| RuntimeContext {
            state_root: if n == runtime::BUILTIN {
                self.paths.builtin_runtime_root()
            } else {
                self.paths.external_runtime_root(n)
            },
            rootless,
            cgroups,
            runroot: self.paths.runroot.clone(),
        })?)
    }

    /// The mounts that assemble a container's root file system (none for a plain
    /// directory).
    pub fn rootfs_mounts(&self, c: &Container) -> Result<Vec<liana_images::snapshot::Mount>> {
        Ok(match &c.rootfs {
            crate::record::RootfsSource::Snapshot { key, .. } => {
                self.store()?.snapshotter().mounts(key)?
            }
            crate::record::RootfsSource::Overlay { lower, .. } => {
                crate::layers::mount_of(lower, &self.paths.container_dir(&c.id))
            }
            crate::record::RootfsSource::Dir { .. } => Vec::new(),
        })
    }

    /// The monitor binary.
    pub fn monitor_path(&self) -> Result<PathBuf> {
        let candidates = [
            self.monitor.clone(),
            std::env::var_os("LIANA_MONITOR").map(PathBuf::from),
            self.config.engine.monitor_path.clone(),
            sibling(&self.exe, "liana-monitor"),
            Some(PathBuf::from("/usr/libexec/liana/liana-monitor")),
        ];
        candidates
            .into_iter()
            .flatten()
            .find(|p| p.is_file())
            .ok_or_else(|| Error::Monitor {
                path: "liana-monitor".into(),
                op: "find (set engine.monitor_path, or install it next to liana)",
                source: std::io::ErrorKind::NotFound.into(),
            })
    }

    /// The init binary of `--init`.
    pub fn init_path(&self) -> Option<PathBuf> {
        [
            std::env::var_os("LIANA_INIT").map(PathBuf::from),
            self.config.engine.init_path.clone(),
            sibling(&self.exe, "liana-init"),
            Some(PathBuf::from("/usr/libexec/liana/liana-init")),
        ]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
    }

    /// `liana [global flags] container cleanup ID`: what the monitor runs at exit.
    pub fn exit_command(&self, id: &str) -> Vec<OsString> {
        let mut v = vec![self.exe.clone().into_os_string()];
        v.extend(self.global_args.iter().cloned());
        v.extend(["container", "cleanup", id].map(OsString::from));
        v
    }
}

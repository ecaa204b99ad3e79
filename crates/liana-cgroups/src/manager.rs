//! The cgroup [`Manager`]: one container's cgroups in every hierarchy.
//!
//! Life cycle on `create`/`run` (the hot path):
//! 1. [`Manager::new`] resolves `linux.cgroupsPath` in every hierarchy of a
//!    [`CgroupSetup`] (no I/O). Save [`Manager::state`] in the container state
//!    *before* creating anything, so a crash at any later point can be repaired
//!    by `delete` ([`Manager::from_state`] + [`Manager::destroy`]).
//! 2. [`Manager::create`] makes the directories (v1: every hierarchy, cpuset
//!    populated from its parent; v2: controllers enabled along the way).
//! 3. [`Manager::set`] writes `linux.resources` (validated first, so a bad
//!    value fails before the container starts).
//! 4. [`Manager::apply`] moves a process in; called with pid 0 in the forked
//!    child it moves the child itself, allocating nothing.
//!
//! Later commands (`update`, `pause`, `events`, `ps`, `kill --all`, `delete`)
//! rebuild the manager with [`Manager::from_state`], never re-deriving paths.

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bpf::{DeviceFilterLoader, KernelLoader};
use crate::error::{Error, Result};
use crate::hierarchy::{host_dir, join_below, CgroupSetup, Mode};
use crate::path::{parent_cgroup, parse_cgroups_path, CgroupsPath, Driver};
use crate::{files, systemd};

/// Version of [`CgroupState`]'s on-disk format.
pub const STATE_VERSION: u32 = 1;

/// What identifies the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerConfig {
    /// The container id (default cgroup name, `events` id).
    pub id: String,
    /// `linux.cgroupsPath`, `None` or empty for the default.
    pub cgroups_path: Option<String>,
    /// `--cgroup-manager`.
    pub driver: Driver,
    /// Rootless: use only delegated cgroups, skip the rest with a warning.
    pub rootless: bool,
    /// Marker whose existence means systemd runs (`/run/systemd/system`).
    pub systemd_marker: PathBuf,
}

impl ManagerConfig {
    /// A cgroupfs, rootful configuration with the default marker.
    pub fn new(id: &str, cgroups_path: Option<&str>) -> Self {
        ManagerConfig {
            id: id.to_owned(),
            cgroups_path: cgroups_path.map(str::to_owned),
            driver: Driver::Cgroupfs,
            rootless: false,
            systemd_marker: PathBuf::from(systemd::DEFAULT_MARKER),
        }
    }
}

/// The container's cgroup in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Cgroup {
    /// The hierarchy's controllers (`["cpu","cpuacct"]`, `["name=systemd"]`).
    pub controllers: Vec<String>,
    /// The hierarchy's mountpoint on the host.
    pub mountpoint: PathBuf,
    /// The container's cgroup path inside the hierarchy, e.g. `/a/ctr`.
    pub path: String,
    /// The host directory (`mountpoint` + `path`).
    pub dir: PathBuf,
}

/// The container's cgroup in the unified hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedCgroup {
    /// The unified mountpoint on the host.
    pub mountpoint: PathBuf,
    /// The container's cgroup path inside the hierarchy.
    pub path: String,
    /// The host directory.
    pub dir: PathBuf,
    /// Controllers available at the hierarchy root.
    pub controllers: Vec<String>,
}

/// The serialisable form of a [`Manager`], for the container state file.
/// Format version [`STATE_VERSION`]; unknown fields are ignored on load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupState {
    /// Format version.
    pub version: u32,
    /// The container id.
    pub id: String,
    /// The driver.
    pub driver: Driver,
    /// Rootless mode.
    pub rootless: bool,
    /// Whether `linux.cgroupsPath` was given (rootless errors are then fatal).
    pub explicit_path: bool,
    /// v1 cgroups.
    pub v1: Vec<V1Cgroup>,
    /// Unified cgroup.
    pub unified: Option<UnifiedCgroup>,
    /// Hierarchies skipped (rootless without permission).
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// Where a resource of a controller is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// What the container needs to mount cgroups inside itself (`/sys/fs/cgroup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMount {
    /// Directory under `/sys/fs/cgroup` in the container: the host mountpoint's
    /// base name (`cpu,cpuacct`, `systemd`, `unified`), empty for pure v2.
    pub name: String,
    /// `true` for the unified hierarchy (fstype `cgroup2`).
    pub v2: bool,
    /// Controllers (mount options for a v1 `cgroup` mount; `name=systemd`...).
    pub controllers: Vec<String>,
    /// The hierarchy's mountpoint on the host.
    pub host_mountpoint: PathBuf,
    /// The container's cgroup directory on the host (bind-mount source).
    pub host_dir: PathBuf,
    /// The container's cgroup path inside the hierarchy.
    pub cgroup_path: String,
    /// Symlinks to create beside it: for `cpu,cpuacct`, `cpu` and `cpuacct`.
    pub symlinks: Vec<String>,
}

/// One container's cgroups. See the module documentation for the life cycle.
pub struct Manager {
    pub(crate) id: String,
    pub(crate) driver: Driver,
    pub(crate) rootless: bool,
    pub(crate) explicit_path: bool,
    pub(crate) v1: Vec<V1Cgroup>,
    pub(crate) unified: Option<UnifiedCgroup>,
    pub(crate) skipped: Vec<String>,
    /// `cgroup.procs` of every cgroup, ready for [`Manager::apply`].
    procs: Vec<CString>,
    /// `tasks` of every v1 cgroup, ready for [`Manager::apply_self`].
    tasks: Vec<CString>,
    pub(crate) loader: Arc<dyn DeviceFilterLoader>,
}

impl Clone for Manager {
    fn clone(&self) -> Self {
        Manager {
            id: self.id.clone(),
            driver: self.driver,
            rootless: self.rootless,
            explicit_path: self.explicit_path,
            v1: self.v1.clone(),
            unified: self.unified.clone(),
            skipped: self.skipped.clone(),
            procs: self.procs.clone(),
            tasks: self.tasks.clone(),
            loader: Arc::clone(&self.loader),
        }
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("id", &self.id)
            .field("driver", &self.driver)
            .field("rootless", &self.rootless)
            .field("v1", &self.v1)
            .field("unified", &self.unified)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Manager {
    /// Resolves the container's cgroup in every hierarchy of `setup`. Does no
    /// I/O except, for the systemd driver, checking that systemd runs.
    pub fn new(setup: &CgroupSetup, config: &ManagerConfig) -> Result<Manager> {
        if config.driver == Driver::Disabled {
            return Ok(Manager::disabled(&config.id));
        }
        let path = parse_cgroups_path(
            config.cgroups_path.as_deref(),
            &config.id,
            config.driver,
            config.rootless,
        )?;
        let explicit_path = config
            .cgroups_path
            .as_deref()
            .is_some_and(|p| !p.is_empty());
        let mut m = Manager {
            id: config.id.clone(),
            driver: config.driver,
            rootless: config.rootless,
            explicit_path,
            v1: Vec::new(),
            unified: None,
            skipped: Vec::new(),
            procs: Vec::new(),
            tasks: Vec::new(),
            loader: Arc::new(KernelLoader),
        };
        match (config.driver, path) {
            (Driver::Systemd, CgroupsPath::Systemd(unit)) => {
                systemd::check_running(&config.systemd_marker)?;
                return Err(Error::SystemdUnsupported {
                    unit: unit.unit_name(),
                });
            }
            (_, CgroupsPath::Systemd(_)) => unreachable!("systemd form only with systemd driver"),
            (_, CgroupsPath::Absolute(abs)) => {
                for h in &setup.v1 {
                    m.v1.push(V1Cgroup {
                        controllers: h.controllers.clone(),
                        mountpoint: h.mountpoint.clone(),
                        path: abs.clone(),
                        dir: join_below(&h.mountpoint, &abs),
                    });
                }
                if let Some(u) = &setup.unified {
                    m.unified = Some(UnifiedCgroup {
                        mountpoint: u.mountpoint.clone(),
                        path: abs.clone(),
                        dir: join_below(&u.mountpoint, &abs),
                        controllers: u.controllers.clone(),
                    });
                }
            }
            (_, CgroupsPath::Relative(rel)) => {
                for h in &setup.v1 {
                    let own = host_dir(&h.mountpoint, &h.root, &h.own_path);
                    m.v1.push(V1Cgroup {
                        controllers: h.controllers.clone(),
                        mountpoint: h.mountpoint.clone(),
                        path: join_cgroup(&h.own_path, &rel),
                        dir: own.join(&rel),
                    });
                }
                if let Some(u) = &setup.unified {
                    let parent = parent_cgroup(&u.own_path);
                    let base = host_dir(&u.mountpoint, &u.root, parent);
                    m.unified = Some(UnifiedCgroup {
                        mountpoint: u.mountpoint.clone(),
                        path: join_cgroup(parent, &rel),
                        dir: base.join(&rel),
                        controllers: u.controllers.clone(),
                    });
                }
            }
        }
        m.refresh_procs();
        Ok(m)
    }

    /// A manager that does nothing (`--cgroup-manager disabled`).
    pub fn disabled(id: &str) -> Manager {
        Manager {
            id: id.to_owned(),
            driver: Driver::Disabled,
            rootless: false,
            explicit_path: false,
            v1: Vec::new(),
            unified: None,
            skipped: Vec::new(),
            procs: Vec::new(),
            tasks: Vec::new(),
            loader: Arc::new(KernelLoader),
        }
    }

    /// Rebuilds a manager from a saved [`CgroupState`].
    pub fn from_state(state: CgroupState) -> Manager {
        let mut m = Manager {
            id: state.id,
            driver: state.driver,
            rootless: state.rootless,
            explicit_path: state.explicit_path,
            v1: state.v1,
            unified: state.unified,
            skipped: state.skipped,
            procs: Vec::new(),
            tasks: Vec::new(),
            loader: Arc::new(KernelLoader),
        };
        m.refresh_procs();
        m
    }

    /// Replaces the eBPF device filter loader (cgroup v2 `devices`).
    pub fn with_device_loader(mut self, loader: Arc<dyn DeviceFilterLoader>) -> Manager {
        self.loader = loader;
        self
    }

    /// The serialisable state to store and give back to [`Manager::from_state`].
    pub fn state(&self) -> CgroupState {
        CgroupState {
            version: STATE_VERSION,
            id: self.id.clone(),
            driver: self.driver,
            rootless: self.rootless,
            explicit_path: self.explicit_path,
            v1: self.v1.clone(),
            unified: self.unified.clone(),
            skipped: self.skipped.clone(),
        }
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The driver.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// v1, v2 or hybrid, from the hierarchies in use; `None` without cgroups.
    pub fn mode(&self) -> Option<Mode> {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, false) => None,
            (true, true) => Some(Mode::V2),
            (false, true) => Some(Mode::Hybrid),
            (false, false) => Some(Mode::V1),
        }
    }

    /// Hierarchies skipped in rootless mode (no permission), by name.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The container's cgroup directories, keyed like runc's `cgroup_paths`:
    /// each v1 controller (`memory`, `name=systemd`...) and `""` for unified.
    pub fn paths(&self) -> std::collections::BTreeMap<String, PathBuf> {
        let mut out = std::collections::BTreeMap::new();
        for c in &self.v1 {
            for ctrl in &c.controllers {
                out.insert(ctrl.clone(), c.dir.clone());
            }
        }
        if let Some(u) = &self.unified {
            out.insert(String::new(), u.dir.clone());
        }
        out
    }

    /// What to mount inside the container for `/sys/fs/cgroup`.
    pub fn mounts(&self) -> Vec<CgroupMount> {
        let mut out = Vec::new();
        for c in &self.v1 {
            let name = base_name(&c.mountpoint);
            let symlinks = if name.contains(',') {
                name.split(',').map(str::to_owned).collect()
            } else {
                Vec::new()
            };
            out.push(CgroupMount {
                name,
                v2: false,
                controllers: c.controllers.clone(),
                host_mountpoint: c.mountpoint.clone(),
                host_dir: c.dir.clone(),
                cgroup_path: c.path.clone(),
                symlinks,
            });
        }
        if let Some(u) = &self.unified {
            out.push(CgroupMount {
                name: if self.v1.is_empty() {
                    String::new()
                } else {
                    base_name(&u.mountpoint)
                },
                v2: true,
                controllers: u.controllers.clone(),
                host_mountpoint: u.mountpoint.clone(),
                host_dir: u.dir.clone(),
                cgroup_path: u.path.clone(),
                symlinks: Vec::new(),
            });
        }
        out
    }

    fn refresh_procs(&mut self) {
        let dirs = self
            .v1
            .iter()
            .map(|c| &c.dir)
            .chain(self.unified.iter().map(|u| &u.dir));
        self.procs = dirs
            .filter_map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()).ok())
            .collect();
        self.tasks = self
            .v1
            .iter()
            .filter_map(|c| CString::new(c.dir.join("tasks").as_os_str().as_bytes()).ok())
            .collect();
    }

    /// The container's cgroup on the unified (v2) hierarchy, when it has one: a child
    /// can be forked straight into it with `clone3(CLONE_INTO_CGROUP)`.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.dir.as_path())
    }

    /// Moves the calling process into the container's cgroups; the caller must be
    /// single-threaded. On v1 it writes its thread to `tasks`: moving one thread does
    /// not take the kernel's global threadgroup lock, whose first writer of a while
    /// waits for an RCU grace period (~20 ms here) where `cgroup.procs` would. On the
    /// unified hierarchy it writes `cgroup.procs`, unless `skip_unified` says the
    /// process was forked there already (CLONE_INTO_CGROUP). Allocates nothing.
    pub fn apply_self(&self, skip_unified: bool) -> Result<()> {
        let files = self.tasks.iter().chain(
            self.procs
                .iter()
                .skip(self.v1.len())
                .filter(|_| !skip_unified),
        );
        for f in files {
            match write_procs(f, b"0") {
                Ok(()) => {}
                Err(e)
                    if self.rootless
                        && !self.explicit_path
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::EACCES | libc::EPERM | libc::EROFS)
                        ) => {}
                Err(source) => {
                    return Err(Error::AddPid {
                        pid: 0,
                        path: PathBuf::from(std::ffi::OsStr::from_bytes(f.as_bytes())),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Where `v1_name` (v1) / `v2_name` (unified) resources go, if anywhere.
    pub(crate) fn target(&self, v1_name: &str, v2_name: &str) -> Option<Target<'_>> {
        if let Some(c) = self
            .v1
            .iter()
            .find(|c| c.controllers.iter().any(|x| x == v1_name))
        {
            return Some(Target::V1(&c.dir));
        }
        let u = self.unified.as_ref()?;
        let pseudo = matches!(v2_name, "devices" | "freezer");
        (pseudo || u.controllers.iter().any(|c| c == v2_name)).then_some(Target::V2(&u.dir))
    }

    /// The directory listing the container's processes (any joined cgroup).
    pub(crate) fn procs_dir(&self) -> Option<&Path> {
        if let Some(u) = &self.unified {
            if self.v1.is_empty() {
                return Some(&u.dir);
            }
        }
        ["freezer", "pids", "devices", "memory", "cpu"]
            .iter()
            .find_map(|n| {
                self.v1
                    .iter()
                    .find(|c| c.controllers.iter().any(|x| x == n))
            })
            .or(self.v1.first())
            .map(|c| c.dir.as_path())
            .or(self.unified.as_ref().map(|u| u.dir.as_path()))
    }

    /// Creates the container's cgroup directories in every hierarchy.
    ///
    /// v1: `mkdir -p` in each hierarchy; in cpuset, every level gets
    /// `cpuset.cpus`/`cpuset.mems` from its parent when empty, or no task
    /// could join. Unified: each level from the mountpoint down to the parent
    /// gets every available controller enabled in `cgroup.subtree_control`.
    /// Rootless: a hierarchy we may not write is skipped with a warning (fatal
    /// when `cgroupsPath` was given). On error, the directories this call
    /// made are removed again.
    pub fn create(&mut self) -> Result<()> {
        if self.driver == Driver::Disabled {
            return Ok(());
        }
        let mut created: Vec<PathBuf> = Vec::new();
        let result = self.create_inner(&mut created);
        if let Err(e) = &result {
            tracing::debug!(error = %e, "cgroup creation failed, removing what was made");
            for dir in created.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
        }
        self.refresh_procs();
        result
    }

    fn create_inner(&mut self, created: &mut Vec<PathBuf>) -> Result<()> {
        let mut keep = Vec::with_capacity(self.v1.len());
        for c in std::mem::take(&mut self.v1) {
            let res = if c.controllers.iter().any(|x| x == "cpuset") {
                crate::v1::cpuset::create(&c.mountpoint, &c.dir, created)
            } else {
                mkdir_all(&c.mountpoint, &c.dir, created)
            };
            match res {
                Ok(()) => keep.push(c),
                Err(e) if self.may_skip(&e) => {
                    let name = c.controllers.join(",");
                    tracing::debug!(hierarchy = %name, error = %e,
                        "rootless: no permission for this cgroup hierarchy, skipping it");
                    self.skipped.push(name);
                }
                Err(e) => {
                    self.v1 = keep;
                    return Err(e);
                }
            }
        }
        self.v1 = keep;
        let had_unified = self.unified.is_some();
        if let Some(u) = self.unified.take() {
            match crate::v2::create(&u, created) {
                Ok(()) => self.unified = Some(u),
                Err(e) if self.may_skip(&e) => {
                    tracing::debug!(error = %e,
                        "rootless: the unified cgroup is not delegated to us, skipping it");
                    self.skipped.push("unified".into());
                }
                Err(e) => {
                    self.unified = Some(u);
                    return Err(e);
                }
            }
        }
        if !self.skipped.is_empty()
            && self.v1.is_empty()
            && (self.unified.is_none() || !had_unified)
        {
            tracing::info!(
                "rootless: no cgroup is delegated to this user; running without cgroups"
            );
        }
        Ok(())
    }

    fn may_skip(&self, e: &Error) -> bool {
        self.rootless
            && !self.explicit_path
            && e.kind() == crate::error::ErrorKind::PermissionDenied
    }

    /// Moves process `pid` into the container's cgroups; `0` is the calling
    /// process. Safe to call in a forked child of a multi-threaded parent: it
    /// allocates nothing on success and only makes `open`/`write`/`close`
    /// syscalls (three per hierarchy).
    pub fn apply(&self, pid: i32) -> Result<()> {
        let mut buf = [0u8; 12];
        let text = format_pid(pid, &mut buf);
        for procs in &self.procs {
            let mut tries = 0;
            loop {
                match write_procs(procs, text) {
                    Ok(()) => break,
                    // A task still in TASK_NEW refuses to move; runc retries.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) && pid != 0 && tries < 5 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(e)
                        if self.rootless
                            && !self.explicit_path
                            && matches!(
                                e.raw_os_error(),
                                Some(libc::EACCES | libc::EPERM | libc::EROFS)
                            ) =>
                    {
                        break
                    }
                    Err(source) => {
                        return Err(Error::AddPid {
                            pid,
                            path: PathBuf::from(std::ffi::OsStr::from_bytes(procs.as_bytes())),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes the container's cgroup in every hierarchy, sub-cgroups first,
    /// retrying on `EBUSY` briefly. Idempotent: missing directories are fine.
    /// Every hierarchy is tried; the first error is returned. Processes must
    /// be gone ([`Manager::kill_all`] with `SIGKILL`) for this to succeed.
    pub fn destroy(&self) -> Result<()> {
        let mut first = None;
        let dirs = self
            .v1
            .iter()
            .map(|c| &c.dir)
            .chain(self.unified.iter().map(|u| &u.dir));
        for dir in dirs {
            if let Err(e) = files::remove_cgroup_tree(dir) {
                tracing::warn!(error = %e, "cannot remove cgroup");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Whether the container's cgroup exists (in the hierarchy listing pids).
    pub fn exists(&self) -> bool {
        self.procs_dir().is_some_and(Path::exists)
    }
}

fn base_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn join_cgroup(base: &str, rel: &str) -> String {
    if base == "/" || base.is_empty() {
        format!("/{rel}")
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    }
}

/// `mkdir -p dir` below `mountpoint`, recording the directories made.
pub(crate) fn mkdir_all(mountpoint: &Path, dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir != mountpoint => {}
        Err(source) => {
            return Err(Error::CreateDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    if let Some(parent) = dir.parent() {
        if parent.starts_with(mountpoint) && parent != mountpoint {
            mkdir_all(mountpoint, parent, created)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn format_pid(pid: i32, buf: &mut [u8; 12]) -> &[u8] {
    let mut n = i64::from(pid).unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if pid < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

fn write_procs(path: &CString, text: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a file descriptor we just opened; `text` is a valid
    // buffer of `text.len()` bytes.
    let n = unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
    let err = (n < 0).then(io::Error::last_os_error);
    // SAFETY: `fd` is ours and closed exactly once.
    unsafe { libc::close(fd) };
    err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_pids_without_allocating() {
        let mut b = [0u8; 12];
        assert_eq!(format_pid(0, &mut b), b"0");
        assert_eq!(format_pid(1234567, &mut b), b"1234567");
        assert_eq!(format_pid(i32::MAX, &mut b), b"2147483647");
        assert_eq!(format_pid(-5, &mut b), b"-5");
    }

    #[test]
    fn joins_cgroup_paths() {
        assert_eq!(join_cgroup("/", "c"), "/c");
        assert_eq!(join_cgroup("/a/b", "c/d"), "/a/b/c/d");
    }
}

//! Container state on disk, under the state root (`--root`).
//!
//! Layout, version 1:
//!
//! ```text
//! ROOT/                 0700
//!   ID/                 0700, flock()ed while a command works on the container
//!     status            JSON `Saved` (written atomically: temp file + rename)
//!     config.json       the config the container was created with
//!     exec.fifo         present while the container is `created`; `start` opens it
//!   .seccomp-cache/     compiled seccomp programs (liana-seccomp's cache)
//! ```
//!
//! The status a user sees is derived, never stored: `creating` while `status` has no pid,
//! `stopped` once the init process is gone (or is another process reusing its pid: the
//! start time from /proc/PID/stat is kept to tell), `created` while the exec fifo exists,
//! `paused` when the cgroup freezer says so, else `running`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::config::ContainerId;

/// Version of the `status` file format.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the status file.
pub const STATUS_FILE: &str = "status";
/// Name of the saved config.
pub const CONFIG_FILE: &str = "config.json";
/// Name of the exec fifo.
pub const FIFO_FILE: &str = "exec.fifo";
/// Compiled seccomp programs, cached under the state root. Names starting with a dot
/// are never container ids, so `list` and `delete --regex` leave it alone.
pub const SECCOMP_CACHE_DIR: &str = ".seccomp-cache";

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The container already exists.
    #[error("container {id} already exists")]
    Exists {
        /// Container id.
        id: String,
    },
    /// No such container.
    #[error("container {id} does not exist")]
    NotFound {
        /// Container id.
        id: String,
    },
    /// An I/O operation on the state directory failed.
    #[error("{op} {path}")]
    Io {
        /// What failed.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The status file is not readable JSON.
    #[error("corrupt state file {path}")]
    Corrupt {
        /// The status file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The user-visible lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created; the user process waits for `start`.
    Created,
    /// The user process runs.
    Running,
    /// Frozen.
    Paused,
    /// The init process has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What is persisted in `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Container id.
    pub id: String,
    /// Host pid of the init process; 0 while creating.
    pub pid: i32,
    /// Start time of the init process (field 22 of /proc/PID/stat).
    pub pid_start: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 in UTC.
    pub created: String,
    /// Owner (empty, as runc).
    #[serde(default)]
    pub owner: String,
    /// The config's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// What fds 0, 1 and 2 of the init pointed to, as a JSON array in a string (the
    /// shape crun and runc use; containerd and CRIU read it).
    #[serde(default)]
    pub external_descriptors: String,
    /// The cgroup manager's saved form (opaque here).
    #[serde(default)]
    pub cgroup: serde_json::Value,
    /// The container was created by a rootless runtime.
    #[serde(default)]
    pub rootless: bool,
    /// Host pids that are part of the container without being its init (none yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_pids: Vec<i32>,
}

/// An open, locked container directory.
#[derive(Debug)]
pub struct ContainerDir {
    path: PathBuf,
    fd: OwnedFd,
    id: ContainerId,
}

/// The default state root, chosen as runc chooses its own: `$XDG_RUNTIME_DIR/liana` for
/// an unprivileged user, and also for uid 0 inside a user namespace unless `$USER` is
/// `root` (rootless podman runs the runtime so, with the user's `XDG_RUNTIME_DIR`);
/// `/run/liana` for the real root; `/tmp/liana-EUID` when `XDG_RUNTIME_DIR` is unset.
pub fn default_root() -> PathBuf {
    let euid = rustix::process::geteuid();
    let in_userns = euid.is_root() && crate::user_ns::in_non_initial_userns();
    root_for(
        euid.as_raw(),
        in_userns,
        std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
        std::env::var_os("USER").as_deref(),
    )
}

/// [`default_root`]'s decision, from its inputs.
fn root_for(
    euid: u32,
    in_userns: bool,
    xdg_runtime_dir: Option<&std::ffi::OsStr>,
    user: Option<&std::ffi::OsStr>,
) -> PathBuf {
    let xdg = xdg_runtime_dir.filter(|d| !d.is_empty());
    let honour_xdg = euid != 0 || (in_userns && user != Some(std::ffi::OsStr::new("root")));
    match xdg {
        Some(d) if honour_xdg => PathBuf::from(d).join("liana"),
        _ if euid == 0 => PathBuf::from("/run/liana"),
        _ => PathBuf::from(format!("/tmp/liana-{euid}")),
    }
}

fn ensure_root(root: &Path) -> Result<(), StateError> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(io_err("create state root", root)(e)),
    }
}

impl ContainerDir {
    /// Creates `ROOT/ID` and locks it. Fails with [`StateError::Exists`] if it exists.
    pub fn create(root: &Path, id: &ContainerId) -> Result<Self, StateError> {
        ensure_root(root)?;
        let path = root.join(id.as_str());
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists { id: id.to_string() })
            }
            Err(e) => return Err(io_err("create state directory", &path)(e)),
        }
        let dir = Self::open_path(path, id.clone())?;
        dir.lock()?;
        Ok(dir)
    }

    /// Opens and locks an existing `ROOT/ID`.
    pub fn open(root: &Path, id: &ContainerId) -> Result<Self, StateError> {
        let path = root.join(id.as_str());
        let dir = match Self::open_path(path, id.clone()) {
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound { id: id.to_string() })
            }
            r => r?,
        };
        dir.lock()?;
        Ok(dir)
    }

    /// Opens an existing `ROOT/ID` without locking (read-only commands).
    pub fn open_unlocked(root: &Path, id: &ContainerId) -> Result<Self, StateError> {
        let path = root.join(id.as_str());
        match Self::open_path(path, id.clone()) {
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(StateError::NotFound { id: id.to_string() })
            }
            r => r,
        }
    }

    fn open_path(path: PathBuf, id: ContainerId) -> Result<Self, StateError> {
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open state directory", &path)(e.into()))?;
        Ok(Self { path, fd, id })
    }

    fn lock(&self) -> Result<(), StateError> {
        rustix::fs::flock(&self.fd, FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock state directory", &self.path)(e.into()))
    }

    /// The container id.
    pub fn id(&self) -> &ContainerId {
        &self.id
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory fd.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Path of a file in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Atomically writes `name`.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        let dst = self.path.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("write", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, &dst).map_err(io_err("rename", &dst))
    }

    /// Saves the status file.
    pub fn save(&self, saved: &Saved) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(saved).expect("status serializes");
        self.write_atomic(STATUS_FILE, &bytes)
    }

    /// Loads the status file; `None` when it was never written (a create that died
    /// before its first save).
    pub fn load(&self) -> Result<Option<Saved>, StateError> {
        let path = self.file(STATUS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Corrupt { path, source })
    }

    /// True when the exec fifo exists (the container has not been started).
    pub fn fifo_exists(&self) -> bool {
        rustix::fs::statat(&self.fd, FIFO_FILE, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Removes the whole directory.
    pub fn remove(self) -> Result<(), StateError> {
        std::fs::remove_dir_all(&self.path).or_else(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(io_err("remove state directory", &self.path)(e))
            }
        })
    }
}

/// Lists container ids under `root` (an absent root has none).
pub fn list_ids(root: &Path) -> Result<Vec<String>, StateError> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read state root", root)(e)),
    };
    let mut ids: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Process facts from /proc/PID/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// State letter (R, S, D, Z, T, ...).
    pub state: char,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
}

/// Reads /proc/PID/stat; `None` when the process does not exist.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// True when `pid` is still the process that was saved (alive, same start time, not a
/// zombie).
pub fn is_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match proc_stat(pid) {
        Some(s) => s.start_time == start && s.state != 'Z' && s.state != 'X',
        None => false,
    }
}

/// What fds 0..=2 of `pid` point to, as a JSON array string.
pub fn external_descriptors(pid: i32) -> String {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    serde_json::to_string(&fds).expect("strings serialize")
}

/// Now, as RFC 3339 with nanoseconds in UTC (the format runc prints).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// Writes a pid file atomically (temp file in the same directory, then rename), as runc.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), StateError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(io_err("write pid file", &tmp))?;
    f.write_all(pid.to_string().as_bytes())
        .map_err(io_err("write pid file", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err("write pid file", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_follows_runc() {
        use std::ffi::OsStr;
        let xdg = Some(OsStr::new("/run/user/1000"));
        let user = Some(OsStr::new("alice"));
        let root = Some(OsStr::new("root"));
        // The real root ignores XDG_RUNTIME_DIR.
        assert_eq!(root_for(0, false, xdg, user), PathBuf::from("/run/liana"));
        // Rootless podman: uid 0 in the user's namespace, USER is the user.
        assert_eq!(
            root_for(0, true, xdg, user),
            PathBuf::from("/run/user/1000/liana")
        );
        assert_eq!(
            root_for(0, true, xdg, None),
            PathBuf::from("/run/user/1000/liana")
        );
        assert_eq!(root_for(0, true, xdg, root), PathBuf::from("/run/liana"));
        assert_eq!(root_for(0, true, None, user), PathBuf::from("/run/liana"));
        assert_eq!(
            root_for(1000, false, xdg, user),
            PathBuf::from("/run/user/1000/liana")
        );
        assert_eq!(
            root_for(1000, false, Some(OsStr::new("")), user),
            PathBuf::from("/tmp/liana-1000")
        );
        assert_eq!(
            root_for(1000, false, None, user),
            PathBuf::from("/tmp/liana-1000")
        );
    }

    fn saved(id: &str) -> Saved {
        Saved {
            version: FORMAT_VERSION,
            id: id.into(),
            pid: 0,
            pid_start: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            owner: String::new(),
            annotations: HashMap::new(),
            external_descriptors: "[]".into(),
            cgroup: serde_json::Value::Null,
            rootless: false,
            extra_pids: vec![],
        }
    }

    #[test]
    fn create_save_load_remove() {
        let root = tempfile::tempdir().unwrap();
        let id = ContainerId::new("c1").unwrap();
        let dir = ContainerDir::create(root.path(), &id).unwrap();
        assert!(dir.load().unwrap().is_none());
        dir.save(&saved("c1")).unwrap();
        assert_eq!(dir.load().unwrap().unwrap().id, "c1");
        assert_eq!(list_ids(root.path()).unwrap(), vec!["c1"]);
        dir.remove().unwrap();
        assert!(list_ids(root.path()).unwrap().is_empty());
    }

    #[test]
    fn create_twice_fails() {
        let root = tempfile::tempdir().unwrap();
        let id = ContainerId::new("c1").unwrap();
        let _d = ContainerDir::create(root.path(), &id).unwrap();
        let e = ContainerDir::create(root.path(), &id).unwrap_err();
        assert!(matches!(e, StateError::Exists { .. }), "{e:?}");
    }

    #[test]
    fn open_missing_is_not_found() {
        let root = tempfile::tempdir().unwrap();
        let id = ContainerId::new("nope").unwrap();
        let e = ContainerDir::open(root.path(), &id).unwrap_err();
        assert!(matches!(e, StateError::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn corrupt_status_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let id = ContainerId::new("c").unwrap();
        let dir = ContainerDir::create(root.path(), &id).unwrap();
        dir.write_atomic(STATUS_FILE, b"{garbage").unwrap();
        assert!(matches!(dir.load(), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn own_process_is_alive_and_a_bogus_start_is_not() {
        let me = std::process::id() as i32;
        let st = proc_stat(me).unwrap();
        assert!(is_alive(me, st.start_time));
        assert!(!is_alive(me, st.start_time + 1));
        assert!(!is_alive(0, 0));
    }

    #[test]
    fn pid_file_is_written() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pid");
        write_pid_file(&p, 42).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "42");
    }
}

//! Container records: what the engine remembers about a container.
//!
//! # Format, version 1
//!
//! Stored as JSON in the `containers` table of the metadata database (see
//! [`crate::db`]): [`Container`], with `version` = [`RECORD_VERSION`]. The generated
//! OCI spec itself is in the container's bundle (`ROOT/containers/ID/config.json`).
//!
//! Live state (is it running, how did it exit) is reconciled with the monitor's files
//! in RUNROOT on every read ([`Container::observe`]): a record that says `running`
//! whose monitor is gone and whose exit file exists is reported as exited with that
//! code, even before `container cleanup` has run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::paths::Paths;

/// Version of the record format.
pub const RECORD_VERSION: u32 = 1;

/// Lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or reset).
    Created,
    /// Its init runs.
    Running,
    /// It ran and exited.
    Exited,
    /// Being removed.
    Removing,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Removing => "removing",
        })
    }
}

/// Where the root file system comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RootfsSource {
    /// An active snapshot on top of the image's.
    Snapshot {
        /// Snapshot key.
        key: String,
        /// The snapshotter's name.
        snapshotter: String,
        /// The mounts the snapshotter returned.
        mounts: Vec<liana_images::snapshot::Mount>,
    },
    /// The container's own overlay layer over the image's layers (see
    /// [`crate::layers`]).
    Overlay {
        /// The image's top snapshot (leased by the container).
        image_snapshot: String,
        /// Its lower directories, top first.
        lower: Vec<PathBuf>,
    },
    /// A plain directory (`--rootfs`).
    Dir {
        /// The directory.
        path: PathBuf,
    },
}

/// A mount as `inspect` shows it and `cp` follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountInfo {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Volume name, for volumes.
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Host path (empty for tmpfs).
    #[serde(rename = "Source")]
    pub source: PathBuf,
    /// Path in the container.
    #[serde(rename = "Destination")]
    pub destination: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// Settings fixed at create time that commands after it need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Runtime name (`liana` for the built-in one).
    pub runtime: String,
    /// A terminal is allocated.
    pub tty: bool,
    /// stdin is kept open.
    pub interactive: bool,
    /// Removed after it exits.
    pub rm: bool,
    /// Log driver.
    pub log_driver: String,
    /// Signal `stop` sends first.
    pub stop_signal: i32,
    /// Seconds `stop` waits before SIGKILL.
    pub stop_timeout: u64,
    /// Hostname.
    pub hostname: String,
    /// Environment of the process.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// User as given (or from the image).
    pub user: String,
    /// Entrypoint part of `command`.
    pub entrypoint: Vec<String>,
    /// Mounts the user or image asked for.
    pub mounts: Vec<MountInfo>,
    /// Anonymous volumes created for this container (removed with it on --rm or -v).
    pub anonymous_volumes: Vec<String>,
    /// Created rootless.
    pub rootless: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `--network`, `--pid`, `--ipc`, `--uts` values, as given.
    pub namespaces: BTreeMap<String, String>,
    /// Resource limits as given (flag → value), for inspect.
    pub resources: BTreeMap<String, String>,
    /// `--init`.
    pub init: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// Network settings.
    #[serde(default)]
    pub net: crate::network::NetSettings,
}

/// Live state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Status as last written.
    pub status: Option<Status>,
    /// Host pid of the init (0 when not running).
    pub pid: i32,
    /// Its start time (clock ticks since boot), against pid reuse.
    pub pid_start: u64,
    /// Pid of the monitor (the foreground `liana` or `liana-monitor`).
    pub monitor_pid: i32,
    /// Its start time.
    pub monitor_start: u64,
    /// Last start.
    pub started_at: Option<String>,
    /// Last exit.
    pub finished_at: Option<String>,
    /// Last exit code.
    pub exit_code: Option<i32>,
    /// Times started.
    pub start_count: u32,
    /// The runtime's delete failed at the last exit: its state (and cgroup) are still
    /// there, and `rm` or the next start deletes them first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub runtime_leftover: bool,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Record format version.
    pub version: u32,
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// The image as given (or the `--rootfs` directory).
    pub image: String,
    /// Image ID (config digest), if from an image.
    pub image_id: Option<String>,
    /// Full image reference, if from an image.
    pub image_ref: Option<String>,
    /// Root file system.
    pub rootfs: RootfsSource,
    /// The process's arguments.
    pub command: Vec<String>,
    /// Settings.
    pub settings: Settings,
    /// Live state.
    pub state: State,
}

/// The exit file, as read back.
#[derive(Debug, Clone, Deserialize)]
pub struct ExitFile {
    /// Exit code.
    #[serde(rename = "exitCode")]
    pub exit_code: i32,
    /// When.
    #[serde(rename = "exitedAt")]
    pub exited_at: String,
}

/// Reads an exit file (None when absent or unreadable).
pub fn read_exit_file(path: &std::path::Path) -> Option<ExitFile> {
    let b = std::fs::read(path).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Whether a process with this pid and start time still exists (and is not a zombie).
pub fn process_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match liana_container::state::proc_stat(pid) {
        Some(s) => (start == 0 || s.start_time == start) && s.state != 'Z',
        None => false,
    }
}

impl Container {
    /// Status and exit code as they really are now (see the module docs).
    pub fn observe(&self, paths: &Paths) -> (Status, Option<i32>) {
        let st = self.state.status.unwrap_or(Status::Created);
        match st {
            Status::Running => {
                if process_alive(self.state.monitor_pid, self.state.monitor_start) {
                    return (Status::Running, None);
                }
                if let Some(e) = read_exit_file(&paths.exit_file(&self.id)) {
                    return (Status::Exited, Some(e.exit_code));
                }
                if process_alive(self.state.pid, self.state.pid_start) {
                    // Monitor gone (killed), container alive.
                    return (Status::Running, None);
                }
                (Status::Exited, self.state.exit_code)
            }
            other => (other, self.state.exit_code),
        }
    }
}

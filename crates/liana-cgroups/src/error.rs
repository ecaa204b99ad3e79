//! The error of every [`Manager`](crate::Manager) operation.
//!
//! One variant per failed operation, each carrying the path (and, for resource
//! writes, the runtime-spec key such as `memory.limit`) so that a user reading
//! the message knows which part of `config.json` to fix. [`Error::kind`] maps a
//! variant to a coarse [`ErrorKind`] for exit codes; callers never match on
//! message strings.

use std::io;
use std::path::PathBuf;

use crate::bpf::BpfError;
use crate::devices::DeviceRuleError;
use crate::hierarchy::DetectError;
use crate::path::PathError;

/// Coarse classification of an [`Error`], for exit codes and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration asks for something invalid (bad value, bad path).
    InvalidArgument,
    /// The configuration asks for something this host cannot do (controller
    /// missing, cgroup v1 given `unified` keys, systemd not running...).
    Unsupported,
    /// The operation was refused for lack of privilege.
    PermissionDenied,
    /// A cgroup, file or process was not found.
    NotFound,
    /// Any other failure of the kernel interface.
    Io,
}

/// Every failure of the cgroup manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading `/proc/self/mountinfo` or `/proc/self/cgroup` failed.
    #[error("cannot detect the cgroup hierarchies")]
    Detect(#[from] DetectError),

    /// `linux.cgroupsPath` is invalid for the chosen driver.
    #[error("invalid linux.cgroupsPath")]
    Path(#[from] PathError),

    /// A device rule in `linux.resources.devices` is invalid.
    #[error("invalid linux.resources.devices")]
    Devices(#[from] DeviceRuleError),

    /// `mkdir` of a cgroup directory failed.
    #[error("cannot create cgroup directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// Writing a pid into `cgroup.procs` failed.
    #[error("cannot move pid {pid} into cgroup {}", path.display())]
    AddPid {
        /// The pid written (0 means the calling process).
        pid: i32,
        /// The `cgroup.procs` file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// Writing one resource value failed; `key` names the runtime-spec field.
    #[error("cannot set {key} to {value:?} (writing {})", path.display())]
    SetResource {
        /// Runtime-spec key, e.g. `memory.limit` or `unified["io.max"]`.
        key: String,
        /// The value written to the file.
        value: String,
        /// The cgroup file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// A resource value is out of range or contradicts another one.
    #[error("invalid {key}: {reason}")]
    InvalidResource {
        /// Runtime-spec key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A resource is requested whose controller this host does not offer.
    #[error("cannot set {key}: {reason}")]
    Unsupported {
        /// Runtime-spec key.
        key: String,
        /// Why (controller not mounted, not on this cgroup version...).
        reason: String,
    },

    /// A new memory limit is below the cgroup's current usage.
    #[error("cannot set {key} to {limit}: below the current usage of {usage} bytes in {}", path.display())]
    MemoryBelowUsage {
        /// Runtime-spec key (`memory.limit`).
        key: String,
        /// The requested limit.
        limit: i64,
        /// Current usage in bytes.
        usage: u64,
        /// The cgroup directory.
        path: PathBuf,
    },

    /// Reading a cgroup file failed.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// Writing a control file (freeze, kill, event_control...) failed.
    #[error("cannot write {value:?} to {}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// A cgroup file had unexpected content.
    #[error("unexpected content in {}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was unexpected.
        reason: String,
    },

    /// Removing a cgroup directory failed (after retries on `EBUSY`).
    #[error("cannot remove cgroup directory {}", path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// The freezer did not reach `FROZEN` in time; the cgroup was thawed again.
    #[error("timed out freezing cgroup {}", path.display())]
    FreezeTimeout {
        /// The cgroup directory.
        path: PathBuf,
    },

    /// Neither a v1 freezer hierarchy nor `cgroup.freeze` is available.
    #[error("no freezer is available for this container's cgroup")]
    NoFreezer,

    /// The operation needs a cgroup but the manager has none (driver
    /// `disabled`, or a rootless container whose cgroups were skipped).
    #[error("the container has no cgroup (cgroups are disabled or were skipped)")]
    NoCgroup,

    /// `kill(2)` of a process of the cgroup failed.
    #[error("cannot signal pid {pid}")]
    Signal {
        /// The process.
        pid: i32,
        /// The cause.
        #[source]
        source: nix::Error,
    },

    /// Loading or attaching the cgroup v2 eBPF device filter failed.
    #[error("cannot install the eBPF device filter on {}", path.display())]
    DeviceFilter {
        /// The cgroup directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: BpfError,
    },

    /// Setting up an OOM notification (eventfd, inotify, poll) failed.
    #[error("cannot watch for OOM events in {}", path.display())]
    OomWatch {
        /// The cgroup directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// The systemd driver was asked for but systemd is not PID 1 here.
    #[error(
        "the systemd cgroup driver was requested (--systemd-cgroup / --cgroup-manager systemd) \
         but systemd is not running ({} does not exist); use --cgroup-manager cgroupfs",
        marker.display()
    )]
    SystemdNotRunning {
        /// The marker checked, normally `/run/systemd/system`.
        marker: PathBuf,
    },

    /// The systemd driver runs but liana has no D-Bus client for it yet.
    #[error(
        "the systemd cgroup driver (--systemd-cgroup / --cgroup-manager systemd) is not \
         implemented by liana: it cannot create the transient unit {unit}; \
         use --cgroup-manager cgroupfs"
    )]
    SystemdUnsupported {
        /// The unit that would have been created, e.g. `liana-abc.scope`.
        unit: String,
    },
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Path(_) | Error::Devices(_) | Error::InvalidResource { .. } => {
                ErrorKind::InvalidArgument
            }
            Error::MemoryBelowUsage { .. } => ErrorKind::InvalidArgument,
            Error::Unsupported { .. }
            | Error::NoFreezer
            | Error::NoCgroup
            | Error::SystemdNotRunning { .. }
            | Error::SystemdUnsupported { .. } => ErrorKind::Unsupported,
            Error::Detect(_) | Error::Parse { .. } | Error::FreezeTimeout { .. } => ErrorKind::Io,
            Error::Signal { source, .. } => match source {
                nix::Error::ESRCH => ErrorKind::NotFound,
                nix::Error::EPERM => ErrorKind::PermissionDenied,
                _ => ErrorKind::Io,
            },
            Error::DeviceFilter { source, .. } => io_kind(source.io_error()),
            Error::CreateDir { source, .. }
            | Error::AddPid { source, .. }
            | Error::SetResource { source, .. }
            | Error::ReadFile { source, .. }
            | Error::WriteFile { source, .. }
            | Error::Remove { source, .. }
            | Error::OomWatch { source, .. } => io_kind(Some(source)),
        }
    }
}

fn io_kind(err: Option<&io::Error>) -> ErrorKind {
    match err.map(io::Error::kind) {
        Some(io::ErrorKind::PermissionDenied) | Some(io::ErrorKind::ReadOnlyFilesystem) => {
            ErrorKind::PermissionDenied
        }
        Some(io::ErrorKind::NotFound) => ErrorKind::NotFound,
        _ => ErrorKind::Io,
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The engine's error type and the kinds commands map to exit codes.

use std::path::PathBuf;

use crate::record::Status;

/// What kind of failure, for exit codes and callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such container, image, volume or file.
    NotFound,
    /// A name is taken.
    AlreadyExists,
    /// A flag or argument is wrong.
    InvalidArgument,
    /// The container is in the wrong state for the operation.
    InvalidState,
    /// Not possible here (rootless, kernel, runtime).
    Unsupported,
    /// Anything else.
    Internal,
}

/// Engine errors: one variant per failed operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image store failed.
    #[error(transparent)]
    Store(#[from] liana_images::StoreError),
    /// Pulling the image failed.
    #[error(transparent)]
    Pull(#[from] liana_images::pull::PullError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] liana_images::snapshot::SnapshotError),
    /// The image metadata failed.
    #[error(transparent)]
    Metadata(#[from] liana_images::metadata::MetadataError),
    /// The container database failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The config file is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Spec generation failed.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// The OCI runtime failed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// A mount of the container's root file system failed.
    #[error(transparent)]
    Mount(#[from] crate::mount::MountError),
    /// No container has this id, id prefix or name.
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    /// An id prefix matches several containers.
    #[error("{prefix}: ambiguous id prefix ({count} containers match)")]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// How many match.
        count: usize,
    },
    /// The name is taken.
    #[error("the container name {name:?} is already in use by container {id}")]
    NameInUse {
        /// The name.
        name: String,
        /// Who has it.
        id: String,
    },
    /// A name does not follow the rules.
    #[error("invalid container name {0:?}: names match [a-zA-Z0-9][a-zA-Z0-9_.-]*")]
    InvalidName(String),
    /// The operation does not fit the container's state.
    #[error("container {id} is {status}: {what}")]
    InvalidState {
        /// The container.
        id: String,
        /// Its state.
        status: Status,
        /// What could not be done.
        what: &'static str,
    },
    /// A flag value is wrong.
    #[error("{flag}: {reason}")]
    InvalidFlag {
        /// The flag.
        flag: String,
        /// Why.
        reason: String,
    },
    /// Rootless mode cannot do this.
    #[error("rootless: {0}")]
    Rootless(String),
    /// Starting the container (runtime create/start in the monitor's process) failed.
    #[error("start container {id}: {message}")]
    Start {
        /// The container.
        id: String,
        /// What the starting process reported.
        message: String,
    },
    /// The monitor binary cannot be found or run.
    #[error("monitor {path}: {op}")]
    Monitor {
        /// The binary.
        path: PathBuf,
        /// What failed.
        op: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The command runs with other threads, so it cannot fork the container.
    #[error("cannot fork a container from a process with {0} threads")]
    Threads(usize),
    /// The process of an `exec` could not be run (126: not executable, 127: not found).
    #[error("exec in container {id}: {message}")]
    Exec {
        /// The container.
        id: String,
        /// Exit code docker uses for this failure.
        code: i32,
        /// What the runtime said.
        message: String,
    },
    /// A timeout expired.
    #[error("container {id}: timed out after {secs} s waiting for {what}")]
    Timeout {
        /// The container.
        id: String,
        /// Seconds waited.
        secs: u64,
        /// What did not happen.
        what: &'static str,
    },
    /// A file operation failed.
    #[error("{op} {path}")]
    Io {
        /// What failed.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Networking failed.
    #[error("network of container {id}")]
    Net {
        /// The container.
        id: String,
        /// Cause.
        #[source]
        source: liana_network::NetError,
    },
    /// No network has this name.
    #[error("no such network: {0}")]
    NoSuchNetwork(String),
    /// A network with this name exists.
    #[error("network {0:?} already exists")]
    NetworkExists(String),
    /// A network is wrong or in use.
    #[error("network {name}: {reason}")]
    NetworkConflict {
        /// The network.
        name: String,
        /// Why.
        reason: String,
    },
    /// A system call failed.
    #[error("{op}")]
    Sys {
        /// What failed.
        op: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The kind, for exit codes.
    pub fn kind(&self) -> ErrorKind {
        use liana_images::HasKind;
        let images = |k: liana_images::ErrorKind| match k {
            liana_images::ErrorKind::NotFound => ErrorKind::NotFound,
            liana_images::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            liana_images::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
            liana_images::ErrorKind::Unsupported => ErrorKind::Unsupported,
            _ => ErrorKind::Internal,
        };
        match self {
            Error::Store(e) => images(e.kind()),
            Error::Pull(e) => images(e.kind()),
            Error::Snapshot(e) => images(e.kind()),
            Error::Metadata(e) => images(e.kind()),
            Error::NoSuchContainer(_) | Error::NoSuchNetwork(_) => ErrorKind::NotFound,
            Error::NetworkExists(_) => ErrorKind::AlreadyExists,
            Error::NetworkConflict { .. } => ErrorKind::InvalidArgument,
            Error::NameInUse { .. } => ErrorKind::AlreadyExists,
            Error::Ambiguous { .. } | Error::InvalidName(_) | Error::InvalidFlag { .. } => {
                ErrorKind::InvalidArgument
            }
            Error::Config(_) => ErrorKind::InvalidArgument,
            Error::Spec(e) => e.kind(),
            Error::Runtime(e) => e.kind(),
            Error::InvalidState { .. } => ErrorKind::InvalidState,
            Error::Rootless(_) => ErrorKind::Unsupported,
            Error::Io { source, .. } | Error::Sys { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::NotFound
            }
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn sys(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let op = op.into();
        move |source| Error::Sys { op, source }
    }

    pub(crate) fn flag(flag: &str, reason: impl Into<String>) -> Error {
        Error::InvalidFlag {
            flag: flag.into(),
            reason: reason.into(),
        }
    }
}

/// An error with its sources, joined with `: `.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

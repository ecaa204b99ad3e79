//! OCI runtimes: the built-in one, called as a library in this process (no extra exec
//! on the hot path), and external binaries driven by runc's command line (`runc`,
//! `crun`, `runsc`, `youki`, `liana-runtime` or any path), configured in the runtimes
//! table of the config file.
//!
//! Contract shared by both: [`OciRuntime::create`] leaves the container's init waiting
//! for [`OciRuntime::start`], with the given stdio, and the init ends up a child of the
//! calling process (the built-in runtime forks it with CLONE_PARENT; an external
//! runtime exits after create, so the caller must be a child subreaper to inherit it).

mod builtin;
mod external;
pub mod userns;

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

pub use builtin::Builtin;
pub use external::External;

use crate::config::Config;
use crate::error::ErrorKind;

/// The name of the built-in runtime.
pub const BUILTIN: &str = "liana";

/// A runtime operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The built-in runtime failed.
    #[error("{op} container {id}")]
    Builtin {
        /// The operation.
        op: &'static str,
        /// The container.
        id: String,
        /// Cause.
        #[source]
        source: liana_container::Error,
    },
    /// An external runtime could not be started.
    #[error("run {runtime} {op}")]
    Spawn {
        /// The binary.
        runtime: PathBuf,
        /// The operation.
        op: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An external runtime failed.
    #[error("{runtime} {op} failed ({status}){}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Failed {
        /// The binary.
        runtime: PathBuf,
        /// The operation.
        op: &'static str,
        /// Exit status.
        status: String,
        /// What it said.
        message: String,
    },
    /// No runtime by that name.
    #[error("runtime {0:?} not found: not in the runtimes table of the config file nor in PATH")]
    Unknown(String),
    /// The runtime's answer does not parse.
    #[error("{runtime} {op}: unexpected output: {output}")]
    Output {
        /// The binary.
        runtime: PathBuf,
        /// The operation.
        op: &'static str,
        /// The output.
        output: String,
    },
}

impl RuntimeError {
    /// The kind, for exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::Builtin { source, .. } => match source.kind() {
                liana_container::Kind::NotFound => ErrorKind::NotFound,
                liana_container::Kind::AlreadyExists => ErrorKind::AlreadyExists,
                liana_container::Kind::InvalidArgument => ErrorKind::InvalidArgument,
                liana_container::Kind::InvalidState => ErrorKind::InvalidState,
                liana_container::Kind::Internal => ErrorKind::Internal,
            },
            RuntimeError::Unknown(_) => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }
}

/// A process to run in a running container.
#[derive(Debug, Clone, Default)]
pub struct ExecProcess {
    /// Arguments.
    pub args: Vec<String>,
    /// Environment added to the container's (KEY=VALUE).
    pub env: Vec<String>,
    /// Working directory (default: the container's).
    pub cwd: Option<String>,
    /// uid and gid (default: the container's).
    pub user: Option<(u32, u32)>,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Allocate a terminal (the runtime copies it to our stdio).
    pub tty: bool,
    /// Return once started.
    pub detach: bool,
    /// The process's stdin, stdout, stderr (default: ours).
    pub stdio: Option<[RawFd; 3]>,
    /// Every capability.
    pub privileged: bool,
}

/// An OCI runtime.
pub trait OciRuntime: std::fmt::Debug {
    /// Its name (as `--runtime` takes it).
    fn name(&self) -> &str;

    /// Creates the container of `bundle`; its init waits for `start`, with `stdio` as
    /// its stdin, stdout and stderr, or a terminal whose master goes to the unix socket
    /// `console_socket`. Returns the init's host pid.
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [RawFd; 3],
        console_socket: Option<&Path>,
    ) -> Result<i32, RuntimeError>;

    /// Lets the created container's process run.
    fn start(&self, id: &str) -> Result<(), RuntimeError>;

    /// Sends a signal to the init (`all`: to every process of the container).
    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError>;

    /// Removes the runtime's state of the container (`force`: kill it first).
    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;

    /// Runs a process in the running container; returns its exit code (None when
    /// detached).
    fn exec(&self, id: &str, bundle: &Path, p: &ExecProcess) -> Result<Option<i32>, RuntimeError>;

    /// Host pids of the container's processes.
    fn pids(&self, id: &str) -> Result<Vec<i32>, RuntimeError>;
}

/// Settings every runtime gets from the engine.
#[derive(Debug, Clone)]
pub struct RuntimeContext {
    /// The runtime state root directory for this runtime.
    pub state_root: PathBuf,
    /// The engine runs unprivileged.
    pub rootless: bool,
    /// Use cgroups (false: rootless without delegation).
    pub cgroups: bool,
    /// The engine's runtime state root (for the rootless namespace holder).
    pub runroot: PathBuf,
}

/// The runtimes external by default, looked up in PATH.
pub const KNOWN: &[&str] = &["runc", "crun", "runsc", "youki", "liana-runtime"];

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The runtime `name` (a table entry, a known name, or a path).
pub fn select(
    name: &str,
    config: &Config,
    ctx: impl Fn(&str) -> RuntimeContext,
) -> Result<Box<dyn OciRuntime>, RuntimeError> {
    if name == BUILTIN {
        return Ok(Box::new(Builtin::new(ctx(name))));
    }
    let entry = config.runtimes.get(name).cloned();
    let path = match entry.as_ref().and_then(|e| e.path.clone()) {
        Some(p) => p,
        None if name.contains('/') => PathBuf::from(name),
        None if entry.is_some() || KNOWN.contains(&name) => {
            find_in_path(name).ok_or_else(|| RuntimeError::Unknown(name.into()))?
        }
        None => return Err(RuntimeError::Unknown(name.into())),
    };
    if !path.is_file() {
        return Err(RuntimeError::Unknown(name.into()));
    }
    let entry = entry.unwrap_or_default();
    let c = ctx(name);
    let mut args = entry.args.clone();
    if c.rootless {
        if entry.rootless_args.is_empty() && path.file_name().is_some_and(|f| f == "runsc") {
            // No cgroups are delegated to us; runsc would try to make its own.
            args.push("--ignore-cgroups".into());
        }
        args.extend(entry.rootless_args.iter().cloned());
    }
    Ok(Box::new(External::new(name, path, args, c)))
}

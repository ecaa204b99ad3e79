//! OCI spec generation: a chain of small steps, each `fn(&mut Spec, &SpecInput)`, run in
//! order over a podman-like base ([`base`]). Each step owns one concern:
//!
//! | step         | module        | what                                             |
//! |--------------|---------------|--------------------------------------------------|
//! | `base`       | [`base`]      | podman's defaults: mounts, namespaces, masked paths |
//! | `process`    | [`process`]   | entrypoint, cmd, env, workdir, user (via the image's /etc/passwd) |
//! | `mounts`     | [`mounts`]    | volumes, binds, tmpfs, /etc files, read-only, --init |
//! | `namespaces` | [`linux`]     | `--pid/--ipc/--uts`, the network namespace             |
//! | `resources`  | [`linux`]     | memory, cpu, pids, cgroup path                   |
//! | `rlimits`    | [`linux`]     | default and `--ulimit` limits                    |
//! | `security`   | [`security`]  | capabilities, seccomp, no-new-privileges, --privileged |
//! | `rootless`   | [`rootless`]  | user namespace and what an unprivileged user cannot mount |

pub mod base;
pub mod linux;
pub mod mounts;
pub mod process;
pub mod rootless;
pub mod security;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::ErrorKind;
use crate::options::RunOptions;
use crate::rootless::Mappings;

/// A spec step that failed.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A flag value is wrong.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// The user or group does not resolve in the image.
    #[error("user {user:?}: {reason}")]
    User {
        /// As given.
        user: String,
        /// Why.
        reason: String,
    },
    /// The image gives no command and none was given.
    #[error("no command: the image has no Entrypoint or Cmd and none was given")]
    NoCommand,
    /// An `--env-file` cannot be read.
    #[error("read env file {path}")]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The seccomp profile cannot be used.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// `--init` needs an init binary.
    #[error("--init: {0}")]
    Init(String),
    /// The base template does not deserialize (a bug).
    #[error("spec template")]
    Template(#[source] serde_json::Error),
}

impl SpecError {
    /// The kind, for exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SpecError::Template(_) => ErrorKind::Internal,
            SpecError::User { .. } | SpecError::EnvFile { .. } => ErrorKind::NotFound,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// A mount resolved from `-v` or an image VOLUME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedMount {
    /// Host path.
    pub source: PathBuf,
    /// Path in the container.
    pub destination: String,
    /// Read-only.
    pub read_only: bool,
    /// Extra options.
    pub options: Vec<String>,
}

/// Everything the steps read.
#[derive(Debug)]
pub struct SpecInput<'a> {
    /// Container id.
    pub id: &'a str,
    /// Container name.
    pub name: &'a str,
    /// Host path of the root file system.
    pub rootfs: &'a Path,
    /// The image's config, if any.
    pub image: Option<&'a oci_spec::image::Config>,
    /// The flags.
    pub opts: &'a RunOptions,
    /// Directory holding the /etc files (the bundle).
    pub userdata: &'a Path,
    /// Hostname.
    pub hostname: &'a str,
    /// Volumes and binds.
    pub volumes: &'a [ResolvedMount],
    /// Rootless mappings (the engine runs unprivileged).
    pub rootless: Option<&'a Mappings>,
    /// Put a user namespace in the spec (rootless with the built-in runtime; external
    /// runtimes run inside one instead).
    pub user_namespace: bool,
    /// The init binary for `--init`.
    pub init_path: Option<&'a Path>,
    /// `linux.cgroupsPath` (none: no cgroup, rootless).
    pub cgroups_path: Option<String>,
    /// Default pids limit (0: none).
    pub pids_limit: i64,
    /// The host uses cgroup v2 only.
    pub cgroup2: bool,
    /// The network namespace.
    pub network: &'a crate::network::attach::NsSpec,
}

/// One step.
pub type Step = fn(&mut Spec, &SpecInput<'_>) -> Result<(), SpecError>;

/// The steps, in order.
pub const STEPS: &[(&str, Step)] = &[
    ("process", process::apply),
    ("mounts", mounts::apply),
    ("namespaces", linux::namespaces),
    ("resources", linux::resources),
    ("rlimits", linux::rlimits),
    ("security", security::apply),
    ("rootless", rootless::apply),
];

/// Generates the spec.
pub fn generate(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let mut spec = base::spec(input)?;
    for (name, step) in STEPS {
        tracing::trace!(step = name, "spec step");
        step(&mut spec, input)?;
    }
    Ok(spec)
}

/// The spec's mount list, created if absent.
pub(crate) fn mounts_mut(spec: &mut Spec) -> &mut Vec<oci_spec::runtime::Mount> {
    spec.mounts_mut().get_or_insert_with(Vec::new)
}

/// A mount from JSON (`{"destination":…,"type":…,"source":…,"options":[…]}`).
pub(crate) fn mount(
    dest: &str,
    typ: &str,
    source: &str,
    options: &[&str],
) -> oci_spec::runtime::Mount {
    serde_json::from_value(serde_json::json!({
        "destination": dest, "type": typ, "source": source, "options": options
    }))
    .expect("mount JSON")
}

//! The library's error type: one variant per module error, plus lifecycle errors, each
//! with a [`Kind`] callers can branch on.

use crate::state::Status;

/// What sort of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No such container (or file).
    NotFound,
    /// The container already exists.
    AlreadyExists,
    /// Bad input: config, flags.
    InvalidArgument,
    /// The operation does not fit the container's status.
    InvalidState,
    /// Anything else (system errors).
    Internal,
}

/// Errors of the runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// State store.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Creating the container.
    #[error(transparent)]
    Create(#[from] crate::process::create::CreateError),
    /// A hook.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// Seccomp profile.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// Cgroups.
    #[error(transparent)]
    Cgroup(#[from] liana_cgroups::Error),
    /// The container's status does not allow the operation.
    #[error("container {id} is {status}: cannot {op}")]
    InvalidState {
        /// Container id.
        id: String,
        /// Its status.
        status: Status,
        /// The refused operation.
        op: &'static str,
    },
    /// A signal name or number is not valid.
    #[error("invalid signal {0:?}")]
    Signal(String),
    /// An invalid argument.
    #[error("{0}")]
    Invalid(String),
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

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> Kind {
        use crate::state::StateError;
        match self {
            Error::Config(_) | Error::Seccomp(_) | Error::Signal(_) | Error::Invalid(_) => {
                Kind::InvalidArgument
            }
            Error::State(StateError::NotFound { .. }) => Kind::NotFound,
            Error::State(StateError::Exists { .. })
            | Error::Create(crate::process::create::CreateError::State(StateError::Exists {
                ..
            })) => Kind::AlreadyExists,
            Error::Create(crate::process::create::CreateError::Terminal(_)) => {
                Kind::InvalidArgument
            }
            Error::InvalidState { .. } => Kind::InvalidState,
            _ => Kind::Internal,
        }
    }

    pub(crate) fn sys(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let op = op.into();
        move |source| Error::Sys { op, source }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

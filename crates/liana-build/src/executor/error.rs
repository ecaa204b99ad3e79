//! Build errors: each names the Dockerfile line and instruction it happened at.

use crate::context::ContextError;
use crate::parser::ParseError;
use crate::planner::PlanError;

/// A failed build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The stages do not plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A context problem.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// An error at an instruction.
    #[error("Dockerfile:{line}: {instruction}")]
    At {
        /// The line.
        line: usize,
        /// The instruction text.
        instruction: String,
        /// What failed.
        #[source]
        source: Box<BuildError>,
    },
    /// A RUN step exited non-zero.
    #[error("the command exited with code {code}{}", if output.is_empty() { String::new() } else { format!("; its last output:\n{output}") })]
    RunFailed {
        /// Exit code.
        code: i32,
        /// The end of its output.
        output: String,
    },
    /// An argument is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] liana_engine::Error),
    /// The image store failed.
    #[error(transparent)]
    Store(#[from] liana_images::StoreError),
    /// A pull failed.
    #[error(transparent)]
    Pull(#[from] liana_images::pull::PullError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] liana_images::snapshot::SnapshotError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] liana_images::content::ContentError),
    /// The metadata store failed.
    #[error(transparent)]
    Metadata(#[from] liana_images::metadata::MetadataError),
    /// `ADD` of an archive failed (its entries name the archive).
    #[error(transparent)]
    Unpack(#[from] liana_images::unpack::UnpackError),
    /// The runtime failed.
    #[error("run the step's container")]
    Runtime(#[source] liana_container::Error),
    /// An I/O operation failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    /// Wraps `e` with the line and instruction (unless it already has them).
    pub(crate) fn at(line: usize, instruction: &str, e: BuildError) -> Self {
        match e {
            e @ (BuildError::At { .. } | BuildError::Parse(_)) => e,
            e => BuildError::At {
                line,
                instruction: instruction.to_string(),
                source: Box::new(e),
            },
        }
    }

    /// The exit code of a failed RUN step, if that is what failed.
    pub fn run_exit_code(&self) -> Option<i32> {
        match self {
            BuildError::RunFailed { code, .. } => Some(*code),
            BuildError::At { source, .. } => source.run_exit_code(),
            _ => None,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BuildError::Io { op, path, source }
    }
}

//! `liana build`: Dockerfiles to OCI images in liana's store, without a daemon.
//!
//! - [`parser`]: Dockerfile text → stages of instructions with line numbers;
//! - [`planner`]: which stages a target needs, in dependency order;
//! - [`context`]: the build context (`.dockerignore`, paths that cannot escape);
//! - [`layer`]: an overlay upper directory → a reproducible layer tar (whiteouts);
//! - [`executor`]: runs the stages (RUN steps are containers of the built-in runtime),
//!   with a layer cache, and commits the image.

#![allow(clippy::result_large_err)]

pub mod cache;
pub mod context;
pub mod executor;
pub mod layer;
pub mod parser;
pub mod planner;

pub use executor::{build, BuildError, BuildOptions, BuildResult, Progress};

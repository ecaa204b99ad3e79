//! liana's OCI runtime as a library: a runc-compatible runtime whose verbs are methods
//! of [`container::Runtime`].
//!
//! Modules are named after the kernel concepts and runtime-spec sections they handle:
//! [`namespaces`], [`user_ns`], [`rootfs`], [`mounts`], [`devices`], [`capabilities`],
//! [`sysctl`], [`hooks`], [`tty`], [`seccomp`], [`cgroups`]. Process creation is in
//! [`process`] (three named stages over one [`channel`]); on-disk state in [`state`];
//! safe path handling inside a rootfs in [`resolve`]; a tamper-proof procfs in
//! [`procfs`]; the sealed self re-exec in [`sealed`].

pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod config;
pub mod container;
mod copy;
pub mod devices;
pub mod error;
pub mod features;
pub mod freezer;
pub mod hooks;
pub mod mountinfo;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod resolve;
pub mod rootfs;
pub mod sealed;
pub mod seccomp;
pub mod signals;
pub mod spec;
pub mod state;
pub mod sys;
pub mod sysctl;
pub mod tty;
pub mod user_ns;

pub use container::{
    CreateRequest, ExecRequest, PsFormat, RunOutcome, Runtime, StateView, UpdateRequest,
};
pub use error::{Error, Kind, Result};

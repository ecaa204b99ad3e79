//! liana's container engine: the docker/podman experience without a daemon.
//!
//! The engine composes the image library ([`liana_images`]: references, pulls, content,
//! snapshots) and the runtime library ([`liana_container`], or any OCI runtime binary
//! speaking runc's command line) into containers with a lifecycle:
//!
//! ```text
//!  create ─► (spec from image config + flags, snapshot, bundle, record) ─► Created
//!  start  ─► fork: runtime create+start ─► exec liana-monitor ─► Running
//!            (foreground: this process is the monitor)
//!  exit   ─► monitor writes the exit file ─► exec `liana container cleanup ID`
//!            ─► runtime delete, unmount ─► Exited (or removed with --rm)
//! ```
//!
//! Modules:
//! - [`paths`]: where everything lives (`--root`, `--runroot`, rootless defaults);
//! - [`config`]: the liana config file (defaults, runtimes table);
//! - [`record`] and [`db`]: container records in the metadata database shared with
//!   images; [`lock`]: the per-container lock;
//! - [`spec`]: OCI spec generation as a chain of small steps; [`seccomp`]: the default
//!   profile; [`etc`]: /etc/hosts, /etc/resolv.conf, /etc/hostname;
//! - [`runtime`]: the built-in runtime (a library call) and external runtimes;
//! - the verbs: [`create`], [`start`], [`stop`], [`remove`], [`exec`], [`logs`],
//!   [`attach`], [`top`], [`stats`], [`cp`], [`inspect`], [`volumes`];
//! - [`rootless`]: subordinate ids and the user namespace of rootless containers.
//!
//! Every command is safe to run concurrently with any other: records change in short
//! database transactions, and a container's lifecycle changes under its lock.

// Errors carry the id, path or operation plus their cause (STYLE.md); they travel on
// cold paths only.
#![allow(clippy::result_large_err)]

pub mod attach;
pub mod config;
pub mod cp;
pub mod create;
pub mod db;
pub mod engine;
pub mod error;
pub mod etc;
pub mod exec;
pub mod ids;
pub mod inspect;
pub mod layers;
pub mod lock;
pub mod logs;
pub mod mount;
pub mod network;
pub mod options;
pub mod paths;
pub mod record;
pub mod remove;
pub mod rootless;
pub mod runtime;
pub mod seccomp;
pub mod spec;
pub mod start;
pub mod stats;
pub mod stop;
pub mod top;
pub mod volumes;

pub use engine::{Engine, EngineOptions};
pub use error::{chain as error_chain, Error, ErrorKind, Result};
pub use options::{ExecOptions, RunOptions};
pub use record::{Container, Status};

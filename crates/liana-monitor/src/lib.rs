//! liana's per-container monitor, the counterpart of podman's conmon, as a library and
//! the small `liana-monitor` binary.
//!
//! A detached container's monitor is the parent of the container's init: it keeps the
//! container's stdio (pipes or the pty master), writes every output chunk to the log
//! ([`logfile`]), serves `attach` clients over a unix socket ([`attach`]), reaps the
//! init, records its exit status ([`exitfile`]) and finally executes an exit command
//! (`liana container cleanup ID`) that releases what the container held. A foreground
//! `liana run` runs the same loop ([`supervise`]) in its own process, adding its own
//! terminal as a local client.
//!
//! Only `libc` is used, to keep the resident monitor small.
//!
//! The `liana-init` binary of this crate is the tiny init of `run --init`: it forks the
//! command, forwards signals to it and reaps zombies.

pub mod attach;
pub mod exitfile;
pub mod logfile;
pub mod supervise;
pub mod sys;
pub mod time;

//! The systemd cgroup driver.
//!
//! liana recognises `--systemd-cgroup` / `--cgroup-manager systemd` and the
//! `slice:prefix:name` form of `linux.cgroupsPath` (see [`crate::path`]), and
//! checks that systemd runs. It has no D-Bus client: creating the transient
//! scope unit is reported as [`Error::SystemdUnsupported`](crate::Error)
//! rather than silently falling back to cgroupfs behind systemd's back.

use std::path::Path;

use crate::error::{Error, Result};

/// systemd creates this directory at boot when it is PID 1 (`sd_booted(3)`).
pub const DEFAULT_MARKER: &str = "/run/systemd/system";

/// Whether systemd runs, judged by `marker` (normally [`DEFAULT_MARKER`]).
pub fn is_running(marker: &Path) -> bool {
    marker.is_dir()
}

/// Fails with a message naming the flags when systemd does not run.
pub fn check_running(marker: &Path) -> Result<()> {
    if is_running(marker) {
        Ok(())
    } else {
        Err(Error::SystemdNotRunning {
            marker: marker.to_path_buf(),
        })
    }
}

//! Protecting the `liana` binary from the containers it starts (CVE-2019-5736).
//!
//! Every set-up stage of the built-in runtime is a fork of `liana`, so a process in the
//! container could reach the binary through `/proc/PID/exe` and overwrite it. Verbs
//! that enter containers first re-execute from a protected view of the binary (see
//! [`liana_container::sealed`]): as root a detached read-only overlayfs of its directory
//! (no 14 MiB copy per command), rootless a sealed memfd copy.

use std::io;
use std::path::Path;

/// Whether this process already runs from a protected copy.
pub fn is_protected() -> bool {
    liana_container::sealed::is_protected()
}

/// Re-executes the current command from a protected view of `exe` unless it already
/// runs from one; `scratch` holds the empty layer of the overlay. Returns only on
/// failure.
pub fn ensure_protected(exe: &Path, scratch: &Path) -> io::Result<()> {
    liana_container::sealed::ensure_protected(exe, scratch)
}

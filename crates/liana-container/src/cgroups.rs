//! The runtime's seam to cgroup management: what the set-up stages need from it.

use std::fmt::Debug;
use std::io;

/// Puts the calling process into the container's cgroups. Called in the bootstrap stage
/// right after fork, before any namespace changes.
pub trait CgroupJoin: Debug {
    /// Joins (writes the calling process into every hierarchy's cgroup.procs).
    fn join_self(&self) -> io::Result<()>;
}

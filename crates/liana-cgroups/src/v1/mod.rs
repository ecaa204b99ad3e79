//! cgroup v1: one module per controller, each with its `set` and its stats.

pub(crate) mod blkio;
pub(crate) mod cpu;
pub(crate) mod cpuacct;
pub(crate) mod cpuset;
pub(crate) mod devices;
pub(crate) mod freezer;
pub(crate) mod memory;
pub(crate) mod net;

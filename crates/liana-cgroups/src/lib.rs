//! cgroup management for liana (v1, v2, hybrid).

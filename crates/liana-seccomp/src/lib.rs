//! seccomp filters for liana.

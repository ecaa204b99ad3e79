//! OCI images for liana.

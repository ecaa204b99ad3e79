//! liana's OCI runtime as a library.

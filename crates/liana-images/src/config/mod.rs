//! Configuration users already have for podman and docker: `registries.conf` (v2),
//! credential files (`auth.json`, `~/.docker/config.json`) and per-registry certificate
//! directories (`certs.d`). Every loader takes the paths to read, so callers choose the
//! host locations and tests use temporary directories.

pub mod auth;
pub mod certs;
pub mod registries;

pub use auth::{AuthFile, AuthFiles, Credentials};
pub use certs::{CertDirs, TlsFiles};
pub use registries::{Endpoint, RegistriesConf};

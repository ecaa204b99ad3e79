//! Registry client for the OCI distribution spec: ping, authentication (anonymous,
//! Bearer tokens from `WWW-Authenticate`, Basic), TLS with per-registry CAs, manifests
//! with the right `Accept` headers, blobs with verification, resume and redirects, and
//! uploads for push.
//!
//! The client is synchronous and thread-safe: one [`Registry`] per registry host is
//! shared (behind an `Arc`) by the threads that fetch layers in parallel. Blob bodies are
//! returned as plain [`std::io::Read`] streams so that callers can hash, store and
//! decompress while bytes arrive.

mod auth;
mod fetch;
mod push;
mod transport;

use std::path::PathBuf;

pub use auth::Challenge;
pub use fetch::{unwrap_io, BlobReader, FetchedManifest};
pub use oci_spec::image::Descriptor;
pub use push::{PushedBlob, UploadSource};
pub use transport::{Registry, RegistryOptions};

use crate::config::{AuthFiles, CertDirs, Credentials, RegistriesConf};
use crate::digest::Digest;
use crate::errdefs::{ErrorKind, HasKind};

/// Manifests, indexes and configs larger than this are refused (podman's bound).
pub const DEFAULT_MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The registry could not be reached (connection refused, DNS, timeout).
    #[error("connect to registry {registry}")]
    Connect {
        /// The registry host.
        registry: String,
        /// The cause.
        #[source]
        source: ureq::Error,
    },
    /// The TLS handshake failed, typically an untrusted or invalid certificate.
    #[error("tls handshake with registry {registry} failed (untrusted certificate? add its CA under certs.d or use --tls-verify=false)")]
    Tls {
        /// The registry host.
        registry: String,
        /// The cause.
        #[source]
        source: ureq::Error,
    },
    /// A CA or client certificate file could not be loaded.
    #[error("load certificate {path}")]
    Certificate {
        /// The PEM file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Authentication was refused or required.
    #[error("unauthorized: access to {registry}/{repository} denied{}", if *.with_credentials { " with the given credentials" } else { " (no credentials; try liana login)" })]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// Whether credentials were sent.
        with_credentials: bool,
    },
    /// The token server failed or answered nonsense.
    #[error("get bearer token from {realm}")]
    Token {
        /// The token endpoint.
        realm: String,
        /// The cause.
        #[source]
        source: Box<RemoteError>,
    },
    /// The manifest or blob does not exist in the registry.
    #[error("{what} not found in {registry}/{repository}")]
    NotFound {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// What was looked for (tag, digest).
        what: String,
    },
    /// An unexpected HTTP status.
    #[error("{method} {url}: unexpected status {status}: {detail}")]
    Status {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The registry's error text, if any.
        detail: String,
    },
    /// A request failed in transport after retries.
    #[error("{method} {url}")]
    Request {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: ureq::Error,
    },
    /// Reading a response body failed.
    #[error("read response of {url}")]
    Read {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A manifest, index or config exceeds the size bound.
    #[error("{what} of {reference} is too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Which document.
        what: &'static str,
        /// The image.
        reference: String,
        /// Its size (or a lower bound of it).
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// A Docker schema 1 manifest: deprecated and unsigned-insecure, refused.
    #[error("{reference}: docker schema 1 manifests are not supported (deprecated format); rebuild or push the image with a current client")]
    Schema1 {
        /// The image.
        reference: String,
    },
    /// The manifest's media type is unknown.
    #[error("{reference}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType {
        /// The image.
        reference: String,
        /// The media type.
        media_type: String,
    },
    /// Received content does not match its digest.
    #[error("{what} {expected}: digest mismatch, got {actual}")]
    DigestMismatch {
        /// Manifest or blob.
        what: &'static str,
        /// The digest asked for.
        expected: Digest,
        /// The digest received.
        actual: Digest,
    },
    /// Received content does not have the size announced by its descriptor.
    #[error("blob {digest}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// Size in the descriptor.
        expected: u64,
        /// Size received.
        actual: u64,
    },
    /// Credentials could not be read.
    #[error(transparent)]
    Auth(#[from] crate::config::auth::AuthError),
    /// Certificates could not be found.
    #[error(transparent)]
    Certs(#[from] crate::config::certs::CertsError),
    /// A response lacked something the protocol requires.
    #[error("{url}: bad response: {reason}")]
    BadResponse {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl HasKind for RemoteError {
    fn kind(&self) -> ErrorKind {
        match self {
            RemoteError::Connect { .. }
            | RemoteError::Request { .. }
            | RemoteError::Read { .. } => ErrorKind::Unavailable,
            RemoteError::Tls { .. } => ErrorKind::UntrustedCertificate,
            RemoteError::Certificate { source, .. } => crate::errdefs::io_kind(source),
            RemoteError::Unauthorized { .. } => ErrorKind::Unauthorized,
            RemoteError::Token { source, .. } => source.kind(),
            RemoteError::NotFound { .. } => ErrorKind::NotFound,
            RemoteError::Status { status, .. } if *status >= 500 => ErrorKind::Unavailable,
            RemoteError::Status { .. } => ErrorKind::Internal,
            RemoteError::TooLarge { .. } => ErrorKind::LimitExceeded,
            RemoteError::Schema1 { .. } | RemoteError::UnsupportedMediaType { .. } => {
                ErrorKind::Unsupported
            }
            RemoteError::DigestMismatch { .. }
            | RemoteError::SizeMismatch { .. }
            | RemoteError::BadResponse { .. } => ErrorKind::DataCorrupt,
            RemoteError::Auth(e) => e.kind(),
            RemoteError::Certs(e) => e.kind(),
        }
    }
}

/// Everything needed to build a [`Registry`] client for any host: registries.conf,
/// credential files, certificate directories and the command's overrides.
#[derive(Debug, Clone, Default)]
pub struct RemoteConfig {
    /// registries.conf.
    pub registries: RegistriesConf,
    /// Credential files.
    pub auth: AuthFiles,
    /// Credentials given on the command line (`--creds`), overriding the files.
    pub credentials: Option<Credentials>,
    /// Certificate directories.
    pub cert_dirs: CertDirs,
    /// `--tls-verify`: `Some(false)` allows plain HTTP and skips verification,
    /// `Some(true)` forces verification even for registries configured insecure.
    pub tls_verify: Option<bool>,
    /// Size bound for manifests and configs.
    pub max_manifest_size: Option<u64>,
}

impl RemoteConfig {
    /// A client for `host`, with credentials for `repository`; `insecure` comes from a
    /// registries.conf endpoint.
    pub fn client(
        &self,
        host: &str,
        repository: &str,
        insecure: bool,
    ) -> Result<Registry, RemoteError> {
        let insecure = match self.tls_verify {
            Some(v) => !v,
            None => insecure || self.registries.is_insecure_host(host),
        };
        let credentials = match &self.credentials {
            Some(c) => Some(c.clone()),
            None => self.auth.lookup(host, repository)?,
        };
        let mut opts = RegistryOptions {
            insecure,
            tls_files: self.cert_dirs.files_for(host)?,
            credentials,
            ..Default::default()
        };
        if let Some(m) = self.max_manifest_size {
            opts.max_manifest_size = m;
        }
        Registry::new(host, opts)
    }
}

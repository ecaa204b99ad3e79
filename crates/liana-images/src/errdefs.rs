//! Error kinds shared by every module, in the spirit of containerd's `errdefs`.
//!
//! Each module has its own `thiserror` enum with one variant per failed operation; every
//! such enum implements [`HasKind`] so that callers (the CLI's exit codes, the engine's
//! retry logic) branch on a [`ErrorKind`] and never on message text.

use std::fmt;

/// What kind of failure an error is, independent of where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The image, blob, snapshot, tag or file does not exist.
    NotFound,
    /// The thing to be created exists already.
    AlreadyExists,
    /// The caller passed something malformed (a reference, a platform, a flag value).
    InvalidArgument,
    /// The registry refused our credentials, or none were given where needed.
    Unauthorized,
    /// The data we received or read is not what it claims to be (digest or size mismatch,
    /// malformed manifest, a layer entry escaping its root).
    DataCorrupt,
    /// The format or media type is valid but not supported by us.
    Unsupported,
    /// A resource bound was exceeded (manifest size, decompressed size, entry count).
    LimitExceeded,
    /// The remote could not be reached or answered with a server error; retrying may help.
    Unavailable,
    /// TLS certificate verification failed.
    UntrustedCertificate,
    /// The operation conflicts with the current state (image in use, snapshot has children).
    FailedPrecondition,
    /// Local I/O or database failure.
    Internal,
}

impl ErrorKind {
    /// A short lower-case name, used in logs and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::DataCorrupt => "data corrupt",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::LimitExceeded => "limit exceeded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::UntrustedCertificate => "untrusted certificate",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every error enum of this crate.
pub trait HasKind {
    /// The kind of this error.
    fn kind(&self) -> ErrorKind;
}

/// Kind of a bare I/O error: `NotFound` and `AlreadyExists` are kept, the rest is internal.
pub fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        _ => ErrorKind::Internal,
    }
}

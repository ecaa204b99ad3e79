//! Per-registry TLS files (`containers-certs.d(5)`): a directory named after the
//! registry (`HOST[:PORT]`) holding CA certificates (`*.crt`) and client certificate
//! pairs (`NAME.cert` with `NAME.key`).
//!
//! For a registry the first of the configured base directories that has a directory for
//! it is used (podman's order: `/etc/containers/certs.d`, `/etc/docker/certs.d`); an
//! explicit `--cert-dir` replaces the search.

use std::path::{Path, PathBuf};

use crate::errdefs::{ErrorKind, HasKind};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A directory or file could not be read.
    #[error("read certificates {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `.cert` has no matching `.key` (or the other way round).
    #[error("client certificate {path} has no matching {missing}")]
    Unpaired {
        /// The file found.
        path: PathBuf,
        /// The file expected next to it.
        missing: String,
    },
}

impl HasKind for CertsError {
    fn kind(&self) -> ErrorKind {
        match self {
            CertsError::Read { source, .. } => crate::errdefs::io_kind(source),
            CertsError::Unpaired { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// The PEM files found for one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate bundles to trust in addition to the system roots.
    pub ca_files: Vec<PathBuf>,
    /// A client certificate and key for mutual TLS.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Where to look for per-registry certificate directories.
#[derive(Debug, Clone, Default)]
pub struct CertDirs {
    /// Base directories, each holding `HOST[:PORT]/` subdirectories.
    pub bases: Vec<PathBuf>,
    /// A directory used for every registry instead of the search (`--cert-dir`).
    pub explicit: Option<PathBuf>,
}

impl CertDirs {
    /// The files for `host` (`host[:port]`); empty when nothing is configured.
    pub fn files_for(&self, host: &str) -> Result<TlsFiles, CertsError> {
        if let Some(d) = &self.explicit {
            return read_dir(d);
        }
        for base in &self.bases {
            let d = base.join(host);
            if d.is_dir() {
                return read_dir(&d);
            }
        }
        Ok(TlsFiles::default())
    }
}

fn read_dir(dir: &Path) -> Result<TlsFiles, CertsError> {
    let rd = std::fs::read_dir(dir).map_err(|e| CertsError::Read {
        path: dir.into(),
        source: e,
    })?;
    let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let mut out = TlsFiles::default();
    for p in &names {
        match p.extension().and_then(|e| e.to_str()) {
            Some("crt") => out.ca_files.push(p.clone()),
            Some("cert") => {
                let key = p.with_extension("key");
                if !key.exists() {
                    return Err(CertsError::Unpaired {
                        path: p.clone(),
                        missing: key.display().to_string(),
                    });
                }
                out.client = Some((p.clone(), key));
            }
            Some("key") => {
                let cert = p.with_extension("cert");
                if !cert.exists() {
                    return Err(CertsError::Unpaired {
                        path: p.clone(),
                        missing: cert.display().to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_matching_base() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(b.path().join("reg:5000")).unwrap();
        std::fs::write(b.path().join("reg:5000/ca.crt"), "x").unwrap();
        std::fs::write(b.path().join("reg:5000/client.cert"), "x").unwrap();
        std::fs::write(b.path().join("reg:5000/client.key"), "x").unwrap();
        let dirs = CertDirs {
            bases: vec![a.path().into(), b.path().into()],
            explicit: None,
        };
        let f = dirs.files_for("reg:5000").unwrap();
        assert_eq!(f.ca_files, [b.path().join("reg:5000/ca.crt")]);
        assert!(f.client.is_some());
        assert_eq!(dirs.files_for("reg:5001").unwrap(), TlsFiles::default());
        std::fs::remove_file(b.path().join("reg:5000/client.key")).unwrap();
        let e = dirs.files_for("reg:5000").unwrap_err();
        assert!(e.to_string().contains("client.cert"), "{e}");
    }
}

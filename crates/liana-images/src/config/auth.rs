//! Registry credentials from the files podman and docker use
//! (`containers-auth.json(5)`): `{"auths": {"HOST[/NAMESPACE]": {"auth": base64("user:pass")}}}`.
//!
//! Lookup goes through the files in order and, within a file, prefers the longest key
//! matching the repository (`host/ns/repo`, then `host/ns`, then `host`). Docker's legacy
//! keys (`https://index.docker.io/v1/`) are normalized. Credential helpers are not
//! supported yet; entries that only name a helper are ignored.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::errdefs::{ErrorKind, HasKind};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read.
    #[error("read auth file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("parse auth file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// An `auth` value is not base64 of `user:password`.
    #[error("auth file {path}: entry {key:?} is not base64 of user:password")]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// The entry's key.
        key: String,
    },
    /// The file could not be written.
    #[error("write auth file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No file was configured to write to.
    #[error("no auth file path configured")]
    NoPath,
}

impl HasKind for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            AuthError::Read { source, .. } | AuthError::Write { source, .. } => {
                crate::errdefs::io_kind(source)
            }
            AuthError::Parse { .. } | AuthError::BadEntry { .. } | AuthError::NoPath => {
                ErrorKind::InvalidArgument
            }
        }
    }
}

/// A user name and password (or identity token as password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses `user:password` (the `--creds` flag form).
    pub fn parse_pair(s: &str) -> Option<Self> {
        let (u, p) = s.split_once(':')?;
        Some(Credentials {
            username: u.into(),
            password: p.into(),
        })
    }

    /// `base64(user:password)`, the value of an `auth` entry and of HTTP Basic.
    pub fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileJson {
    #[serde(default)]
    auths: BTreeMap<String, EntryJson>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct EntryJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identitytoken: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// One parsed credentials file.
#[derive(Debug)]
pub struct AuthFile {
    path: PathBuf,
    json: FileJson,
}

/// Normalizes a key: drops `http(s)://`, docker hub's legacy names and `/v1/`-like suffixes.
fn normalize_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other
            .strip_prefix("index.docker.io/")
            .map(|r| format!("docker.io/{r}"))
            .unwrap_or_else(|| other.into()),
    }
}

impl AuthFile {
    /// Reads `path`; a missing file reads as empty.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let json = match std::fs::read(path) {
            Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => FileJson::default(),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| AuthError::Parse {
                path: path.into(),
                source: e,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileJson::default(),
            Err(e) => {
                return Err(AuthError::Read {
                    path: path.into(),
                    source: e,
                })
            }
        };
        Ok(AuthFile {
            path: path.into(),
            json,
        })
    }

    /// The credentials for `registry` and `repository`, longest key first.
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        let full = format!("{registry}/{repository}");
        let mut best: Option<(usize, &String, &EntryJson)> = None;
        for (k, v) in &self.json.auths {
            let nk = normalize_key(k);
            let matches = nk == registry
                || (full.starts_with(&nk) && full.as_bytes().get(nk.len()) == Some(&b'/'))
                || nk == full;
            if matches && best.as_ref().is_none_or(|(l, _, _)| nk.len() > *l) {
                best = Some((nk.len(), k, v));
            }
        }
        let Some((_, key, entry)) = best else {
            return Ok(None);
        };
        let Some(auth) = &entry.auth else {
            return Ok(None);
        };
        let bad = || AuthError::BadEntry {
            path: self.path.clone(),
            key: key.clone(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let mut c = Credentials::parse_pair(&text).ok_or_else(bad)?;
        if let Some(t) = &entry.identitytoken {
            if !t.is_empty() {
                c.password = t.clone();
            }
        }
        Ok(Some(c))
    }

    /// Sets the credentials for `key` (a registry host or `host/namespace`).
    pub fn set(&mut self, key: &str, creds: &Credentials) {
        let e = self.json.auths.entry(key.to_string()).or_default();
        e.auth = Some(creds.encoded());
        e.identitytoken = None;
    }

    /// Removes the entry for `key` (and its legacy spellings); whether one existed.
    pub fn remove(&mut self, key: &str) -> bool {
        let want = normalize_key(key);
        let before = self.json.auths.len();
        self.json.auths.retain(|k, _| normalize_key(k) != want);
        before != self.json.auths.len()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.json.auths.clear();
    }

    /// Writes the file atomically with mode 0600, creating its directory (0700).
    pub fn save(&self) -> Result<(), AuthError> {
        let werr = |e| AuthError::Write {
            path: self.path.clone(),
            source: e,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(werr)?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(&self.json).expect("auth json serializes");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(werr)?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .map_err(werr)?;
        std::fs::rename(&tmp, &self.path).map_err(werr)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The ordered list of credential files to consult.
#[derive(Debug, Clone, Default)]
pub struct AuthFiles {
    /// Files in lookup order; the first is the one `login` writes.
    pub paths: Vec<PathBuf>,
}

impl AuthFiles {
    /// Looks `registry/repository` up in every file in order.
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        for p in &self.paths {
            if let Some(c) = AuthFile::load(p)?.lookup(registry, repository)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// The file `login`/`logout` modify.
    pub fn primary(&self) -> Result<&Path, AuthError> {
        self.paths
            .first()
            .map(PathBuf::as_path)
            .ok_or(AuthError::NoPath)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_prefers_longest_key_and_normalizes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        let c = |u: &str| Credentials {
            username: u.into(),
            password: "pw".into(),
        };
        let mut f = AuthFile::load(&p).unwrap();
        f.set("reg.example", &c("host"));
        f.set("reg.example/team", &c("team"));
        f.save().unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let f = AuthFile::load(&p).unwrap();
        assert_eq!(
            f.lookup("reg.example", "team/app")
                .unwrap()
                .unwrap()
                .username,
            "team"
        );
        assert_eq!(
            f.lookup("reg.example", "teams/app")
                .unwrap()
                .unwrap()
                .username,
            "host"
        );
        assert!(f.lookup("other.example", "x").unwrap().is_none());

        std::fs::write(
            &p,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"credsStore":"x"}"#,
        )
        .unwrap();
        let mut f = AuthFile::load(&p).unwrap();
        assert_eq!(
            f.lookup("docker.io", "library/alpine").unwrap().unwrap(),
            Credentials {
                username: "u".into(),
                password: "p".into()
            }
        );
        assert!(f.remove("docker.io"));
        f.save().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("credsStore"), "unknown keys are kept: {text}");
    }

    #[test]
    fn bad_entries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        std::fs::write(&p, r#"{"auths":{"r.example":{"auth":"!!!"}}}"#).unwrap();
        let e = AuthFile::load(&p)
            .unwrap()
            .lookup("r.example", "x")
            .unwrap_err();
        assert!(e.to_string().contains("r.example"), "{e}");
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(
            AuthFile::load(&p).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}

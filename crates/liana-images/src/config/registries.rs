//! `containers-registries.conf(5)` version 2: search registries, and per-prefix
//! `[[registry]]` tables with `location` rewrites, `insecure`, `blocked` and mirrors.
//!
//! Files are read in order (main file first, then `registries.conf.d/*.conf` drop-ins in
//! lexical order); a later file's `unqualified-search-registries` replaces the earlier
//! one and its `[[registry]]` tables replace tables with the same prefix.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::errdefs::{ErrorKind, HasKind};
use crate::reference::Reference;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RegistriesError {
    /// A config file could not be read.
    #[error("read registries config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A config file is not valid TOML of the expected shape.
    #[error("parse registries config {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// A `[[registry]]` table is inconsistent.
    #[error("registries config {path}: invalid [[registry]] {prefix:?}: {reason}")]
    InvalidRegistry {
        /// The file.
        path: PathBuf,
        /// The table's prefix.
        prefix: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The reference's registry is blocked by the configuration.
    #[error("registry {prefix} is blocked in registries.conf (image {reference})")]
    Blocked {
        /// The matching prefix.
        prefix: String,
        /// The image.
        reference: String,
    },
}

impl HasKind for RegistriesError {
    fn kind(&self) -> ErrorKind {
        match self {
            RegistriesError::Read { source, .. } => crate::errdefs::io_kind(source),
            RegistriesError::Parse { .. } | RegistriesError::InvalidRegistry { .. } => {
                ErrorKind::InvalidArgument
            }
            RegistriesError::Blocked { .. } => ErrorKind::FailedPrecondition,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct FileV2 {
    unqualified_search_registries: Option<Vec<String>>,
    short_name_mode: Option<String>,
    #[serde(default)]
    registry: Vec<RegistryTable>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct RegistryTable {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror: Vec<MirrorTable>,
    #[serde(default)]
    mirror_by_digest_only: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct MirrorTable {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

/// One `[[registry]]` entry after validation.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    /// What references this entry applies to (`host[/path]`, or `*.domain`).
    pub prefix: String,
    /// Where matching references are pulled from (replaces `prefix`).
    pub location: String,
    /// Plain HTTP / unverified TLS allowed.
    pub insecure: bool,
    /// Pulls are refused.
    pub blocked: bool,
    /// Mirrors tried before `location`.
    pub mirrors: Vec<Mirror>,
}

/// A mirror of a registry entry.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// `host[/path]` replacing the prefix.
    pub location: String,
    /// Plain HTTP / unverified TLS allowed.
    pub insecure: bool,
    /// Only used for references pinned by digest.
    pub digest_only: bool,
    /// Only used for references with a tag and no digest.
    pub tag_only: bool,
}

/// Where to pull one reference from: a mirror or the (possibly rewritten) location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The reference rewritten to this endpoint's registry and repository.
    pub reference: Reference,
    /// Plain HTTP / unverified TLS allowed for this endpoint.
    pub insecure: bool,
    /// Whether this endpoint is a mirror (failures fall through to the next endpoint).
    pub mirror: bool,
}

/// The merged registries configuration.
#[derive(Debug, Clone, Default)]
pub struct RegistriesConf {
    /// Registries tried, in order, for short names.
    pub unqualified_search_registries: Vec<String>,
    /// `enforcing`, `permissive` or `disabled` (we never prompt, so only informative).
    pub short_name_mode: Option<String>,
    /// The `[[registry]]` tables.
    pub registries: Vec<RegistryEntry>,
}

impl RegistriesConf {
    /// Loads `files` in order, each followed by the drop-ins of a `registries.conf.d`
    /// directory next to it. Missing files are skipped.
    pub fn load(files: &[PathBuf]) -> Result<Self, RegistriesError> {
        let mut conf = RegistriesConf::default();
        for f in files {
            if f.exists() {
                conf.merge_file(f)?;
            }
            let dropins = f.with_extension("conf.d");
            if let Ok(rd) = std::fs::read_dir(&dropins) {
                let mut names: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                    .collect();
                names.sort();
                for n in names {
                    conf.merge_file(&n)?;
                }
            }
        }
        Ok(conf)
    }

    /// Parses one file's text (for tests and embedded configs).
    pub fn parse(text: &str, path: &Path) -> Result<Self, RegistriesError> {
        let mut conf = RegistriesConf::default();
        conf.merge_text(text, path)?;
        Ok(conf)
    }

    fn merge_file(&mut self, path: &Path) -> Result<(), RegistriesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistriesError::Read {
            path: path.into(),
            source: e,
        })?;
        self.merge_text(&text, path)
    }

    fn merge_text(&mut self, text: &str, path: &Path) -> Result<(), RegistriesError> {
        let f: FileV2 = toml::from_str(text).map_err(|e| RegistriesError::Parse {
            path: path.into(),
            source: e,
        })?;
        if let Some(s) = f.unqualified_search_registries {
            self.unqualified_search_registries = s;
        }
        if f.short_name_mode.is_some() {
            self.short_name_mode = f.short_name_mode;
        }
        for t in f.registry {
            let prefix = t
                .prefix
                .clone()
                .or_else(|| t.location.clone())
                .unwrap_or_default();
            if prefix.is_empty() {
                return Err(RegistriesError::InvalidRegistry {
                    path: path.into(),
                    prefix,
                    reason: "neither prefix nor location set",
                });
            }
            if prefix.starts_with("*.") && t.location.is_some() {
                return Err(RegistriesError::InvalidRegistry {
                    path: path.into(),
                    prefix,
                    reason: "a wildcard prefix cannot have a location",
                });
            }
            let location = t.location.clone().unwrap_or_else(|| prefix.clone());
            let mirrors = t
                .mirror
                .iter()
                .map(|m| {
                    let mode = m.pull_from_mirror.as_deref().unwrap_or("all");
                    Mirror {
                        location: m.location.clone(),
                        insecure: m.insecure,
                        digest_only: t.mirror_by_digest_only || mode == "digest-only",
                        tag_only: mode == "tag-only",
                    }
                })
                .collect();
            let entry = RegistryEntry {
                prefix: prefix.clone(),
                location,
                insecure: t.insecure,
                blocked: t.blocked,
                mirrors,
            };
            self.registries.retain(|r| r.prefix != prefix);
            self.registries.push(entry);
        }
        Ok(())
    }

    /// The `[[registry]]` table with the longest prefix matching `reference`.
    pub fn find(&self, reference: &Reference) -> Option<&RegistryEntry> {
        let name = reference.name();
        self.registries
            .iter()
            .filter(|r| prefix_matches(&r.prefix, &name))
            .max_by_key(|r| r.prefix.len())
    }

    /// Whether the registry host (`host[:port]`) is configured insecure.
    pub fn is_insecure_host(&self, host: &str) -> bool {
        self.registries.iter().any(|r| {
            r.insecure
                && (r.location.split('/').next() == Some(host) || prefix_matches(&r.prefix, host))
        }) || self
            .registries
            .iter()
            .flat_map(|r| r.mirrors.iter())
            .any(|m| m.insecure && m.location.split('/').next() == Some(host))
    }

    /// The endpoints to pull `reference` from, mirrors first. Fails if it is blocked.
    pub fn endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>, RegistriesError> {
        let Some(entry) = self.find(reference) else {
            return Ok(vec![Endpoint {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if entry.blocked {
            return Err(RegistriesError::Blocked {
                prefix: entry.prefix.clone(),
                reference: reference.to_string(),
            });
        }
        let name = reference.name();
        let rest = if entry.prefix.starts_with("*.") {
            name.split_once('/')
                .map(|(_, r)| format!("/{r}"))
                .unwrap_or_default()
        } else {
            name[entry.prefix.len()..].to_string()
        };
        let rewrite = |location: &str| -> Reference {
            let full = if entry.prefix.starts_with("*.") {
                name.clone()
            } else {
                format!("{location}{rest}")
            };
            let (reg, repo) = full.split_once('/').unwrap_or((full.as_str(), ""));
            reference.relocate(reg, repo)
        };
        let mut out = Vec::new();
        for m in &entry.mirrors {
            let by_digest = reference.digest().is_some();
            if (m.digest_only && !by_digest) || (m.tag_only && by_digest) {
                continue;
            }
            let r = rewrite(&m.location);
            out.push(Endpoint {
                reference: r,
                insecure: m.insecure,
                mirror: true,
            });
        }
        out.push(Endpoint {
            reference: rewrite(&entry.location),
            insecure: entry.insecure,
            mirror: false,
        });
        Ok(out)
    }
}

fn prefix_matches(prefix: &str, name: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = name.split('/').next().unwrap_or("");
        let host = host.split(':').next().unwrap_or(host);
        return host.ends_with(&format!(".{domain}"));
    }
    name == prefix
        || (name.starts_with(prefix) && matches!(name.as_bytes()[prefix.len()], b'/' | b':' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["registry.example", "docker.io"]

[[registry]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "example.com/foo"
location = "internal.example/bar"
[[registry.mirror]]
location = "mirror.example/baz"
[[registry.mirror]]
location = "digest-mirror.example"
pull-from-mirror = "digest-only"

[[registry]]
location = "blocked.example"
blocked = true

[[registry]]
prefix = "*.wild.example"
insecure = true
"#;

    #[test]
    fn parses_and_rewrites() {
        let c = RegistriesConf::parse(CONF, Path::new("test.conf")).unwrap();
        assert_eq!(
            c.unqualified_search_registries,
            ["registry.example", "docker.io"]
        );
        let r = Reference::parse("example.com/foo/app:1").unwrap();
        let eps = c.endpoints(&r).unwrap();
        let names: Vec<_> = eps.iter().map(|e| e.reference.to_string()).collect();
        assert_eq!(
            names,
            ["mirror.example/baz/app:1", "internal.example/bar/app:1"]
        );
        assert!(eps[0].mirror && !eps[1].mirror);
        // a prefix matches only at a path boundary
        let r = Reference::parse("example.com/foobar/app").unwrap();
        assert_eq!(c.endpoints(&r).unwrap()[0].reference, r);
        let eps = c
            .endpoints(&Reference::parse("127.0.0.1:5000/busybox").unwrap())
            .unwrap();
        assert!(eps[0].insecure);
        assert!(c.is_insecure_host("127.0.0.1:5000"));
        assert!(!c.is_insecure_host("127.0.0.1:5001"));
        assert!(c.is_insecure_host("a.wild.example"));
        let e = c
            .endpoints(&Reference::parse("blocked.example/x").unwrap())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert!(e.to_string().contains("blocked.example/x"));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let eps = c
            .endpoints(&Reference::parse(&format!("example.com/foo/app@{d}")).unwrap())
            .unwrap();
        assert_eq!(eps.len(), 3);
        assert_eq!(eps[1].reference.registry(), "digest-mirror.example");
    }

    #[test]
    fn dropins_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("registries.conf");
        std::fs::write(&main, "unqualified-search-registries = [\"a.example\"]\n").unwrap();
        std::fs::create_dir(dir.path().join("registries.conf.d")).unwrap();
        std::fs::write(
            dir.path().join("registries.conf.d/10-b.conf"),
            "unqualified-search-registries = [\"b.example\"]\n",
        )
        .unwrap();
        let c = RegistriesConf::load(std::slice::from_ref(&main)).unwrap();
        assert_eq!(c.unqualified_search_registries, ["b.example"]);
        std::fs::write(&main, "[[registry]]\ninsecure = true\n").unwrap();
        let e = RegistriesConf::load(std::slice::from_ref(&main)).unwrap_err();
        assert!(e.to_string().contains("registries.conf"), "{e}");
        std::fs::write(&main, "this is = = not toml").unwrap();
        assert_eq!(
            RegistriesConf::load(&[main]).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}

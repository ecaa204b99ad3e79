//! Image references: parsing and normalization as docker and podman do it.
//!
//! `alpine` becomes `docker.io/library/alpine:latest`, `host:5000/team/app:v1` keeps its
//! registry, `name@sha256:…` pins a digest. A name without a registry part is a *short
//! name*; [`ShortName::candidates`] expands it through registries.conf's
//! `unqualified-search-registries` (falling back to docker.io like docker does).

use std::fmt;
use std::str::FromStr;

use crate::digest::{self, Digest};
use crate::errdefs::{ErrorKind, HasKind};

/// The registry that names without a registry part refer to by default.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag used when a reference carries neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The reference text is malformed.
    #[error("invalid reference {reference:?}: {reason}")]
    Invalid {
        /// The rejected text.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The digest part is malformed.
    #[error("invalid reference {reference:?}")]
    Digest {
        /// The rejected text.
        reference: String,
        /// The digest problem.
        #[source]
        source: digest::DigestError,
    },
}

impl HasKind for ReferenceError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A fully qualified image reference: registry, repository path, and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// A parsed reference that may lack its registry part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortName {
    registry: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn invalid(reference: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether the first path component names a registry (docker's rule).
fn looks_like_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

impl ShortName {
    /// Parses a reference as the user typed it.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(invalid(s, "empty reference"));
        }
        if s.len() > MAX_NAME_LEN + 200 {
            return Err(invalid(s, "too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let d = digest::parse(d).map_err(|e| ReferenceError::Digest {
                    reference: s.to_string(),
                    source: e,
                })?;
                (r, Some(d))
            }
            None => (s, None),
        };
        // a tag is after the last ':' that follows the last '/'
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(invalid(s, format!("invalid tag {t:?}")));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(s, "empty name"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_registry(first) => {
                if !valid_registry(first) {
                    return Err(invalid(s, format!("invalid registry {first:?}")));
                }
                (Some(first.to_string()), path)
            }
            _ => (None, name),
        };
        if path.len() > MAX_NAME_LEN {
            return Err(invalid(s, "repository name longer than 255 characters"));
        }
        for c in path.split('/') {
            if !valid_component(c) {
                let why = if c.bytes().any(|b| b.is_ascii_uppercase()) {
                    "repository names must be lower case".to_string()
                } else {
                    format!("invalid path component {c:?}")
                };
                return Err(invalid(s, why));
            }
        }
        Ok(ShortName {
            registry,
            path: path.to_string(),
            tag,
            digest,
        })
    }

    /// Whether the text carried no registry part.
    pub fn is_short(&self) -> bool {
        self.registry.is_none()
    }

    /// The fully qualified reference in `registry`.
    pub fn qualify(&self, registry: &str) -> Reference {
        let registry = normalize_registry(registry);
        let repository = if registry == DEFAULT_REGISTRY && !self.path.contains('/') {
            format!("library/{}", self.path)
        } else {
            self.path.clone()
        };
        let tag = match (&self.tag, &self.digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t.clone(),
        };
        Reference {
            registry,
            repository,
            tag,
            digest: self.digest.clone(),
        }
    }

    /// The references to try, in order: the name itself when qualified, else the name
    /// in each search registry (docker.io when the list is empty).
    pub fn candidates(&self, search_registries: &[String]) -> Vec<Reference> {
        match &self.registry {
            Some(r) => vec![self.qualify(r)],
            None if search_registries.is_empty() => vec![self.qualify(DEFAULT_REGISTRY)],
            None => search_registries.iter().map(|r| self.qualify(r)).collect(),
        }
    }
}

fn normalize_registry(r: &str) -> String {
    match r {
        "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_string(),
        other => other.to_string(),
    }
}

impl Reference {
    /// Parses and normalizes like docker: a short name goes to docker.io.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        Ok(ShortName::parse(s)?.qualify_default())
    }

    /// The registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// The repository path inside the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }
    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// The pinned digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Self {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
    /// The same repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }
    /// The same reference in another registry/repository (mirrors, rewrites).
    pub fn relocate(&self, registry: &str, repository: &str) -> Self {
        Reference {
            registry: registry.into(),
            repository: repository.into(),
            ..self.clone()
        }
    }
    /// What to ask the registry's manifest endpoint for: the digest if pinned, else the tag.
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }
    /// A familiar form for display: docker.io/library/ dropped like docker does.
    pub fn familiar(&self) -> String {
        let s = self.to_string();
        s.strip_prefix("docker.io/library/")
            .or_else(|| s.strip_prefix("docker.io/"))
            .map(str::to_string)
            .unwrap_or(s)
    }
}

impl ShortName {
    fn qualify_default(&self) -> Reference {
        self.qualify(self.registry.as_deref().unwrap_or(DEFAULT_REGISTRY))
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.19", "docker.io/library/alpine:3.19"),
            ("user/app", "docker.io/user/app:latest"),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("127.0.0.1:5000/busybox:v1", "127.0.0.1:5000/busybox:v1"),
            ("localhost/a/b/c", "localhost/a/b/c:latest"),
            ("quay.io/x/y_z.w--v", "quay.io/x/y_z.w--v:latest"),
            ("[::1]:5000/img", "[::1]:5000/img:latest"),
        ];
        for (i, o) in cases {
            assert_eq!(Reference::parse(i).unwrap().to_string(), o, "{i}");
        }
        let r = Reference::parse(&format!("host:5000/x@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.object(), D);
        assert_eq!(r.registry(), "host:5000");
        let r = Reference::parse(&format!("x:v1@{D}")).unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.object(), D);
        assert_eq!(
            Reference::parse("alpine").unwrap().familiar(),
            "alpine:latest"
        );
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Alpine",
            "a//b",
            "a/",
            "-a",
            "a:",
            "a:-x",
            "a@sha256:zz",
            "host:port/x",
            "a/../b",
            "a b",
            "a:tag/with/slash/..",
            "x@md5:d41d8cd98f00b204e9800998ecf8427e",
        ] {
            let e = Reference::parse(bad);
            assert!(e.is_err(), "{bad:?} accepted as {:?}", e.unwrap());
            assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidArgument);
        }
        let msg = Reference::parse("Alpine").unwrap_err().to_string();
        assert!(msg.contains("lower case"), "{msg}");
    }

    #[test]
    fn short_name_candidates() {
        let s = ShortName::parse("busybox:1").unwrap();
        assert!(s.is_short());
        let c = s.candidates(&["quay.io".into(), "docker.io".into()]);
        let c: Vec<_> = c.iter().map(|r| r.to_string()).collect();
        assert_eq!(c, ["quay.io/busybox:1", "docker.io/library/busybox:1"]);
        let q = ShortName::parse("reg.example:1/busybox").unwrap();
        assert_eq!(q.candidates(&["quay.io".into()]).len(), 1);
    }
}

//! Manifests, indexes, configs and platforms: media types (OCI and Docker schema 2),
//! parsing with clear errors, layer compression from media types, and platform
//! selection in an index the way containerd and podman match platforms.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::errdefs::{ErrorKind, HasKind};

/// Media type strings.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker schema 1 (refused).
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Signed Docker schema 1 (refused).
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker uncompressed layer (docker-archive).
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker foreign (non-distributable) gzip layer.
    pub const DOCKER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// OCI uncompressed layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI zstd layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A document does not parse.
    #[error("parse {what} {digest}")]
    Parse {
        /// Manifest, index or config.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No manifest in the index matches the wanted platform.
    #[error("{reference}: no image for platform {wanted} (available: {available})")]
    NoPlatform {
        /// The image.
        reference: String,
        /// The platform asked for.
        wanted: Platform,
        /// The platforms the index has.
        available: String,
    },
    /// A layer's media type is not one we can unpack.
    #[error("layer {digest}: unsupported media type {media_type:?}")]
    UnknownLayerType {
        /// The layer blob.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A config's diff IDs do not match its manifest's layers.
    #[error("config {digest}: has {diff_ids} diff ids but the manifest has {layers} layers")]
    LayerCount {
        /// The config blob.
        digest: Digest,
        /// Number of diff IDs.
        diff_ids: usize,
        /// Number of layers.
        layers: usize,
    },
    /// A platform string is malformed.
    #[error("invalid platform {text:?}: expected os/arch[/variant]")]
    InvalidPlatform {
        /// The text.
        text: String,
    },
}

impl HasKind for ManifestError {
    fn kind(&self) -> ErrorKind {
        match self {
            ManifestError::Parse { .. } | ManifestError::LayerCount { .. } => {
                ErrorKind::DataCorrupt
            }
            ManifestError::NoPlatform { .. } => ErrorKind::NotFound,
            ManifestError::UnknownLayerType { .. } => ErrorKind::Unsupported,
            ManifestError::InvalidPlatform { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// Layer compression, from the media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (possibly multi-member).
    Gzip,
    /// zstd.
    Zstd,
}

/// The compression of a layer, or an error naming the blob for unknown media types.
pub fn layer_compression(desc: &Descriptor) -> Result<Compression, ManifestError> {
    let mt = desc.media_type().to_string();
    Ok(match mt.as_str() {
        media::OCI_LAYER
        | media::DOCKER_LAYER
        | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Compression::None,
        media::OCI_LAYER_GZIP
        | media::DOCKER_LAYER_GZIP
        | media::DOCKER_FOREIGN_GZIP
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => Compression::Gzip,
        media::OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            Compression::Zstd
        }
        _ => {
            return Err(ManifestError::UnknownLayerType {
                digest: desc.digest().clone(),
                media_type: mt,
            })
        }
    })
}

/// The media type of a manifest document: the `Content-Type` unless it is generic,
/// else the document's own `mediaType`, else guessed from its shape.
pub fn detect_media_type(content_type: &str, bytes: &[u8]) -> String {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if !ct.is_empty()
        && ct != "application/json"
        && ct != "text/plain"
        && ct != "application/octet-stream"
    {
        return ct.to_string();
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
        fs_layers: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) => {
            if let Some(m) = p.media_type {
                m
            } else if p.schema_version == Some(1) || p.fs_layers.is_some() {
                media::DOCKER_SCHEMA1.into()
            } else if p.manifests.is_some() {
                media::OCI_INDEX.into()
            } else if p.layers.is_some() {
                media::OCI_MANIFEST.into()
            } else {
                ct.to_string()
            }
        }
        Err(_) => ct.to_string(),
    }
}

/// Whether a media type is an index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST
}

/// Whether a media type is a single-image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == media::OCI_MANIFEST || media_type == media::DOCKER_MANIFEST
}

/// Parses a manifest.
pub fn parse_manifest(bytes: &[u8], digest: &Digest) -> Result<ImageManifest, ManifestError> {
    serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse {
        what: "manifest",
        digest: digest.clone(),
        source: e,
    })
}

/// Parses an index.
pub fn parse_index(bytes: &[u8], digest: &Digest) -> Result<ImageIndex, ManifestError> {
    serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse {
        what: "index",
        digest: digest.clone(),
        source: e,
    })
}

/// Parses a config and checks it against the manifest's layer count.
pub fn parse_config(
    bytes: &[u8],
    digest: &Digest,
    layers: usize,
) -> Result<ImageConfiguration, ManifestError> {
    let c: ImageConfiguration =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse {
            what: "config",
            digest: digest.clone(),
            source: e,
        })?;
    let n = c.rootfs().diff_ids().len();
    if n != layers {
        return Err(ManifestError::LayerCount {
            digest: digest.clone(),
            diff_ids: n,
            layers,
        });
    }
    Ok(c)
}

/// An `os/arch[/variant]` platform.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// Architecture in Go's spelling (`amd64`, `arm64`).
    pub architecture: String,
    /// Variant (`v7`, `v8`), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this process.
    pub fn host() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
        }
    }

    fn norm_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", Some("v8")) | ("arm64", None) => None,
            (_, v) => v,
        }
    }

    /// Whether an index entry's platform satisfies this (wanted) platform.
    pub fn matches(&self, p: &oci_spec::image::Platform) -> bool {
        let other = Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        };
        other.os == self.os
            && other.architecture == self.architecture
            && (self.variant.is_none() || self.norm_variant() == other.norm_variant())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || ManifestError::InvalidPlatform {
            text: s.to_string(),
        };
        let ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(bad());
        }
        let arch = match parts[1] {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Ok(Platform {
            os: parts[0].to_lowercase(),
            architecture: arch.into(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

/// Picks the manifest for `wanted` from an index (first match in index order).
pub fn select_platform<'a>(
    index: &'a ImageIndex,
    wanted: &Platform,
    reference: &str,
) -> Result<&'a Descriptor, ManifestError> {
    index
        .manifests()
        .iter()
        .filter(|d| is_manifest(d.media_type().as_ref()))
        .find(|d| d.platform().as_ref().is_some_and(|p| wanted.matches(p)))
        .ok_or_else(|| {
            let available = index
                .manifests()
                .iter()
                .filter_map(|d| d.platform().as_ref())
                .map(|p| {
                    let mut s = format!("{}/{}", p.os(), p.architecture());
                    if let Some(v) = p.variant() {
                        s.push('/');
                        s.push_str(v);
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ");
            ManifestError::NoPlatform {
                reference: reference.to_string(),
                wanted: wanted.clone(),
                available,
            }
        })
}

/// The chain IDs of a list of diff IDs (image-spec `config.md`): the first is the
/// first diff ID, each next is `sha256(previous + " " + diff_id)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => crate::digest::sha256_of(format!("{prev} {d}").as_bytes()).to_string(),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
        assert!("linux/../x".parse::<Platform>().is_err());
        let idx: ImageIndex = serde_json::from_str(r#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#).unwrap();
        let d = select_platform(&idx, &"linux/arm64".parse().unwrap(), "x").unwrap();
        assert!(d.digest().to_string().starts_with("sha256:1111"));
        let d = select_platform(&idx, &"linux/amd64".parse().unwrap(), "x").unwrap();
        assert!(d.digest().to_string().starts_with("sha256:e3b0"));
        let e = select_platform(&idx, &"linux/s390x".parse().unwrap(), "img").unwrap_err();
        assert!(e.to_string().contains("linux/amd64, linux/arm64/v8"), "{e}");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn media_type_detection() {
        assert_eq!(
            detect_media_type("application/json", br#"{"schemaVersion":1,"fsLayers":[]}"#),
            media::DOCKER_SCHEMA1
        );
        assert_eq!(
            detect_media_type("", br#"{"schemaVersion":2,"manifests":[]}"#),
            media::OCI_INDEX
        );
        assert_eq!(
            detect_media_type(&format!("{}; charset=utf-8", media::DOCKER_MANIFEST), b"{}"),
            media::DOCKER_MANIFEST
        );
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = crate::digest::sha256_of(b"a").to_string();
        let b = crate::digest::sha256_of(b"b").to_string();
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(
            c[1],
            crate::digest::sha256_of(format!("{a} {b}").as_bytes()).to_string()
        );
    }
}

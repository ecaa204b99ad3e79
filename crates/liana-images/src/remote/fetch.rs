//! Fetching manifests (with size bound, media type checks and digest verification) and
//! blobs (streamed, verified against the descriptor's size and digest, resumed with an
//! HTTP `Range` request after a broken connection).

use std::io::{self, Read};

use oci_spec::image::{Descriptor, MediaType};
use ureq::http::{self, Response};
use ureq::{Body, BodyReader};

use super::transport::{backoff, error_detail, ReqBody};
use super::{Registry, RemoteError};
use crate::digest::{self, Digest, Digester};
use crate::manifest::{self, media};
use crate::reference::Reference;

/// A manifest or index as received, with the descriptor that addresses it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Media type, digest and size of `bytes`.
    pub descriptor: Descriptor,
    /// The exact bytes (their sha256 is the digest).
    pub bytes: Vec<u8>,
}

pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

impl Registry {
    /// Fetches the manifest or index `reference` points at (its digest if pinned, else
    /// its tag), refusing schema 1, unknown media types and documents over the bound.
    pub fn fetch_manifest(&self, reference: &Reference) -> Result<FetchedManifest, RemoteError> {
        self.fetch_manifest_object(reference, &reference.object(), None)
    }

    /// Fetches the manifest `digest` of `reference`'s repository (a child of an index).
    pub fn fetch_child_manifest(
        &self,
        reference: &Reference,
        desc: &Descriptor,
    ) -> Result<FetchedManifest, RemoteError> {
        self.fetch_manifest_object(reference, desc.digest().as_ref(), Some(desc.size()))
    }

    fn fetch_manifest_object(
        &self,
        reference: &Reference,
        object: &str,
        expected_size: Option<u64>,
    ) -> Result<FetchedManifest, RemoteError> {
        let repo = reference.repository();
        let limit = self.options().max_manifest_size;
        let too_large = |size| RemoteError::TooLarge {
            what: "manifest",
            reference: reference.to_string(),
            size,
            limit,
        };
        if let Some(s) = expected_size {
            if s > limit {
                return Err(too_large(s));
            }
        }
        let path = format!("/v2/{repo}/manifests/{object}");
        let accept = [
            media::OCI_MANIFEST,
            media::OCI_INDEX,
            media::DOCKER_MANIFEST,
            media::DOCKER_LIST,
            media::DOCKER_SCHEMA1_SIGNED,
            media::DOCKER_SCHEMA1,
        ]
        .join(", ");
        let mut resp = self.send(
            http::Method::GET,
            &path,
            &pull_scope(repo),
            repo,
            &[("Accept", accept)],
            ReqBody::Empty,
        )?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(RemoteError::NotFound {
                registry: self.host().to_string(),
                repository: repo.to_string(),
                what: format!("manifest {object}"),
            });
        }
        if status != 200 {
            let detail = error_detail(&mut resp);
            return Err(RemoteError::Status {
                method: "GET",
                url: path,
                status,
                detail,
            });
        }
        if let Some(len) = resp.body().content_length() {
            if len > limit {
                return Err(too_large(len));
            }
        }
        let content_type = header(&resp, "content-type").unwrap_or_default();
        let header_digest = header(&resp, "docker-content-digest");
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => too_large(limit + 1),
                other => RemoteError::Read {
                    url: path.clone(),
                    source: other.into_io(),
                },
            })?;
        let actual = digest::sha256_of(&bytes);
        let expected = match (reference.digest(), object.starts_with("sha256:")) {
            (_, true) => Some(digest::parse(object).map_err(|_| RemoteError::BadResponse {
                url: path.clone(),
                reason: "bad digest".into(),
            })?),
            (Some(d), _) => Some(d.clone()),
            _ => None,
        };
        if let Some(exp) = expected {
            if digest::algorithm(&exp) == "sha256" && exp != actual {
                return Err(RemoteError::DigestMismatch {
                    what: "manifest",
                    expected: exp,
                    actual,
                });
            }
        } else if let Some(h) = header_digest.as_deref().and_then(|h| digest::parse(h).ok()) {
            if digest::algorithm(&h) == "sha256" && h != actual {
                return Err(RemoteError::DigestMismatch {
                    what: "manifest",
                    expected: h,
                    actual,
                });
            }
        }
        let media_type = manifest::detect_media_type(&content_type, &bytes);
        match media_type.as_str() {
            media::OCI_MANIFEST
            | media::OCI_INDEX
            | media::DOCKER_MANIFEST
            | media::DOCKER_LIST => {}
            media::DOCKER_SCHEMA1 | media::DOCKER_SCHEMA1_SIGNED => {
                return Err(RemoteError::Schema1 {
                    reference: reference.to_string(),
                })
            }
            other => {
                return Err(RemoteError::UnsupportedMediaType {
                    reference: reference.to_string(),
                    media_type: other.to_string(),
                })
            }
        }
        let descriptor = Descriptor::new(
            MediaType::from(media_type.as_str()),
            bytes.len() as u64,
            actual,
        );
        Ok(FetchedManifest { descriptor, bytes })
    }

    /// Fetches a small blob (a config) into memory, bounded and verified.
    pub fn fetch_small_blob(
        &self,
        reference: &Reference,
        desc: &Descriptor,
    ) -> Result<Vec<u8>, RemoteError> {
        let limit = self.options().max_manifest_size;
        if desc.size() > limit {
            return Err(RemoteError::TooLarge {
                what: "config",
                reference: reference.to_string(),
                size: desc.size(),
                limit,
            });
        }
        let mut r = self.fetch_blob(
            reference.repository(),
            desc,
            0,
            Digester::for_digest(desc.digest()),
        )?;
        let mut out = Vec::with_capacity(desc.size() as usize);
        r.read_to_end(&mut out)
            .map_err(|e| unwrap_io(e, reference.to_string()))?;
        Ok(out)
    }

    /// Opens blob `desc` of `repository` for streaming, starting at byte `offset`;
    /// `digester` must already have seen the first `offset` bytes (from a partial
    /// download). The reader fails with a [`RemoteError`] inside the `io::Error` when
    /// size or digest do not match at the end.
    pub fn fetch_blob(
        &self,
        repository: &str,
        desc: &Descriptor,
        offset: u64,
        digester: Digester,
    ) -> Result<BlobReader<'_>, RemoteError> {
        let mut r = BlobReader {
            registry: self,
            repository: repository.to_string(),
            digest: desc.digest().clone(),
            size: desc.size(),
            pos: offset,
            digester: Some(digester),
            body: None,
            failures: 0,
            done: false,
            mismatch: None,
        };
        r.open()?;
        Ok(r)
    }
}

/// Turns an `io::Error` from a [`BlobReader`] back into its [`RemoteError`] when it
/// carries one.
pub fn unwrap_io(e: io::Error, context: String) -> RemoteError {
    if e.get_ref().is_some_and(|r| r.is::<RemoteError>()) {
        if let Ok(inner) = e.into_inner().expect("checked").downcast::<RemoteError>() {
            return *inner;
        }
        unreachable!("checked type")
    }
    RemoteError::Read {
        url: context,
        source: e,
    }
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A verified, resumable stream of one blob. See [`Registry::fetch_blob`].
pub struct BlobReader<'r> {
    registry: &'r Registry,
    repository: String,
    digest: Digest,
    size: u64,
    pos: u64,
    digester: Option<Digester>,
    body: Option<BodyReader<'static>>,
    failures: u32,
    done: bool,
    /// Set when the complete blob hashed to something else: every later read fails too.
    mismatch: Option<Digest>,
}

impl std::fmt::Debug for BlobReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("digest", &self.digest)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl BlobReader<'_> {
    /// Bytes of the blob received so far (including a resumed prefix).
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn open(&mut self) -> Result<(), RemoteError> {
        let path = format!("/v2/{}/blobs/{}", self.repository, self.digest);
        let mut headers = Vec::new();
        if self.pos > 0 {
            headers.push(("Range", format!("bytes={}-", self.pos)));
        }
        let mut resp = self.registry.send(
            http::Method::GET,
            &path,
            &pull_scope(&self.repository),
            &self.repository,
            &headers,
            ReqBody::Empty,
        )?;
        let status = resp.status().as_u16();
        match status {
            200 | 206 => {}
            404 => {
                return Err(RemoteError::NotFound {
                    registry: self.registry.host().to_string(),
                    repository: self.repository.clone(),
                    what: format!("blob {}", self.digest),
                })
            }
            416 if self.pos > 0 => {
                // the range starts at or past the end: the registry's blob is shorter
                return Err(RemoteError::SizeMismatch {
                    digest: self.digest.clone(),
                    expected: self.size,
                    actual: self.pos,
                });
            }
            s => {
                let detail = error_detail(&mut resp);
                return Err(RemoteError::Status {
                    method: "GET",
                    url: path,
                    status: s,
                    detail,
                });
            }
        }
        let mut body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        if self.pos > 0 && status == 200 {
            // no range support: skip what we already have
            let skipped =
                io::copy(&mut (&mut body).take(self.pos), &mut io::sink()).map_err(|e| {
                    RemoteError::Read {
                        url: path.clone(),
                        source: e,
                    }
                })?;
            if skipped < self.pos {
                return Err(RemoteError::SizeMismatch {
                    digest: self.digest.clone(),
                    expected: self.size,
                    actual: skipped,
                });
            }
        }
        self.body = Some(body);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.pos != self.size {
            return Err(io::Error::other(RemoteError::SizeMismatch {
                digest: self.digest.clone(),
                expected: self.size,
                actual: self.pos,
            }));
        }
        let actual = match (&self.mismatch, self.digester.take()) {
            (Some(a), _) => a.clone(),
            (None, Some(d)) => d.finish(),
            (None, None) => unreachable!("finish completes once unless it failed"),
        };
        if actual != self.digest {
            self.mismatch = Some(actual.clone());
            return Err(io::Error::other(RemoteError::DigestMismatch {
                what: "blob",
                expected: self.digest.clone(),
                actual,
            }));
        }
        self.done = true;
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.mismatch.is_some() {
            return self.finish().map(|_| 0);
        }
        loop {
            let Some(body) = self.body.as_mut() else {
                if let Err(e) = self.open() {
                    return Err(io::Error::other(e));
                }
                continue;
            };
            // never read past the announced size (+1 to detect an overlong blob)
            let room = (self.size + 1)
                .saturating_sub(self.pos)
                .min(buf.len() as u64) as usize;
            match body.read(&mut buf[..room.max(1)]) {
                Ok(0) => {
                    self.body = None;
                    self.finish()?;
                    return Ok(0);
                }
                Ok(n) => {
                    self.pos += n as u64;
                    if self.pos > self.size {
                        return Err(io::Error::other(RemoteError::SizeMismatch {
                            digest: self.digest.clone(),
                            expected: self.size,
                            actual: self.pos,
                        }));
                    }
                    self.failures = 0;
                    if let Some(d) = self.digester.as_mut() {
                        d.update(&buf[..n]);
                    }
                    return Ok(n);
                }
                Err(e) => {
                    self.body = None;
                    self.failures += 1;
                    if self.failures >= self.registry.options().attempts.max(1) {
                        return Err(e);
                    }
                    tracing::info!(digest = %self.digest, offset = self.pos, error = %e, "blob transfer interrupted, resuming with a range request");
                    std::thread::sleep(backoff(self.failures - 1));
                }
            }
        }
    }
}

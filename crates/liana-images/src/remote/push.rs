//! Uploads for push (distribution-spec "push"): existence checks, cross-repository
//! mounts, monolithic blob uploads, manifest puts.

use std::path::PathBuf;

use oci_spec::image::Descriptor;
use ureq::http;

use super::transport::{error_detail, resolve_location, ReqBody};
use super::{Registry, RemoteError};

/// Where the bytes of a blob to upload come from.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// A file (the content store's blob).
    File(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

fn push_scope(repo: &str, from: Option<&str>) -> String {
    match from {
        Some(f) if f != repo => format!("repository:{repo}:pull,push repository:{f}:pull"),
        _ => format!("repository:{repo}:pull,push"),
    }
}

/// Result of [`Registry::push_blob`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushedBlob {
    /// The registry had it already.
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

impl Registry {
    /// Whether blob `desc` exists in `repo`.
    pub fn blob_exists(&self, repo: &str, desc: &Descriptor) -> Result<bool, RemoteError> {
        let path = format!("/v2/{repo}/blobs/{}", desc.digest());
        let mut resp = self.send(
            http::Method::HEAD,
            &path,
            &push_scope(repo, None),
            repo,
            &[],
            ReqBody::Empty,
        )?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(RemoteError::Status {
                method: "HEAD",
                url: path,
                status: s,
                detail: error_detail(&mut resp),
            }),
        }
    }

    /// Makes blob `desc` present in `repo`: checks existence, tries a mount from
    /// `mount_from` (another repository of this registry), else uploads `source`.
    pub fn push_blob(
        &self,
        repo: &str,
        desc: &Descriptor,
        source: &UploadSource,
        mount_from: Option<&str>,
    ) -> Result<PushedBlob, RemoteError> {
        if self.blob_exists(repo, desc)? {
            return Ok(PushedBlob::Exists);
        }
        let scope = push_scope(repo, mount_from);
        let mut path = format!("/v2/{repo}/blobs/uploads/");
        if let Some(from) = mount_from.filter(|f| *f != repo) {
            path = format!("{path}?mount={}&from={from}", desc.digest());
        }
        let mut resp = self.send(
            http::Method::POST,
            &path,
            &scope,
            repo,
            &[("Content-Length", "0".into())],
            ReqBody::Empty,
        )?;
        let status = resp.status().as_u16();
        if status == 201 {
            return Ok(PushedBlob::Mounted);
        }
        if status != 202 {
            return Err(RemoteError::Status {
                method: "POST",
                url: path,
                status,
                detail: error_detail(&mut resp),
            });
        }
        let loc = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RemoteError::BadResponse {
                url: path.clone(),
                reason: "upload without Location".into(),
            })?;
        let base = self.ping()?;
        let mut url = resolve_location(&format!("{base}{path}"), loc);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={}", desc.digest()));
        let headers = [("Content-Type", "application/octet-stream".to_string())];
        let body = match source {
            UploadSource::File(p) => ReqBody::File(p, desc.size()),
            UploadSource::Bytes(b) => ReqBody::Bytes(b),
        };
        let mut resp = self.send(http::Method::PUT, &url, &scope, repo, &headers, body)?;
        match resp.status().as_u16() {
            201 | 204 => Ok(PushedBlob::Uploaded),
            s => Err(RemoteError::Status {
                method: "PUT",
                url,
                status: s,
                detail: error_detail(&mut resp),
            }),
        }
    }

    /// Puts a manifest or index under `reference` (a tag or digest) in `repo`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RemoteError> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let headers = [("Content-Type", media_type.to_string())];
        let mut resp = self.send(
            http::Method::PUT,
            &path,
            &push_scope(repo, None),
            repo,
            &headers,
            ReqBody::Bytes(bytes),
        )?;
        match resp.status().as_u16() {
            200 | 201 | 202 | 204 => Ok(()),
            s => Err(RemoteError::Status {
                method: "PUT",
                url: path,
                status: s,
                detail: error_detail(&mut resp),
            }),
        }
    }
}

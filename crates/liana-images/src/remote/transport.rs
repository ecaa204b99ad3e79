//! HTTP transport to one registry: TLS set-up, scheme detection (HTTPS, or plain HTTP
//! for insecure registries), authentication, manual redirects (credentials are never
//! sent to another host) and retries of transient failures.

use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{self, Response};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use ureq::{Agent, Body, SendBody};

use super::auth::{query_escape, AuthState, Challenge, TokenResponse};
use super::RemoteError;
use crate::config::{Credentials, TlsFiles};

/// System CA bundles tried in order (Debian/Ubuntu, Fedora/RHEL, Alpine/BSD layouts).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];
const MAX_REDIRECTS: usize = 5;

/// How to talk to a registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Plain HTTP allowed and TLS certificates not verified (registries.conf `insecure`,
    /// or `--tls-verify=false`).
    pub insecure: bool,
    /// Extra CAs and client certificate for this registry.
    pub tls_files: TlsFiles,
    /// Credentials to use, if any.
    pub credentials: Option<Credentials>,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Size bound for manifests, indexes and configs.
    pub max_manifest_size: u64,
    /// Attempts for a request that fails transiently (connection reset, 5xx, 429).
    pub attempts: u32,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Idle time after which a stalled transfer fails (and is retried or resumed).
    pub read_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: false,
            tls_files: TlsFiles::default(),
            credentials: None,
            user_agent: format!("liana/{}", env!("CARGO_PKG_VERSION")),
            max_manifest_size: super::DEFAULT_MAX_MANIFEST_SIZE,
            attempts: 4,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// A body to send; re-creatable for retries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a std::path::Path, u64),
}

/// A client for one registry host, shared by threads.
#[derive(Debug)]
pub struct Registry {
    host: String,
    api_host: String,
    opts: RegistryOptions,
    agent: Agent,
    base: Mutex<Option<String>>,
    auth: Mutex<AuthState>,
}

fn load_pem_certs(
    path: &std::path::Path,
    out: &mut Vec<Certificate<'static>>,
) -> Result<(), RemoteError> {
    let data = std::fs::read(path).map_err(|e| RemoteError::Certificate {
        path: path.into(),
        source: e,
    })?;
    for item in ureq::tls::parse_pem(&data) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c.to_owned()),
            Ok(_) => {}
            Err(e) => {
                return Err(RemoteError::Certificate {
                    path: path.into(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })
            }
        }
    }
    Ok(())
}

fn tls_config(opts: &RegistryOptions) -> Result<TlsConfig, RemoteError> {
    let mut b = TlsConfig::builder();
    if opts.insecure {
        b = b.disable_verification(true);
    }
    let mut roots = Vec::new();
    if let Some(bundle) = SYSTEM_CA_BUNDLES
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
    {
        // a broken system bundle should not make private registries unusable
        if let Err(e) = load_pem_certs(bundle, &mut roots) {
            tracing::warn!(error = %e, "ignoring system CA bundle");
        }
    }
    for f in &opts.tls_files.ca_files {
        load_pem_certs(f, &mut roots)?;
    }
    if !roots.is_empty() {
        b = b.root_certs(RootCerts::new_with_certs(&roots));
    }
    if let Some((cert, key)) = &opts.tls_files.client {
        let mut chain = Vec::new();
        load_pem_certs(cert, &mut chain)?;
        let kd = std::fs::read(key).map_err(|e| RemoteError::Certificate {
            path: key.clone(),
            source: e,
        })?;
        let k = PrivateKey::from_pem(&kd).map_err(|e| RemoteError::Certificate {
            path: key.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        b = b.client_cert(Some(ClientCert::new_with_certs(&chain, k)));
    }
    Ok(b.build())
}

/// Whether a transport error is a TLS failure (handshake, certificate).
fn is_tls_error(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|r| r.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
            | ureq::Error::Protocol(_)
    ) && !is_tls_error(e)
}

fn transient_status(s: u16) -> bool {
    matches!(s, 408 | 429 | 500 | 502 | 503 | 504)
}

fn method_name(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::PUT => "PUT",
        http::Method::POST => "POST",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        _ => "REQUEST",
    }
}

/// Extracts the registry's error message from a JSON error body, for diagnostics.
pub(crate) fn error_detail(resp: &mut Response<Body>) -> String {
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<Err1>,
    }
    #[derive(serde::Deserialize)]
    struct Err1 {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_str::<Errs>(&text) {
        return e
            .errors
            .iter()
            .map(|x| {
                format!(
                    "{}: {}",
                    x.code.as_deref().unwrap_or("ERROR"),
                    x.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    text.chars().take(200).collect()
}

impl Registry {
    /// A client for `host` (`host[:port]`, as in references; `docker.io` is mapped to
    /// its API host).
    pub fn new(host: &str, opts: RegistryOptions) -> Result<Self, RemoteError> {
        let tls = tls_config(&opts)?;
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .user_agent(opts.user_agent.as_str())
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .max_idle_connections_per_host(16)
            .build();
        let api_host = if host == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            host.to_string()
        };
        Ok(Registry {
            host: host.to_string(),
            api_host,
            opts,
            agent: Agent::new_with_config(config),
            base: Mutex::new(None),
            auth: Mutex::new(AuthState::default()),
        })
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The options in use.
    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// Checks that the registry answers `/v2/` (HTTPS first; plain HTTP only when
    /// insecure) and records its authentication challenge. Returns the base URL.
    pub fn ping(&self) -> Result<String, RemoteError> {
        if let Some(b) = self.base.lock().expect("lock").clone() {
            return Ok(b);
        }
        let https = format!("https://{}", self.api_host);
        let base = match self.ping_one(&https) {
            Ok(()) => https,
            Err(e)
                if self.opts.insecure
                    && matches!(e, RemoteError::Tls { .. } | RemoteError::Connect { .. }) =>
            {
                let http = format!("http://{}", self.api_host);
                tracing::debug!(registry = %self.host, "https failed, trying plain http");
                self.ping_one(&http)?;
                http
            }
            Err(e) => return Err(e),
        };
        *self.base.lock().expect("lock") = Some(base.clone());
        Ok(base)
    }

    fn ping_one(&self, base: &str) -> Result<(), RemoteError> {
        let url = format!("{base}/v2/");
        let mut last = None;
        for attempt in 0..self.opts.attempts.max(1) {
            match self.agent.get(&url).call() {
                Ok(resp) => {
                    if resp.status() == 401 {
                        self.record_challenge(&resp);
                    }
                    if transient_status(resp.status().as_u16()) && attempt + 1 < self.opts.attempts
                    {
                        std::thread::sleep(backoff(attempt));
                        continue;
                    }
                    return Ok(());
                }
                Err(e) if is_tls_error(&e) => {
                    return Err(RemoteError::Tls {
                        registry: self.host.clone(),
                        source: e,
                    })
                }
                Err(e) if is_transient(&e) && attempt + 1 < self.opts.attempts => {
                    last = Some(e);
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) => {
                    return Err(RemoteError::Connect {
                        registry: self.host.clone(),
                        source: e,
                    })
                }
            }
        }
        Err(RemoteError::Connect {
            registry: self.host.clone(),
            source: last.unwrap_or(ureq::Error::ConnectionFailed),
        })
    }

    fn record_challenge(&self, resp: &Response<Body>) {
        let ch = resp
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            .next();
        if ch.is_some() {
            self.auth.lock().expect("lock").challenge = ch;
        }
    }

    fn auth_header(&self, scope: &str) -> Option<String> {
        let st = self.auth.lock().expect("lock");
        match &st.challenge {
            Some(Challenge::Bearer { .. }) => st.token(scope).map(|t| format!("Bearer {t}")),
            Some(Challenge::Basic { .. }) => self
                .opts
                .credentials
                .as_ref()
                .map(|c| format!("Basic {}", c.encoded())),
            None => None,
        }
    }

    /// Fetches a token for `scope` (space-separated scopes) from the Bearer realm.
    fn fetch_token(&self, scope: &str, repository: &str) -> Result<(), RemoteError> {
        let (realm, service) = match &self.auth.lock().expect("lock").challenge {
            Some(Challenge::Bearer { realm, service, .. }) => (realm.clone(), service.clone()),
            _ => return Ok(()),
        };
        let mut url = realm.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        let mut q = Vec::new();
        if let Some(s) = &service {
            q.push(format!("service={}", query_escape(s)));
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            q.push(format!("scope={}", query_escape(s)));
        }
        url.push_str(&q.join("&"));
        let wrap = |e: RemoteError| RemoteError::Token {
            realm: realm.clone(),
            source: Box::new(e),
        };
        let mut req = self.agent.get(&url);
        if let Some(c) = &self.opts.credentials {
            req = req.header("Authorization", format!("Basic {}", c.encoded()));
        }
        let mut resp = req.call().map_err(|e| {
            if is_tls_error(&e) {
                wrap(RemoteError::Tls {
                    registry: realm.clone(),
                    source: e,
                })
            } else {
                wrap(RemoteError::Request {
                    method: "GET",
                    url: realm.clone(),
                    source: e,
                })
            }
        })?;
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(RemoteError::Unauthorized {
                    registry: self.host.clone(),
                    repository: repository.to_string(),
                    with_credentials: self.opts.credentials.is_some(),
                })
            }
            s => {
                let detail = error_detail(&mut resp);
                return Err(wrap(RemoteError::Status {
                    method: "GET",
                    url: realm.clone(),
                    status: s,
                    detail,
                }));
            }
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| {
                wrap(RemoteError::Read {
                    url: realm.clone(),
                    source: e.into_io(),
                })
            })?;
        let tr: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            wrap(RemoteError::BadResponse {
                url: realm.clone(),
                reason: format!("token answer is not JSON: {e}"),
            })
        })?;
        let token = tr
            .token()
            .ok_or_else(|| {
                wrap(RemoteError::BadResponse {
                    url: realm.clone(),
                    reason: "no token in answer".into(),
                })
            })?
            .to_string();
        self.auth
            .lock()
            .expect("lock")
            .put_token(scope, token, tr.lifetime());
        Ok(())
    }

    /// Sends a request for `path` (relative to the base URL, or an absolute URL from a
    /// `Location` header) with authentication for `scope`, following redirects (without
    /// credentials to other hosts) and retrying transient failures. Statuses other than
    /// 401 are returned to the caller.
    pub(crate) fn send(
        &self,
        method: http::Method,
        path: &str,
        scope: &str,
        repository: &str,
        headers: &[(&str, String)],
        body: ReqBody<'_>,
    ) -> Result<Response<Body>, RemoteError> {
        let base = self.ping()?;
        let mut url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{base}{path}")
        };
        let origin = origin_of(&base);
        let mut authed_retry = false;
        let mut redirects = 0;
        let mut attempt = 0;
        loop {
            let same_host = origin_of(&url) == origin;
            let mut b = http::Request::builder().method(method.clone()).uri(&url);
            for (k, v) in headers {
                b = b.header(*k, v.as_str());
            }
            if same_host {
                if let Some(a) = self.auth_header(scope) {
                    b = b.header("Authorization", a);
                }
            }
            let result = match body {
                ReqBody::Empty => self.agent.run(b.body(()).map_err(|e| bad_req(&url, e))?),
                ReqBody::Bytes(bytes) => {
                    self.agent.run(b.body(bytes).map_err(|e| bad_req(&url, e))?)
                }
                ReqBody::File(p, len) => {
                    let f = std::fs::File::open(p).map_err(|e| RemoteError::Read {
                        url: url.clone(),
                        source: e,
                    })?;
                    let req = b
                        .header("Content-Length", len.to_string())
                        .body(SendBody::from_owned_reader(f))
                        .map_err(|e| bad_req(&url, e))?;
                    self.agent.run(req)
                }
            };
            let resp = match result {
                Ok(r) => r,
                Err(e) if is_tls_error(&e) => {
                    return Err(RemoteError::Tls {
                        registry: self.host.clone(),
                        source: e,
                    })
                }
                Err(e) if is_transient(&e) && attempt + 1 < self.opts.attempts => {
                    tracing::debug!(%url, error = %e, attempt, "retrying request");
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                    continue;
                }
                Err(e) => {
                    return Err(RemoteError::Request {
                        method: method_name(&method),
                        url,
                        source: e,
                    })
                }
            };
            let status = resp.status().as_u16();
            if status == 401 && same_host && !authed_retry {
                self.record_challenge(&resp);
                self.auth.lock().expect("lock").drop_token(scope);
                let bearer = matches!(
                    self.auth.lock().expect("lock").challenge,
                    Some(Challenge::Bearer { .. })
                );
                if bearer {
                    self.fetch_token(scope, repository)?;
                } else if self.opts.credentials.is_none() {
                    return Err(self.unauthorized(repository));
                }
                authed_retry = true;
                continue;
            }
            if status == 401 || (status == 403 && same_host) {
                return Err(self.unauthorized(repository));
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) && redirects < MAX_REDIRECTS {
                let loc = resp
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| RemoteError::BadResponse {
                        url: url.clone(),
                        reason: "redirect without Location".into(),
                    })?;
                url = resolve_location(&url, loc);
                redirects += 1;
                continue;
            }
            if transient_status(status) && attempt + 1 < self.opts.attempts {
                tracing::debug!(%url, status, attempt, "retrying after server error");
                std::thread::sleep(backoff(attempt));
                attempt += 1;
                continue;
            }
            return Ok(resp);
        }
    }

    fn unauthorized(&self, repository: &str) -> RemoteError {
        RemoteError::Unauthorized {
            registry: self.host.clone(),
            repository: repository.to_string(),
            with_credentials: self.opts.credentials.is_some(),
        }
    }

    /// Verifies that the configured credentials are accepted (for `login`): pings, then
    /// authenticates against `/v2/` (Basic) or the token realm (Bearer).
    pub fn check_login(&self) -> Result<(), RemoteError> {
        self.ping()?;
        let ch = self.auth.lock().expect("lock").challenge.clone();
        match ch {
            None => Ok(()),
            Some(Challenge::Bearer { .. }) => self.fetch_token("", ""),
            Some(Challenge::Basic { .. }) => {
                let resp = self.send(http::Method::GET, "/v2/", "", "", &[], ReqBody::Empty)?;
                match resp.status().as_u16() {
                    200..=299 => Ok(()),
                    s => Err(RemoteError::Status {
                        method: "GET",
                        url: "/v2/".into(),
                        status: s,
                        detail: String::new(),
                    }),
                }
            }
        }
    }
}

fn bad_req(url: &str, e: http::Error) -> RemoteError {
    RemoteError::BadResponse {
        url: url.to_string(),
        reason: format!("cannot build request: {e}"),
    }
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64 << attempt.min(5))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after..]
        .find('/')
        .map(|i| after + i)
        .unwrap_or(url.len());
    &url[..end]
}

/// Resolves a `Location` header against the request URL.
pub(crate) fn resolve_location(url: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        loc.to_string()
    } else if loc.starts_with('/') {
        format!("{}{loc}", origin_of(url))
    } else {
        let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
        format!("{base}/{loc}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_locations() {
        assert_eq!(origin_of("https://h:5000/v2/x"), "https://h:5000");
        assert_eq!(
            resolve_location("http://h/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u?x=1"),
            "http://h/v2/a/blobs/uploads/u?x=1"
        );
        assert_eq!(
            resolve_location("http://h/v2/a", "https://s3/x"),
            "https://s3/x"
        );
        assert_eq!(resolve_location("http://h/v2/a/b", "c"), "http://h/v2/a/c");
    }
}

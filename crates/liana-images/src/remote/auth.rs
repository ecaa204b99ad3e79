//! `WWW-Authenticate` challenges and the Bearer token flow
//! (distribution's `docs/spec/auth/token.md`): on a 401 the registry names a token
//! realm and service; we ask the realm for a token for the repository scopes we need,
//! with HTTP Basic credentials when we have them, and cache it per scope set until it
//! expires.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic.
    Basic {
        /// The realm (informative).
        realm: String,
    },
    /// Bearer tokens from a token server.
    Bearer {
        /// The token endpoint URL.
        realm: String,
        /// The service parameter to pass along.
        service: Option<String>,
        /// The scope the registry asked for, if any.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses one header value; `None` for schemes we do not know.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        let params = parse_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic {
                realm: get("realm").unwrap_or_default(),
            })
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            })
        } else {
            None
        }
    }
}

/// Parses `k="v", k2=v2` auth-params (quoted strings may contain commas and escapes).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_string();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch = s[i..].chars().next().unwrap_or('\0');
                val.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

/// A token server's answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub(crate) fn token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .or(self.access_token.as_deref())
            .filter(|t| !t.is_empty())
    }
    pub(crate) fn lifetime(&self) -> Duration {
        // the spec's default is 60 s; keep a margin for clock and transfer time
        Duration::from_secs(self.expires_in.unwrap_or(60).max(60).saturating_sub(10))
    }
}

/// Authentication state of one registry: the last challenge and the tokens per scope set.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    pub challenge: Option<Challenge>,
    tokens: HashMap<String, (String, Instant)>,
}

impl AuthState {
    pub(crate) fn token(&self, scope: &str) -> Option<String> {
        self.tokens
            .get(scope)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(t, _)| t.clone())
    }
    pub(crate) fn put_token(&mut self, scope: &str, token: String, lifetime: Duration) {
        self.tokens
            .insert(scope.to_string(), (token, Instant::now() + lifetime));
    }
    pub(crate) fn drop_token(&mut self, scope: &str) {
        self.tokens.remove(scope);
    }
}

/// Percent-encodes a query value.
pub(crate) fn query_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#),
            Some(Challenge::Basic { realm: "x".into() })
        );
        assert_eq!(
            Challenge::parse("bearer realm=http://t/token"),
            Some(Challenge::Bearer {
                realm: "http://t/token".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(
            Challenge::parse("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}

//! `WWW-Authenticate` challenges and Bearer tokens.
//!
//! A registry answers 401 with a challenge: `Basic realm=…` wants the user
//! name and password on every request; `Bearer realm=…,service=…,scope=…`
//! wants a token fetched from `realm` (with the credentials, if any, as Basic
//! auth). Tokens are cached per registry and scope until shortly before they
//! expire, and fetched again when the registry refuses one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::registry::credentials::Credential;
use crate::{Error, Result};

/// Tokens without `expires_in` live 60 seconds (the distribution spec).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// What a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Basic auth.
    Basic,
    /// A token from `realm`, for `service`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The service name to send back.
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let params = parse_params(rest);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Self::Basic),
            "bearer" => Some(Self::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
            }),
            _ => None,
        }
    }
}

/// `key="value", key=value` pairs.
fn parse_params(input: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = input.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_owned());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    params
}

/// A cached token.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// Tokens per (registry, scope).
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: HashMap<(String, String), Token>,
}

impl TokenCache {
    /// A live token for `registry` and `scope`.
    pub fn get(&self, registry: &str, scope: &str) -> Option<String> {
        self.tokens
            .get(&(registry.to_owned(), scope.to_owned()))
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.value.clone())
    }

    /// Remembers a token.
    pub fn put(&mut self, registry: &str, scope: &str, value: String, lifetime: Duration) {
        // Renew a little early so a token never expires in flight.
        let margin = (lifetime / 10).min(Duration::from_secs(10));
        self.tokens.insert(
            (registry.to_owned(), scope.to_owned()),
            Token {
                value,
                expires: Instant::now() + lifetime.saturating_sub(margin),
            },
        );
    }

    /// Forgets a token the registry refused.
    pub fn forget(&mut self, registry: &str, scope: &str) {
        self.tokens.remove(&(registry.to_owned(), scope.to_owned()));
    }
}

/// Whether a registry's stored credentials may go to the token service at
/// `realm`, which the registry at `api_host` named in its challenge:
/// over HTTPS, yes; over plain HTTP only on the registry's own host, and
/// only where the registry itself may be spoken to in plain HTTP
/// (`plain_allowed`: a loopback or insecure-marked registry). Otherwise the
/// reason they are withheld.
pub fn credentials_allowed_to(
    realm: &str,
    api_host: &str,
    plain_allowed: bool,
) -> std::result::Result<(), String> {
    let url = reqwest::Url::parse(realm)
        .map_err(|e| format!("its token service {realm:?} is not a URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let registry_host = if let Some(rest) = api_host.strip_prefix('[') {
                rest.split(']').next().unwrap_or(rest)
            } else {
                api_host.rsplit_once(':').map_or(api_host, |(h, _)| h)
            };
            let realm_host = url.host_str().unwrap_or_default();
            let realm_host = realm_host.trim_start_matches('[').trim_end_matches(']');
            if realm_host != registry_host {
                Err(format!(
                    "its token service {realm} is plain HTTP on another host than the registry"
                ))
            } else if !plain_allowed {
                Err(format!(
                    "its token service {realm} is plain HTTP and the registry is neither loopback nor marked insecure"
                ))
            } else {
                Ok(())
            }
        }
        other => Err(format!(
            "its token service {realm} uses the scheme {other:?}"
        )),
    }
}

/// Fetches a token from `realm` for `scopes` (space-separated in `scope`).
/// `withheld` says why stored credentials were not sent, if they were not.
pub async fn fetch_token(
    http: &reqwest::Client,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    credential: Option<&Credential>,
    withheld: Option<&str>,
) -> Result<(String, Duration)> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = service {
        query.push(("service", service));
    }
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        query.push(("scope", s));
    }
    let mut request = http.get(realm).query(&query);
    if let Some(c) = credential {
        request = request.basic_auth(&c.username, Some(&c.password));
    }
    let response = request.send().await.map_err(|source| Error::Http {
        url: realm.to_owned(),
        source,
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Unauthorized {
            host: registry.to_owned(),
            reason: match (credential, withheld) {
                (Some(_), _) => "wrong user name or password".to_owned(),
                (None, Some(why)) => format!("your credentials were not sent: {why}"),
                (None, None) => "the registry needs credentials; run cctl login first".to_owned(),
            },
        });
    }
    let body = crate::limits::read_body(
        response,
        crate::limits::MAX_TOKEN_ANSWER_BYTES,
        "the token answer",
        realm,
    )
    .await?;
    let body = String::from_utf8_lossy(&body);
    if !status.is_success() {
        return Err(Error::Registry {
            method: "GET".to_owned(),
            url: realm.to_owned(),
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
        });
    }
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| Error::InvalidDocument {
            what: format!("token from {realm}"),
            kind: "token answer",
            reason: e.to_string(),
        })?;
    let token = json["token"]
        .as_str()
        .or_else(|| json["access_token"].as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::InvalidDocument {
            what: format!("token from {realm}"),
            kind: "token answer",
            reason: "it has neither token nor access_token".to_owned(),
        })?;
    let lifetime = json["expires_in"]
        .as_u64()
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Ok((token.to_owned(), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_https_realms_and_to_plain_http_on_a_plain_registry_host_only() {
        let allowed = |realm, host, plain| credentials_allowed_to(realm, host, plain).is_ok();
        assert!(allowed(
            "https://auth.example/token",
            "registry.example",
            false
        ));
        assert!(allowed(
            "http://127.0.0.1:9000/token",
            "127.0.0.1:5000",
            true
        ));
        assert!(allowed("http://[::1]:9000/token", "[::1]:5000", true));
        assert!(!allowed(
            "http://evil.example/token",
            "127.0.0.1:5000",
            true
        ));
        assert!(!allowed(
            "http://registry.example/token",
            "registry.example",
            false
        ));
        assert!(!allowed(
            "ftp://registry.example/token",
            "registry.example",
            true
        ));
        assert!(!allowed("not a url", "registry.example", true));
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn cached_tokens_expire() {
        let mut cache = TokenCache::default();
        cache.put("r", "s", "t".into(), Duration::from_secs(60));
        assert_eq!(cache.get("r", "s").as_deref(), Some("t"));
        assert_eq!(cache.get("r", "other"), None);
        cache.put("r", "s", "t".into(), Duration::ZERO);
        assert_eq!(cache.get("r", "s"), None);
    }
}

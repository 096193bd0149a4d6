//! The HTTP side of the registry client: scheme choice, authentication,
//! retries.
//!
//! Every request goes through [`RegistryClient::request`], which adds the
//! credentials the registry asked for (learning its challenge from the first
//! 401), retries 429 and 5xx answers and dropped connections with exponential
//! backoff (honouring `Retry-After`), and turns a second 401 into
//! [`Error::Unauthorized`]. HTTPS is the rule; plain HTTP is tried only for
//! loopback hosts and hosts the user marked insecure. An insecure host's TLS
//! certificate is not verified either (as Docker's insecure registries), through
//! a second HTTP client that only those hosts use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode};

use crate::progress::ProgressEvent;
use crate::registry::auth::{Challenge, TokenCache, credentials_allowed_to, fetch_token};
use crate::registry::config::ClientConfig;
use crate::registry::credentials::Credential;
use crate::{Error, Result, is_loopback_host};

/// What one registry host turned out to be.
#[derive(Debug, Clone)]
struct HostState {
    base: String,
    challenge: Option<Challenge>,
}

/// An async client for distribution (OCI) registries.
pub struct RegistryClient {
    http: reqwest::Client,
    /// For hosts marked insecure: accepts any TLS certificate.
    http_unverified: Option<reqwest::Client>,
    pub(crate) config: ClientConfig,
    hosts: tokio::sync::Mutex<HashMap<String, HostState>>,
    tokens: Mutex<TokenCache>,
    credentials: Mutex<HashMap<String, Option<Credential>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The registry a request goes to and the access it needs.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The registry as references name it (for credentials and messages).
    pub registry: String,
    /// The host to connect to.
    pub api_host: String,
    /// Token scopes, space-separated.
    pub scope: String,
}

impl RegistryClient {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let http = http_client(&config, false)?;
        let http_unverified = if config.insecure_hosts.is_empty() {
            None
        } else {
            Some(http_client(&config, true)?)
        };
        Ok(Self {
            http,
            http_unverified,
            config,
            hosts: tokio::sync::Mutex::new(HashMap::new()),
            tokens: Mutex::new(TokenCache::default()),
            credentials: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the user marked `host[:port]` insecure.
    fn is_insecure(&self, host: &str) -> bool {
        self.config.insecure_hosts.iter().any(|h| h == host)
    }

    /// The HTTP client for `host[:port]`: the one that skips certificate
    /// checks for insecure hosts, the verifying one for all others.
    fn http_for(&self, host: &str) -> &reqwest::Client {
        match &self.http_unverified {
            Some(unverified) if self.is_insecure(host) => unverified,
            _ => &self.http,
        }
    }

    /// The HTTP client for a URL (a token realm may be on another host).
    fn http_for_url(&self, url: &str) -> &reqwest::Client {
        let host = reqwest::Url::parse(url).ok().and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_owned(),
            })
        });
        match host {
            Some(host) => self.http_for(&host),
            None => &self.http,
        }
    }

    /// The client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub(crate) fn emit(&self, event: ProgressEvent) {
        if let Some(sink) = &self.config.progress {
            sink(&event);
        }
    }

    /// Pings `/v2/` and returns the base URL (`https://host` or
    /// `http://host`), checking that the credentials work when the registry
    /// wants some.
    pub async fn ping(&self, registry: &str, api_host: &str) -> Result<String> {
        let base = self.base(api_host).await?;
        let target = Target {
            registry: registry.to_owned(),
            api_host: api_host.to_owned(),
            scope: String::new(),
        };
        let url = format!("{base}/v2/");
        let response = self
            .request(&target, Method::GET, &url, HeaderMap::new(), None)
            .await?;
        if response.status().is_success() {
            Ok(base)
        } else {
            Err(status_error("GET", &url, response).await)
        }
    }

    /// The base URL for a host: HTTPS, or HTTP for loopback and insecure hosts
    /// that do not speak HTTPS. The answer to the first `/v2/` is remembered.
    pub(crate) async fn base(&self, api_host: &str) -> Result<String> {
        let mut hosts = self.hosts.lock().await;
        if let Some(state) = hosts.get(api_host) {
            return Ok(state.base.clone());
        }
        let plain_allowed = is_loopback_host(api_host) || self.is_insecure(api_host);
        let mut last = None;
        for scheme in ["https", "http"] {
            if scheme == "http" && !plain_allowed {
                break;
            }
            let base = format!("{scheme}://{api_host}");
            let url = format!("{base}/v2/");
            // A plain-HTTP server may never answer a TLS hello: when HTTP is
            // allowed, do not wait long for HTTPS.
            let mut probe = self.http_for(api_host).get(&url);
            if scheme == "https" && plain_allowed {
                probe = probe.timeout(Duration::from_secs(if is_loopback_host(api_host) {
                    5
                } else {
                    15
                }));
            }
            match probe.send().await {
                Ok(response) => {
                    let challenge = challenge_of(&response);
                    hosts.insert(
                        api_host.to_owned(),
                        HostState {
                            base: base.clone(),
                            challenge,
                        },
                    );
                    return Ok(base);
                }
                Err(source) => last = Some(Error::Http { url, source }),
            }
        }
        Err(last.unwrap_or(Error::InsecureRefused {
            host: api_host.to_owned(),
        }))
    }

    fn credential(&self, registry: &str) -> Result<Option<Credential>> {
        let mut cache = self
            .credentials
            .lock()
            .map_err(|_| poisoned("credential cache"))?;
        if let Some(c) = cache.get(registry) {
            return Ok(c.clone());
        }
        let found = self.config.credentials.lookup(registry)?;
        cache.insert(registry.to_owned(), found.clone());
        Ok(found)
    }

    /// Sends a request with authentication and retries. `body` is resent on
    /// each attempt.
    pub(crate) async fn request(
        &self,
        target: &Target,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response> {
        let mut attempt = 0u32;
        let mut refused_once = false;
        loop {
            let mut builder = self
                .http_for(&target.api_host)
                .request(method.clone(), url)
                .headers(headers.clone());
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            builder = self.authorize(builder, target).await?;
            let response = match builder.send().await {
                Ok(r) => r,
                Err(source) => {
                    if attempt + 1 < self.config.max_attempts && is_transient(&source) {
                        tokio::time::sleep(self.backoff(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(Error::Http {
                        url: url.to_owned(),
                        source,
                    });
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenge = challenge_of(&response);
                if refused_once || challenge.is_none() {
                    return Err(self.unauthorized(target)?);
                }
                refused_once = true;
                if let Some(state) = self.hosts.lock().await.get_mut(&target.api_host) {
                    state.challenge = challenge;
                }
                self.tokens
                    .lock()
                    .map_err(|_| poisoned("token cache"))?
                    .forget(&target.registry, &target.scope);
                continue;
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if retryable && attempt + 1 < self.config.max_attempts {
                let delay = retry_after(&response).unwrap_or_else(|| self.backoff(attempt));
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            return Ok(response);
        }
    }

    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.config.retry_delay * 2u32.saturating_pow(attempt.min(8))
    }

    fn unauthorized(&self, target: &Target) -> Result<Error> {
        let reason = if self.credential(&target.registry)?.is_some() {
            "wrong user name or password"
        } else {
            "the registry needs credentials; run cctl login first"
        };
        Ok(Error::Unauthorized {
            host: target.registry.clone(),
            reason: reason.to_owned(),
        })
    }

    async fn authorize(
        &self,
        builder: reqwest::RequestBuilder,
        target: &Target,
    ) -> Result<reqwest::RequestBuilder> {
        let challenge = self
            .hosts
            .lock()
            .await
            .get(&target.api_host)
            .and_then(|s| s.challenge.clone());
        match challenge {
            None => Ok(builder),
            Some(Challenge::Basic) => Ok(match self.credential(&target.registry)? {
                Some(c) => builder.basic_auth(c.username, Some(c.password)),
                None => builder,
            }),
            Some(Challenge::Bearer { realm, service }) => {
                let cached = self
                    .tokens
                    .lock()
                    .map_err(|_| poisoned("token cache"))?
                    .get(&target.registry, &target.scope);
                let token = match cached {
                    Some(t) => t,
                    None => {
                        let mut credential = self.credential(&target.registry)?;
                        let plain_allowed = is_loopback_host(&target.api_host)
                            || self.is_insecure(&target.api_host);
                        let withheld =
                            match credentials_allowed_to(&realm, &target.api_host, plain_allowed) {
                                Err(why) if credential.is_some() => {
                                    tracing::warn!(
                                        registry = %target.registry,
                                        "credentials withheld from the token service: {why}"
                                    );
                                    credential = None;
                                    Some(why)
                                }
                                _ => None,
                            };
                        let (token, lifetime) = fetch_token(
                            self.http_for_url(&realm),
                            &target.registry,
                            &realm,
                            service.as_deref(),
                            &target.scope,
                            credential.as_ref(),
                            withheld.as_deref(),
                        )
                        .await?;
                        self.tokens
                            .lock()
                            .map_err(|_| poisoned("token cache"))?
                            .put(&target.registry, &target.scope, token.clone(), lifetime);
                        token
                    }
                };
                Ok(builder.bearer_auth(token))
            }
        }
    }
}

/// The HTTP client: user agent, time-outs, redirects, extra CAs; with
/// `unverified`, one that accepts any certificate (for insecure hosts only).
fn http_client(config: &ClientConfig, unverified: bool) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("containerization/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::limited(10))
        .danger_accept_invalid_certs(unverified);
    for pem in &config.extra_ca_pems {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|source| Error::Http {
            url: "extra CA certificates".to_owned(),
            source,
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|source| Error::Http {
        url: "client setup".to_owned(),
        source,
    })
}

fn poisoned(what: &str) -> Error {
    Error::Io {
        action: "use",
        path: what.into(),
        source: std::io::Error::other("a thread panicked while holding it"),
    }
}

fn challenge_of(response: &Response) -> Option<Challenge> {
    if response.status() != StatusCode::UNAUTHORIZED {
        return None;
    }
    response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(Challenge::parse)
        // Prefer Bearer when a registry offers both.
        .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}

/// Whether a transport error is worth retrying.
pub(crate) fn is_transient(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// An error for an unexpected answer, with the start of its body.
pub(crate) async fn status_error(method: &str, url: &str, response: Response) -> Error {
    let status = response.status().as_u16();
    let body = crate::limits::read_error_body(response).await;
    Error::Registry {
        method: method.to_owned(),
        url: url.to_owned(),
        status,
        body: body.chars().take(400).collect(),
    }
}

/// A header map with one `name: value`.
pub(crate) fn header(name: reqwest::header::HeaderName, value: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(value) {
        map.insert(name, v);
    }
    map
}

//! A real `docker-registry` (the CNCF distribution registry) per test.
//!
//! Each [`Registry`] listens on 127.0.0.1 (or the address given to
//! [`RegistryBuilder::listen_on`]) on a free port with its own storage
//! folder, in one of three shapes: anonymous, htpasswd Basic auth, or TLS with a
//! CA made for the test (the last two combine). It is killed when dropped; see
//! [`crate::Supervised`] for why it also dies with the test binary.
//!
//! HTTP helpers ([`Registry::get`], [`Registry::tags`]) run their blocking
//! client on a thread of their own, so they are safe to call from async tests.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::IoContext;
use crate::fixtures::FixtureImage;
use crate::token::{TOKEN_ISSUER, TOKEN_SERVICE};
use crate::{Error, Result, Supervised, TestCa, TokenIssuer, command};

/// How long a registry may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many ports to try when another process takes the one chosen.
const PORT_ATTEMPTS: usize = 5;

/// A user name and password for Basic auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// Chooses the shape of a [`Registry`] before starting it.
#[derive(Debug, Default, Clone)]
pub struct RegistryBuilder {
    basic_auth: Option<Credentials>,
    token_auth: Option<Option<Credentials>>,
    token_lifetime: Option<u64>,
    realm_host: Option<String>,
    tls: bool,
    address: Option<Ipv4Addr>,
}

impl RegistryBuilder {
    /// Requires these credentials (htpasswd, bcrypt) on every request.
    pub fn basic_auth(mut self, credentials: Credentials) -> Self {
        self.basic_auth = Some(credentials);
        self
    }

    /// Requires Bearer tokens (`auth: token`) from a [`TokenIssuer`] started
    /// with the registry; the issuer demands `credentials` when given, and
    /// serves anyone otherwise.
    pub fn token_auth(mut self, credentials: Option<Credentials>) -> Self {
        self.token_auth = Some(credentials);
        self
    }

    /// How long the issuer's tokens live (default 300 seconds).
    pub fn token_lifetime(mut self, seconds: u64) -> Self {
        self.token_lifetime = Some(seconds);
        self
    }

    /// Names the token issuer by `host` in the registry's challenge (its
    /// `realm`) instead of `127.0.0.1`: `localhost` reaches the same issuer
    /// under another host name, as a token service on another host would.
    pub fn token_realm_host(mut self, host: &str) -> Self {
        self.realm_host = Some(host.to_owned());
        self
    }

    /// Serves HTTPS with a certificate from a CA generated for this registry.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Listens on `address` instead of 127.0.0.1 (plain HTTP only: the test
    /// CA's certificate names 127.0.0.1). A benchmark puts a registry on a
    /// veth's address to reach it through a shaped link.
    pub fn listen_on(mut self, address: Ipv4Addr) -> Self {
        self.address = Some(address);
        self
    }

    /// Starts the registry and waits until it answers `/v2/`.
    pub fn start(self) -> Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("cz-registry-")
            .tempdir()
            .at("cannot create a folder in", std::env::temp_dir())?;
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).at("cannot create", &storage)?;
        let ca = if self.tls {
            let certs = dir.path().join("certs");
            std::fs::create_dir(&certs).at("cannot create", &certs)?;
            Some(TestCa::generate(&certs)?)
        } else {
            None
        };
        let mut issuer: Option<TokenIssuer>;
        let htpasswd = match &self.basic_auth {
            Some(credentials) => Some(write_htpasswd(dir.path(), credentials)?),
            None => None,
        };
        issuer = match &self.token_auth {
            Some(credentials) => Some(TokenIssuer::start(
                dir.path(),
                credentials.clone(),
                self.token_lifetime.unwrap_or(300),
            )?),
            None => None,
        };
        let credentials = match &self.token_auth {
            Some(token_credentials) => token_credentials.clone(),
            None => self.basic_auth.clone(),
        };
        let address = self.address.unwrap_or(Ipv4Addr::LOCALHOST);
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port(address)?;
            let config = dir.path().join("config.yml");
            let mut yaml = config_yaml(
                SocketAddr::from((address, port)),
                &storage,
                ca.as_ref(),
                htpasswd.as_deref(),
            );
            if let Some(issuer) = &issuer {
                yaml.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    match &self.realm_host {
                        Some(host) => issuer.realm().replace("127.0.0.1", host),
                        None => issuer.realm(),
                    },
                    issuer.cert_path().display()
                ));
            }
            std::fs::write(&config, yaml).at("cannot write", &config)?;
            let log = dir.path().join("registry.log");
            let child = spawn(&config, &log)?;
            let mut registry = Registry {
                child,
                address,
                port,
                ca: ca.clone(),
                credentials: credentials.clone(),
                issuer: None,
                storage: storage.clone(),
                log,
                dir: None,
            };
            match registry.wait_until_listening() {
                Ok(()) => {
                    registry.issuer = issuer.take();
                    registry.check_is_registry()?;
                    registry.dir = Some(dir);
                    return Ok(registry);
                }
                Err(e) if registry.log_tail().contains("address already in use") => {
                    issuer = registry.issuer.take();
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Unexpected("no port attempt was made".into())))
    }
}

/// A running `docker-registry` on 127.0.0.1, killed and cleaned up on drop.
#[derive(Debug)]
pub struct Registry {
    child: Supervised,
    address: Ipv4Addr,
    port: u16,
    ca: Option<TestCa>,
    credentials: Option<Credentials>,
    issuer: Option<TokenIssuer>,
    storage: PathBuf,
    log: PathBuf,
    // Dropped after `child` (fields drop in order), so the process is gone
    // before its folder is removed. Set once the registry is up.
    dir: Option<tempfile::TempDir>,
}

impl Registry {
    /// A builder to choose authentication and TLS.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// An anonymous registry over plain HTTP.
    pub fn anonymous() -> Result<Self> {
        Self::builder().start()
    }

    /// A registry over plain HTTP that requires Basic auth as
    /// [`Registry::test_credentials`].
    pub fn basic_auth() -> Result<Self> {
        Self::builder().basic_auth(Self::test_credentials()).start()
    }

    /// An anonymous registry over HTTPS, with a CA generated for it.
    pub fn tls() -> Result<Self> {
        Self::builder().tls().start()
    }

    /// The credentials [`Registry::basic_auth`] requires.
    pub fn test_credentials() -> Credentials {
        Credentials::new("tester", "correct horse battery staple")
    }

    /// `127.0.0.1:<port>` (or its other address), the registry part of an
    /// image reference.
    pub fn host(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://…` or `https://…`, without a trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// An anonymous-pull registry behind Bearer tokens: the token issuer
    /// demands [`Registry::test_credentials`].
    pub fn token_auth() -> Result<Self> {
        Self::builder()
            .token_auth(Some(Self::test_credentials()))
            .start()
    }

    /// The token issuer, when the registry uses `auth: token`.
    pub fn token_issuer(&self) -> Option<&TokenIssuer> {
        self.issuer.as_ref()
    }

    /// The test CA, when the registry serves TLS.
    pub fn ca(&self) -> Option<&TestCa> {
        self.ca.as_ref()
    }

    /// The credentials it requires, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The registry's storage folder (to corrupt blobs on purpose, for example).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// The registry process's id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The registry's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The end of the registry's log, for error messages.
    pub fn log_tail(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| command::tail(&bytes))
            .unwrap_or_default()
    }

    /// `GET <base>/<path>` with the registry's credentials and CA; returns the
    /// status and the body.
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        self.get_with_headers(path, &[])
    }

    /// [`Registry::get`] with extra request headers, such as `Accept`.
    pub fn get_with_headers(&self, path: &str, headers: &[(&str, &str)]) -> Result<(u16, String)> {
        let url = format!("{}/{}", self.base_url(), path.trim_start_matches('/'));
        let ca = self.ca.as_ref().map(|ca| ca.ca_pem().to_owned());
        let credentials = self.credentials.clone();
        // reqwest's blocking client panics inside an async runtime; a thread of
        // its own has none.
        std::thread::scope(|scope| {
            scope
                .spawn(|| blocking_get(&url, headers, ca.as_deref(), credentials.as_ref()))
                .join()
                .unwrap_or_else(|_| Err(Error::Unexpected(format!("GET {url} panicked"))))
        })
    }

    /// The tags of `repository`, sorted, read over HTTP from `/v2/<repo>/tags/list`.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let (status, body) = self.get(&format!("v2/{repository}/tags/list"))?;
        if status != 200 {
            return Err(Error::Unexpected(format!(
                "tag list of {repository} answered {status}: {body}"
            )));
        }
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| Error::Unexpected(format!("tag list is not JSON ({e}): {body}")))?;
        let mut tags: Vec<String> = json["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tag| tag.as_str().map(str::to_owned))
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// The `skopeo` options that reach this registry (TLS, CA, credentials),
    /// each flag prefixed with `prefix`: `"dest-"` for the destination of
    /// `skopeo copy`, `"src-"` for its source, `""` for `inspect` or `list-tags`.
    pub fn skopeo_args(&self, prefix: &str) -> Vec<String> {
        let mut args = vec![format!("--{prefix}tls-verify={}", self.ca.is_some())];
        if let Some(ca) = &self.ca {
            args.push(format!("--{prefix}cert-dir={}", ca.dir().display()));
        }
        if let Some(c) = &self.credentials {
            args.push(format!("--{prefix}creds={}:{}", c.username, c.password));
        }
        args
    }

    /// Pushes a fixture with `skopeo copy --all --preserve-digests` as
    /// `<repo>:<tag>` and returns the full reference pushed.
    pub fn push(&self, image: &FixtureImage, repository_and_tag: &str) -> Result<String> {
        let reference = format!("{}/{repository_and_tag}", self.host());
        command::run(
            Command::new("skopeo")
                .args([
                    "--insecure-policy",
                    "copy",
                    "--all",
                    "--preserve-digests",
                    "--quiet",
                ])
                .args(self.skopeo_args("dest-"))
                .arg(image.oci_reference())
                .arg(format!("docker://{reference}")),
        )?;
        Ok(reference)
    }

    /// Waits until the process listens on its port, or reports why it did not.
    fn wait_until_listening(&mut self) -> Result<()> {
        let started = Instant::now();
        let address = SocketAddr::from((self.address, self.port));
        loop {
            if let Some(status) = self.child.try_exit_status()? {
                return Err(self.not_ready(format!("it exited ({status})")));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.not_ready("it never listened".to_owned()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Checks that what listens is a distribution registry speaking API v2 and
    /// accepting the credentials (the request carries them).
    fn check_is_registry(&self) -> Result<()> {
        let (status, body) = self.get("v2/")?;
        if status == 200 {
            Ok(())
        } else {
            Err(self.not_ready(format!("GET /v2/ answered {status}: {body}")))
        }
    }

    fn not_ready(&self, why: String) -> Error {
        Error::NotReady {
            what: format!("docker-registry on port {}", self.port),
            seconds: START_TIMEOUT.as_secs(),
            detail: format!("{why}; its log ends with:\n{}", self.log_tail()),
        }
    }
}

/// A port on `address` that nothing listened on a moment ago.
fn free_port(address: Ipv4Addr) -> Result<u16> {
    let any = format!("{address}:0");
    let listener = TcpListener::bind((address, 0)).at("cannot bind", &any)?;
    let port = listener.local_addr().at("cannot read", &any)?.port();
    Ok(port)
}

/// Writes an htpasswd file with a bcrypt hash, the only kind the registry accepts.
fn write_htpasswd(dir: &Path, credentials: &Credentials) -> Result<PathBuf> {
    // Cost 5 keeps each authenticated request fast; the password is a test's.
    let hash = bcrypt::hash(&credentials.password, 5)
        .map_err(|e| Error::Unexpected(format!("cannot hash the test password: {e}")))?;
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("{}:{hash}\n", credentials.username))
        .at("cannot write", &path)?;
    Ok(path)
}

/// The registry's configuration file.
fn config_yaml(
    address: SocketAddr,
    storage: &Path,
    ca: Option<&TestCa>,
    htpasswd: Option<&Path>,
) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {address}\n",
        storage.display()
    );
    if let Some(ca) = ca {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            ca.server_cert_path().display(),
            ca.server_key_path().display()
        ));
    }
    if let Some(path) = htpasswd {
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: containerization-test\n    path: {}\n",
            path.display()
        ));
    }
    yaml
}

/// Starts `docker-registry serve <config>` with its output in `log`.
fn spawn(config: &Path, log: &Path) -> Result<Supervised> {
    let out = std::fs::File::create(log).at("cannot create", log)?;
    let err = out.try_clone().at("cannot reopen", log)?;
    let mut command = Command::new("docker-registry");
    command
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    Supervised::spawn("docker-registry", command)
}

fn blocking_get(
    url: &str,
    headers: &[(&str, &str)],
    ca_pem: Option<&str>,
    credentials: Option<&Credentials>,
) -> Result<(u16, String)> {
    let http = |source| Error::Http {
        url: url.to_owned(),
        source,
    };
    let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
    if let Some(pem) = ca_pem {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).map_err(http)?);
    }
    let client = builder.build().map_err(http)?;
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(c) = credentials {
        request = request.basic_auth(&c.username, Some(&c.password));
    }
    let mut response = request.send().map_err(http)?;
    if response.status() == reqwest::StatusCode::UNAUTHORIZED
        && let Some(token) = bearer_token(&client, &response, credentials)?
    {
        let mut retry = client.get(url).bearer_auth(token);
        for (name, value) in headers {
            retry = retry.header(*name, *value);
        }
        response = retry.send().map_err(http)?;
    }
    let status = response.status().as_u16();
    let body = response.text().map_err(http)?;
    Ok((status, body))
}

/// Follows a Bearer challenge: fetches a token from its realm for its scope.
fn bearer_token(
    client: &reqwest::blocking::Client,
    response: &reqwest::blocking::Response,
    credentials: Option<&Credentials>,
) -> Result<Option<String>> {
    let Some(challenge) = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Ok(None);
    };
    let param = |key: &str| {
        challenge.split(',').find_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            (k == key).then(|| v.trim_matches('"').to_owned())
        })
    };
    let Some(realm) = param("realm") else {
        return Ok(None);
    };
    let mut query = vec![("service", param("service").unwrap_or_default())];
    if let Some(scope) = param("scope") {
        query.push(("scope", scope));
    }
    let mut request = client.get(&realm).query(&query);
    if let Some(c) = credentials {
        request = request.basic_auth(&c.username, Some(&c.password));
    }
    let http = |source| Error::Http {
        url: realm.clone(),
        source,
    };
    let json: serde_json::Value = request.send().map_err(http)?.json().map_err(http)?;
    Ok(json["token"].as_str().map(str::to_owned))
}

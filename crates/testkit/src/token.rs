//! A token issuer for registries with `auth: token`: a small HTTP server on
//! 127.0.0.1 that hands out ES256-signed JWTs, the way Docker Hub's auth
//! service does.
//!
//! `GET /token?service=…&scope=…` with Basic credentials (or none, when the
//! issuer has no credentials) answers `{"token", "access_token", "expires_in",
//! "issued_at"}`; the token grants every action asked for. Wrong credentials
//! get 401. The signing key's certificate is written as the registry's
//! `rootcertbundle` and sent in each token's `x5c` header.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{CertificateParams, KeyPair};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

use crate::error::IoContext;
use crate::{Credentials, Error, Result};

/// The service name registries and tokens agree on.
pub const TOKEN_SERVICE: &str = "containerization-test-registry";
/// The issuer name registries and tokens agree on.
pub const TOKEN_ISSUER: &str = "containerization-test-issuer";
/// How long after a token's `exp` docker-registry still accepts it (its
/// allowance for clock skew).
pub const REGISTRY_EXPIRY_LEEWAY: u64 = 60;

/// A running token issuer; stops when dropped.
#[derive(Debug)]
pub struct TokenIssuer {
    port: u16,
    cert_path: PathBuf,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
    switches: Arc<Switches>,
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    credentials: Option<Credentials>,
    lifetime: u64,
}

/// What a test may change while the issuer runs.
#[derive(Debug, Default)]
struct Switches {
    /// Answer every request with 401, as for a wrong password.
    refusing: AtomicBool,
    /// When non-zero: seconds the registry accepts new tokens for.
    accepted_for: AtomicU64,
}

impl TokenIssuer {
    /// Starts an issuer whose tokens live `lifetime` seconds, writing its
    /// certificate into `dir`. With `credentials`, only they get tokens.
    pub fn start(dir: &Path, credentials: Option<Credentials>, lifetime: u64) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, TOKEN_ISSUER);
        let cert = params.self_signed(&key)?;
        let cert_path = dir.join("token-signer.pem");
        std::fs::write(&cert_path, cert.pem()).at("cannot write", &cert_path)?;
        let rng = ring::rand::SystemRandom::new();
        let signing =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
                .map_err(|e| Error::Unexpected(format!("cannot load the token key: {e}")))?;
        let signer = Arc::new(Signer {
            key: signing,
            cert_der: cert.der().to_vec(),
            credentials,
            lifetime,
        });
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).at("cannot bind", "127.0.0.1:0")?;
        let port = listener
            .local_addr()
            .at("cannot read", "127.0.0.1:0")?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let switches = Arc::new(Switches::default());
        let (stop2, issued2, switches2) = (stop.clone(), issued.clone(), switches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve(stream, &signer, &issued2, &switches2);
                }
            }
        });
        Ok(Self {
            port,
            cert_path,
            stop,
            issued,
            switches,
        })
    }

    /// `http://127.0.0.1:<port>/token`, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The certificate file for the registry's `rootcertbundle`.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// How many tokens it has handed out.
    pub fn tokens_issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    /// A handle that changes how this issuer answers, usable from anywhere
    /// (a progress callback, another thread) while it runs.
    pub fn control(&self) -> IssuerControl {
        IssuerControl(self.switches.clone())
    }
}

/// Changes how a running [`TokenIssuer`] answers.
#[derive(Debug, Clone)]
pub struct IssuerControl(Arc<Switches>);

impl IssuerControl {
    /// From now on, refuses every token request with 401 (as for a wrong
    /// password: credentials revoked), or serves them again.
    pub fn set_refusing(&self, refusing: bool) {
        self.0.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Tokens issued from now on are accepted by the registry for only about
    /// `seconds` (their `exp` lies [`REGISTRY_EXPIRY_LEEWAY`] before that),
    /// while `expires_in` still promises the full lifetime: a client that
    /// trusts `expires_in` meets a 401 with the token in hand, as when a
    /// registry revokes tokens early. `None` goes back to honest tokens.
    pub fn set_accepted_for(&self, seconds: Option<u64>) {
        self.0
            .accepted_for
            .store(seconds.unwrap_or(0), Ordering::SeqCst);
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn serve(
    stream: TcpStream,
    signer: &Signer,
    issued: &AtomicUsize,
    switches: &Switches,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let target = request_line.split(' ').nth(1).unwrap_or("/");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|p| p.strip_prefix("scope="))
        .map(percent_decode)
        .collect();
    let user = match (&signer.credentials, authorization.as_deref()) {
        _ if switches.refusing.load(Ordering::SeqCst) => None,
        (None, _) => Some("anonymous".to_owned()),
        (Some(expected), Some(header)) => basic_user(header, expected),
        (Some(_), None) => None,
    };
    let (status, body) = match user {
        Some(user) => {
            issued.fetch_add(1, Ordering::SeqCst);
            let now = now();
            let exp = match switches.accepted_for.load(Ordering::SeqCst) {
                0 => now + signer.lifetime,
                accepted => (now + accepted).saturating_sub(REGISTRY_EXPIRY_LEEWAY),
            };
            let token = sign(signer, &user, &scopes, exp);
            (
                "200 OK",
                serde_json::json!({
                    "token": token, "access_token": token,
                    "expires_in": signer.lifetime, "issued_at": rfc3339(now),
                })
                .to_string(),
            )
        }
        None => (
            "401 Unauthorized",
            r#"{"details":"wrong user name or password"}"#.to_owned(),
        ),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn basic_user(header: &str, expected: &Credentials) -> Option<String> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (user == expected.username && password == expected.password).then(|| user.to_owned())
}

fn sign(signer: &Signer, user: &str, scopes: &[String], exp: u64) -> String {
    let now = now();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({
                "type": kind, "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let header = serde_json::json!({
        "typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&signer.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": user, "aud": TOKEN_SERVICE,
        "exp": exp, "nbf": now.saturating_sub(10), "iat": now,
        "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rng = ring::rand::SystemRandom::new();
    let signature = signer
        .key
        .sign(&rng, signing_input.as_bytes())
        .map(|s| URL_SAFE_NO_PAD.encode(s.as_ref()))
        .unwrap_or_default();
    format!("{signing_input}.{signature}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the epoch as RFC 3339 (UTC).
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

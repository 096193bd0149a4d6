//! Where credentials come from, in order: our own credential file (mode 0600,
//! written by `cctl login`), then `~/.docker/config.json` (`auths`,
//! `credHelpers`, `credsStore` through `docker-credential-<name>`), else none.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::error::IoContext;
use crate::{DEFAULT_REGISTRY, Error, Result};

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, ***)", self.username)
    }
}

/// The credential sources, checked in order.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    /// Our own file, `<state root>/credentials.json`.
    pub own_file: Option<PathBuf>,
    /// Docker's `config.json`.
    pub docker_config: Option<PathBuf>,
    /// A credential given for this use alone (the Docker API's
    /// `X-Registry-Auth` header), used before any file.
    pub given: Option<Credential>,
}

impl CredentialStore {
    /// Our file under `state_root`, and Docker's config from `$DOCKER_CONFIG`
    /// or `~/.docker`.
    pub fn standard(state_root: &Path) -> Self {
        let docker_dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
        Self {
            own_file: Some(state_root.join("credentials.json")),
            docker_config: docker_dir.map(|d| d.join("config.json")),
            given: None,
        }
    }

    /// No credentials at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// The credential for `registry` (as written in references: `docker.io`,
    /// `127.0.0.1:5000`), if any source has one.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credential>> {
        if let Some(given) = &self.given {
            return Ok(Some(given.clone()));
        }
        if let Some(path) = &self.own_file
            && let Some(c) = auths_entry(&read_json(path)?, registry)
        {
            return Ok(Some(c));
        }
        let Some(path) = &self.docker_config else {
            return Ok(None);
        };
        let config = read_json(path)?;
        let keys = keys_for(registry);
        if let Some(helper) = keys
            .iter()
            .find_map(|k| config["credHelpers"][k.as_str()].as_str())
        {
            return run_helper(helper, registry);
        }
        if let Some(c) = auths_entry(&config, registry) {
            return Ok(Some(c));
        }
        if let Some(helper) = config["credsStore"].as_str() {
            return run_helper(helper, registry);
        }
        Ok(None)
    }

    /// Saves `credential` for `registry` in our own file (mode 0600).
    pub fn login(&self, registry: &str, credential: &Credential) -> Result<()> {
        let Some(path) = &self.own_file else {
            return Ok(());
        };
        let mut config = read_json(path)?;
        let auth = STANDARD.encode(format!("{}:{}", credential.username, credential.password));
        if !config["auths"].is_object() {
            config["auths"] = json!({});
        }
        config["auths"][registry] = json!({ "auth": auth });
        write_private(path, &config)
    }

    /// Removes `registry` from our own file; returns whether it was there.
    pub fn logout(&self, registry: &str) -> Result<bool> {
        let Some(path) = &self.own_file else {
            return Ok(false);
        };
        let mut config = read_json(path)?;
        let removed = config["auths"]
            .as_object_mut()
            .is_some_and(|a| a.remove(registry).is_some());
        if removed {
            write_private(path, &config)?;
        }
        Ok(removed)
    }
}

/// The keys a registry may appear under in Docker's config.
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == DEFAULT_REGISTRY {
        keys.insert(0, "https://index.docker.io/v1/".to_owned());
        keys.push("index.docker.io".to_owned());
    }
    keys
}

fn auths_entry(config: &Value, registry: &str) -> Option<Credential> {
    let auths = config["auths"].as_object()?;
    let entry = keys_for(registry).iter().find_map(|k| auths.get(k))?;
    if let Some(token) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        return Some(Credential {
            username: "<token>".to_owned(),
            password: token.to_owned(),
        });
    }
    if let Some(encoded) = entry["auth"].as_str() {
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some(Credential {
            username: u.to_owned(),
            password: p.to_owned(),
        });
    }
    let username = entry["username"].as_str()?;
    let password = entry["password"].as_str()?;
    Some(Credential {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

fn read_json(path: &Path) -> Result<Value> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::InvalidDocument {
            what: path.display().to_string(),
            kind: "credential file",
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(e).at("read", path),
    }
}

fn write_private(path: &Path, value: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).at("create", dir)?;
    }
    let temp = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .at("create", &temp)?;
    file.write_all(value.to_string().as_bytes())
        .and_then(|()| file.sync_all())
        .at("write", &temp)?;
    std::fs::rename(&temp, path).at("replace", path)
}

/// Runs `docker-credential-<helper> get` with the server on standard input.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Credential>> {
    let failed = |reason: String| Error::CredentialHelper {
        helper: helper.to_owned(),
        reason,
    };
    let server = if registry == DEFAULT_REGISTRY {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!("{}: {text}", output.status)));
    }
    let value: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| failed(format!("it printed no JSON: {e}")))?;
    match (value["Username"].as_str(), value["Secret"].as_str()) {
        (Some(u), Some(s)) => Ok(Some(Credential {
            username: u.to_owned(),
            password: s.to_owned(),
        })),
        _ => Err(failed("its answer lacks Username or Secret".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_writes_a_private_file_and_lookup_reads_it_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = CredentialStore {
            own_file: Some(dir.path().join("credentials.json")),
            docker_config: Some(dir.path().join("docker.json")),
            given: None,
        };
        let c = Credential {
            username: "u".into(),
            password: "p:w".into(),
        };
        store.login("127.0.0.1:5000", &c).expect("login");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("credentials.json"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.lookup("127.0.0.1:5000").expect("lookup"), Some(c));
        assert!(store.logout("127.0.0.1:5000").expect("logout"));
        assert_eq!(store.lookup("127.0.0.1:5000").expect("lookup"), None);
    }

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            json!({"auths": {"https://index.docker.io/v1/": {"auth": STANDARD.encode("a:b")}}})
                .to_string(),
        )
        .expect("write");
        let store = CredentialStore {
            own_file: None,
            docker_config: Some(path),
            given: None,
        };
        let c = store.lookup("docker.io").expect("lookup").expect("found");
        assert_eq!((c.username.as_str(), c.password.as_str()), ("a", "b"));
    }
}

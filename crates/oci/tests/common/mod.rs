//! Shared set-up for the registry tests: a client that trusts the test
//! registry, a fresh store, and facts about fixtures read from their layouts.

#![allow(dead_code)]

pub mod proxy;
pub mod resumable_registry;

use std::path::Path;

use containerization_oci::Reference;
use containerization_oci::registry::{ClientConfig, Credential, CredentialStore, RegistryClient};
use containerization_oci::store::ImageStore;
use containerization_testkit::{FixtureImage, Registry};

/// A store in a fresh folder (kept alive by the returned guard).
pub fn temp_store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ImageStore::open(dir.path()).expect("store opens");
    (dir, store)
}

/// A client for `registry`: its CA trusted, its credentials logged in (in a
/// credential file inside `dir`).
pub fn client_for(registry: &Registry, dir: &Path) -> RegistryClient {
    client_with_password(
        registry,
        dir,
        registry.credentials().map(|c| c.password.clone()),
    )
}

/// Like [`client_for`], with a chosen password (or none).
pub fn client_with_password(
    registry: &Registry,
    dir: &Path,
    password: Option<String>,
) -> RegistryClient {
    client_with(registry, dir, password, false)
}

/// Like [`client_for`], decompressing each layer as it downloads to check
/// it against its image's `diff_ids`.
#[allow(dead_code)]
pub fn client_checking_diff_ids(registry: &Registry, dir: &Path) -> RegistryClient {
    client_with(
        registry,
        dir,
        registry.credentials().map(|c| c.password.clone()),
        true,
    )
}

fn client_with(
    registry: &Registry,
    dir: &Path,
    password: Option<String>,
    verify_diff_ids: bool,
) -> RegistryClient {
    let credentials = CredentialStore {
        own_file: Some(dir.join("credentials.json")),
        docker_config: None,
        given: None,
    };
    if let (Some(c), Some(password)) = (registry.credentials(), password) {
        credentials
            .login(
                &registry.host(),
                &Credential {
                    username: c.username.clone(),
                    password,
                },
            )
            .expect("login writes the file");
    }
    let config = ClientConfig {
        extra_ca_pems: registry
            .ca()
            .map(|ca| vec![ca.ca_pem().as_bytes().to_vec()])
            .unwrap_or_default(),
        credentials,
        verify_diff_ids,
        ..ClientConfig::default()
    };
    RegistryClient::new(config).expect("client")
}

/// The digest of the fixture's image in its layout's `index.json`.
pub fn fixture_digest(image: &FixtureImage) -> String {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(image.layout().join("index.json")).expect("fixture index.json"),
    )
    .expect("fixture index.json is JSON");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == image.name())
        .and_then(|m| m["digest"].as_str())
        .expect("the fixture's entry")
        .to_owned()
}

/// Runs a command and returns its standard output, failing the test on error.
pub fn run(command: &mut std::process::Command) -> String {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Pushes `image` to `registry` as `name` (with skopeo) and returns its reference.
pub fn push_fixture(registry: &Registry, image: &FixtureImage, name: &str) -> Reference {
    registry
        .push(image, name)
        .expect("push")
        .parse()
        .expect("the pushed name parses as a reference")
}

/// The store names no image, reaches no blob and holds no partial ingest
/// (blobs no image reaches, which prune removes, may stay).
pub fn assert_store_empty(store: &ImageStore) {
    assert!(store.list().expect("list").is_empty(), "no image named");
    let usage = store.usage().expect("usage");
    let partial: Vec<_> = std::fs::read_dir(store.content().ingest_dir())
        .expect("ingest dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("sha256-"))
        .collect();
    assert!(partial.is_empty(), "no partial blob left: {partial:?}");
    assert_eq!(usage.unreachable_blobs, usage.blobs, "nothing reachable");
}

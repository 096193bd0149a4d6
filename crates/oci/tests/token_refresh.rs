//! A Bearer token that the registry stops accepting in the middle of a pull,
//! against a real docker-registry with `auth: token` and the test kit's
//! issuer: the client fetches a fresh token and the pull goes on; when the
//! issuer then refuses, the pull fails with a clear error and names nothing,
//! and a later pull finishes.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{client_for, push_fixture, temp_store};
use containerization_oci::progress::ProgressEvent;
use containerization_oci::registry::{ClientConfig, Credential, CredentialStore, RegistryClient};
use containerization_oci::{Platform, Reference};
use containerization_testkit::{Fixture, Registry, TokenIssuer, fixture};

/// Tokens accepted this long; the pull pauses longer after its config.
const ACCEPTED_FOR: u64 = 2;

/// A registry whose issuer wants the test credentials, with the layered
/// image (several layers) pushed, and issuing tokens the registry accepts
/// only [`ACCEPTED_FOR`] seconds though they claim 300.
fn registry_with_short_tokens() -> (Registry, Reference) {
    let registry = Registry::builder()
        .token_auth(Some(Registry::test_credentials()))
        .start()
        .expect("registry");
    let reference = push_fixture(
        &registry,
        &fixture(Fixture::Layered).expect("fixture"),
        "demo/layered:1",
    );
    registry
        .token_issuer()
        .expect("issuer")
        .control()
        .set_accepted_for(Some(ACCEPTED_FOR));
    (registry, reference)
}

/// A logged-in client that, once the config has arrived, waits until the
/// token in hand has expired at the registry, then runs `at_pause`. Two
/// blobs move at a time, the config first; layers finish only after the
/// config (they wait for its `diff_ids`), so the first `Finished` event is
/// the config's, and the later layers start after the pause.
fn client_pausing_after_the_config(
    registry: &Registry,
    dir: &Path,
    at_pause: impl Fn() + Send + Sync + 'static,
) -> RegistryClient {
    let credentials = CredentialStore {
        own_file: Some(dir.join("credentials.json")),
        docker_config: None,
        given: None,
    };
    let user = registry.credentials().expect("credentials");
    credentials
        .login(
            &registry.host(),
            &Credential {
                username: user.username.clone(),
                password: user.password.clone(),
            },
        )
        .expect("login");
    let paused = AtomicBool::new(false);
    RegistryClient::new(ClientConfig {
        credentials,
        concurrency: 2,
        progress: Some(Arc::new(move |event: &ProgressEvent| {
            if matches!(event, ProgressEvent::Finished { .. })
                && !paused.swap(true, Ordering::SeqCst)
            {
                std::thread::sleep(Duration::from_secs(ACCEPTED_FOR + 1));
                at_pause();
            }
        })),
        ..ClientConfig::default()
    })
    .expect("client")
}

/// Blob requests the registry answered with 401.
fn refused_blob_requests(registry: &Registry) -> usize {
    registry
        .requests()
        .iter()
        .filter(|r| r.status == 401 && r.uri.contains("/blobs/sha256:"))
        .count()
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_rejected_mid_pull_is_refreshed_and_the_pull_goes_on() {
    let (registry, reference) = registry_with_short_tokens();
    let issuer: &TokenIssuer = registry.token_issuer().expect("issuer");
    let (dir, store) = temp_store();
    let client = client_pausing_after_the_config(&registry, dir.path(), || {});
    let before = issuer.tokens_issued();
    let image = client
        .pull(&store, &reference, &amd64())
        .await
        .expect("the pull goes on with a fresh token");
    assert_eq!(image.name, reference.to_string());
    assert!(
        refused_blob_requests(&registry) >= 1,
        "the registry refused the old token for a layer"
    );
    assert!(
        issuer.tokens_issued() >= before + 2,
        "a second token was fetched ({} in all)",
        issuer.tokens_issued() - before
    );
    let resolved = store
        .resolve(&image.name, &amd64())
        .expect("the image is whole");
    assert!(!resolved.manifest.layers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_on_refresh_mid_pull_fails_cleanly_and_names_nothing() {
    let (registry, reference) = registry_with_short_tokens();
    let control = registry.token_issuer().expect("issuer").control();
    let (dir, store) = temp_store();
    let refuse = control.clone();
    let client = client_pausing_after_the_config(&registry, dir.path(), move || {
        refuse.set_refusing(true);
    });
    let result = client.pull(&store, &reference, &amd64()).await;
    let error = result.expect_err("no token, no layers");
    assert_eq!(
        error.to_string(),
        format!(
            "unauthorized: login to {} failed: wrong user name or password",
            registry.host()
        )
    );
    assert!(refused_blob_requests(&registry) >= 1, "refused mid-pull");
    // Nothing is named and no stored blob is reachable; what arrived whole
    // waits in the staging folder for the next pull.
    assert!(store.list().expect("list").is_empty(), "no image named");
    let usage = store.usage().expect("usage");
    assert_eq!(usage.unreachable_blobs, usage.blobs, "nothing reachable");

    // Once the issuer serves again, the next pull finishes the job.
    control.set_refusing(false);
    let image = client_for(&registry, dir.path())
        .pull(&store, &reference, &amd64())
        .await
        .expect("pull after the issuer serves again");
    assert_eq!(image.name, reference.to_string());
}

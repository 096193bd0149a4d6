//! Pull against a real docker-registry: every fixture from anonymous, Basic
//! and TLS registries, with the digests skopeo pushed, into a store skopeo
//! reads back.

mod common;

use std::process::Command;

use common::{client_for, fixture_digest, run, temp_store};
use containerization_oci::{Platform, Reference};
use containerization_testkit::{Compression, Fixture, Registry, fixture};

async fn pull_every_fixture(registry: &Registry) {
    let fixtures = [
        Fixture::Busybox,
        Fixture::MultiPlatform,
        Fixture::Compressed(Compression::Zstd),
        Fixture::Compressed(Compression::Uncompressed),
        Fixture::Layered,
    ];
    let (dir, store) = temp_store();
    let client = client_for(registry, dir.path());
    for (i, which) in fixtures.into_iter().enumerate() {
        let image = fixture(which).expect("fixture");
        let pushed = registry
            .push(&image, &format!("demo/f{i}:v1"))
            .expect("skopeo push");
        let reference: Reference = pushed.parse().expect("reference");
        let pulled = client
            .pull(
                &store,
                &reference,
                &"linux/amd64".parse::<Platform>().expect("platform"),
            )
            .await
            .unwrap_or_else(|e| panic!("pull {which:?}: {e}"));
        assert_eq!(pulled.name, reference.to_string());
        assert_eq!(
            pulled.digest().expect("digest").to_string(),
            fixture_digest(&image),
            "{which:?}"
        );
        let resolved = store
            .resolve(&pulled.name, &Platform::new("linux", "amd64", None))
            .expect("resolve");
        assert_eq!(resolved.config.os().to_string(), "linux");
    }
    // skopeo reads our store as an OCI layout.
    let out = tempfile::tempdir().expect("temp dir");
    let name = format!("{}/demo/f0:v1", registry.host());
    run(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(format!("oci:{}:{name}", store.content().root().display()))
        .arg(format!("dir:{}", out.path().display())));
    assert!(out.path().join("manifest.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_every_fixture_from_an_anonymous_registry() {
    pull_every_fixture(&Registry::anonymous().expect("registry")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_every_fixture_from_a_basic_auth_registry() {
    pull_every_fixture(&Registry::basic_auth().expect("registry")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_every_fixture_from_a_tls_registry() {
    pull_every_fixture(&Registry::tls().expect("registry")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_chooses_arm64_from_an_index_and_names_missing_platforms() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::MultiPlatform).expect("fixture");
    let reference: Reference = common::push_fixture(&registry, &image, "demo/multi:1");
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    let arm: Platform = "linux/arm64/v8".parse().expect("platform");
    client
        .pull(&store, &reference, &arm)
        .await
        .expect("arm64 pull");
    let resolved = store
        .resolve(&reference.to_string(), &arm)
        .expect("resolve");
    assert_eq!(resolved.config.architecture().to_string(), "arm64");
    let error = client
        .pull(
            &store,
            &reference,
            &"linux/s390x".parse().expect("platform"),
        )
        .await
        .expect_err("no s390x");
    assert_eq!(
        error.to_string(),
        "no linux/s390x image in this index; it has linux/amd64, linux/arm64"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_every_fixture_from_a_token_auth_registry() {
    let registry = Registry::token_auth().expect("registry");
    pull_every_fixture(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_go_to_a_plain_http_token_service_on_another_host() {
    let registry = Registry::builder()
        .token_auth(Some(Registry::test_credentials()))
        .token_realm_host("localhost")
        .start()
        .expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let reference: Reference = common::push_fixture(&registry, &image, "demo/busybox:1");
    let issuer = registry.token_issuer().expect("issuer");
    let before = issuer.tokens_issued();
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    let error = client
        .pull(&store, &reference, &Platform::new("linux", "amd64", None))
        .await
        .expect_err("the issuer wants the password, which is withheld");
    let text = error.to_string();
    assert!(
        text.contains("credentials were not sent") && text.contains("another host"),
        "{text}"
    );
    assert_eq!(issuer.tokens_issued(), before, "no token for the password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_cached_per_scope_and_fetched_again_when_expired() {
    let registry = Registry::builder()
        .token_auth(Some(Registry::test_credentials()))
        .token_lifetime(2)
        .start()
        .expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let reference: Reference = common::push_fixture(&registry, &image, "demo/busybox:1");
    let issuer = registry.token_issuer().expect("issuer");
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    let platform = Platform::new("linux", "amd64", None);
    let before = issuer.tokens_issued();
    client
        .pull(&store, &reference, &platform)
        .await
        .expect("pull");
    let first = issuer.tokens_issued() - before;
    assert!(
        first <= 2,
        "one token for the pull scope, reused for every blob ({first})"
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    store.untag(&reference.to_string()).expect("untag");
    store.prune().expect("prune");
    client
        .pull(&store, &reference, &platform)
        .await
        .expect("pull after the token expired");
    assert!(
        issuer.tokens_issued() > before + first,
        "a fresh token was fetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issuer_refusing_the_password_reads_as_a_wrong_password() {
    let registry = Registry::token_auth().expect("registry");
    let reference: Reference = common::push_fixture(
        &registry,
        &fixture(Fixture::Busybox).expect("fixture"),
        "demo/busybox:1",
    );
    let (dir, store) = temp_store();
    let client = common::client_with_password(&registry, dir.path(), Some("wrong".into()));
    let error = client
        .pull(&store, &reference, &Platform::new("linux", "amd64", None))
        .await
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "unauthorized: login to {} failed: wrong user name or password",
            registry.host()
        )
    );
}

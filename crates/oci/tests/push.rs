//! Push against a real docker-registry, cross-checked with skopeo: the
//! digests skopeo sees are ours, blobs already there are skipped, blobs in
//! another repository are mounted, large blobs go up in chunks.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{client_for, fixture_digest, run, temp_store};
use containerization_oci::progress::ProgressEvent;
use containerization_oci::registry::{ClientConfig, CredentialStore, RegistryClient};
use containerization_oci::{Platform, Reference};
use containerization_testkit::{Fixture, Registry, fixture};

fn skopeo_digest(registry: &Registry, reference: &str) -> String {
    let raw = run(Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw"])
        .args(registry.skopeo_args(""))
        .arg(format!("docker://{reference}")));
    containerization_oci::Digest::sha256(raw.as_bytes()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_another_registry_keeps_digests_and_skopeo_copies_it_back() {
    let source = Registry::anonymous().expect("registry");
    let destination = Registry::basic_auth().expect("registry");
    let image = fixture(Fixture::MultiPlatform).expect("fixture");
    let reference: Reference = common::push_fixture(&source, &image, "demo/multi:1");
    let (dir, store) = temp_store();
    client_for(&source, dir.path())
        .pull_all_platforms(&store, &reference)
        .await
        .expect("pull");
    let target: Reference = format!("{}/copied/multi:2", destination.host())
        .parse()
        .expect("ref");
    let client = client_for(&destination, dir.path());
    let digest = client
        .push(&store, &reference.to_string(), &target)
        .await
        .expect("push");
    assert_eq!(digest.to_string(), fixture_digest(&image));
    assert_eq!(
        skopeo_digest(&destination, &target.to_string()),
        digest.to_string()
    );
    // skopeo copies the image back out with the digest we pushed.
    let out = tempfile::tempdir().expect("temp dir");
    run(Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--all",
            "--quiet",
            "--preserve-digests",
        ])
        .args(destination.skopeo_args("src-"))
        .arg(format!("docker://{target}"))
        .arg(format!("oci:{}:back", out.path().display())));
    let ours = store
        .resolve(
            &reference.to_string(),
            &Platform::new("linux", "amd64", None),
        )
        .expect("resolve");
    let back: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).expect("index"))
            .expect("json");
    // With --all --preserve-digests skopeo keeps the index as it is.
    assert_eq!(back["manifests"][0]["digest"], fixture_digest(&image));
    assert_eq!(client.list_tags(&target).await.expect("tags"), ["2"]);

    // An index pulled for one platform goes up as that platform's manifest.
    let (dir2, store2) = temp_store();
    client_for(&source, dir2.path())
        .pull(&store2, &reference, &Platform::new("linux", "amd64", None))
        .await
        .expect("pull");
    let single = target.with_tag("amd64").expect("tag");
    let digest = client
        .push(&store2, &reference.to_string(), &single)
        .await
        .expect("push");
    assert_eq!(
        digest.to_string(),
        ours.manifest_descriptor.digest().to_string()
    );
}

fn recording_client(
    registry: &Registry,
    config: ClientConfig,
) -> (RegistryClient, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let config = ClientConfig {
        extra_ca_pems: registry
            .ca()
            .map(|ca| vec![ca.ca_pem().as_bytes().to_vec()])
            .unwrap_or_default(),
        credentials: CredentialStore::none(),
        progress: Some(Arc::new(move |e: &ProgressEvent| {
            sink.lock().expect("lock").push(e.clone())
        })),
        ..config
    };
    (RegistryClient::new(config).expect("client"), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_skips_existing_blobs_mounts_across_repositories_and_chunks_large_ones() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let reference: Reference = common::push_fixture(&registry, &image, "demo/busybox:1");
    let (_dir, store) = temp_store();
    // Chunked: every blob over 1 KiB goes up in 64 KiB PATCHes.
    let (client, events) = recording_client(
        &registry,
        ClientConfig {
            monolithic_limit: 1024,
            chunk_size: 64 << 10,
            ..ClientConfig::default()
        },
    );
    let platform = Platform::new("linux", "amd64", None);
    client
        .pull(&store, &reference, &platform)
        .await
        .expect("pull");
    // Same repository: everything is there already.
    events.lock().expect("lock").clear();
    client
        .push(
            &store,
            &reference.to_string(),
            &reference.with_tag("2").expect("tag"),
        )
        .await
        .expect("push");
    let skipped = |why: &str| {
        events
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| matches!(e, ProgressEvent::Skipped { why: w, .. } if *w == why))
            .count()
    };
    assert_eq!(skipped("exists"), 2, "config and layer exist");
    // Another repository of the same registry: mounted.
    events.lock().expect("lock").clear();
    let other: Reference = format!("{}/other/busybox:1", registry.host())
        .parse()
        .expect("ref");
    client
        .push(&store, &reference.to_string(), &other)
        .await
        .expect("push");
    assert_eq!(skipped("mounted"), 2, "config and layer mounted");
    // Another registry: uploaded, the layer in chunks.
    let second = Registry::anonymous().expect("registry");
    let (client2, events2) = recording_client(
        &second,
        ClientConfig {
            monolithic_limit: 1024,
            chunk_size: 64 << 10,
            ..ClientConfig::default()
        },
    );
    let far: Reference = format!("{}/far/busybox:1", second.host())
        .parse()
        .expect("ref");
    let digest = client2
        .push(&store, &reference.to_string(), &far)
        .await
        .expect("push");
    let advanced = events2
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| matches!(e, ProgressEvent::Advanced { .. }))
        .count();
    assert!(
        advanced > 2,
        "the layer went up in several PATCHes ({advanced})"
    );
    assert_eq!(skopeo_digest(&second, &far.to_string()), digest.to_string());
    // And it pulls back whole.
    let (_dir2, store2) = temp_store();
    client2
        .pull(&store2, &far, &platform)
        .await
        .expect("pull back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_list_follows_link_pages_and_manifests_delete() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let reference: Reference = common::push_fixture(&registry, &image, "demo/tags:t000");
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    client
        .pull(&store, &reference, &Platform::new("linux", "amd64", None))
        .await
        .expect("pull");
    for i in 1..=104 {
        client
            .push(
                &store,
                &reference.to_string(),
                &reference.with_tag(&format!("t{i:03}")).expect("tag"),
            )
            .await
            .expect("push");
    }
    let tags = client.list_tags(&reference).await.expect("tags");
    assert_eq!(tags.len(), 105, "more than one page of 100");
    let digest = store
        .get(&reference.to_string())
        .expect("image")
        .digest()
        .expect("digest");
    client
        .delete_manifest(&reference.with_digest(digest))
        .await
        .expect("delete");
    let error = client.fetch_manifest(&reference).await.expect_err("gone");
    assert!(
        error
            .to_string()
            .starts_with("manifest unknown: no tag 't000'"),
        "{error}"
    );
}

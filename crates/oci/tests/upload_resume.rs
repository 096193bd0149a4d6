//! A chunked upload broken in the middle of a `PATCH`. Against a registry
//! that keeps its sessions resumable, the client asks the upload URL where
//! the upload stands and goes on from that `Range`, without sending the blob
//! again. Against a real docker-registry, whose signed `_state` no longer
//! matches what it holds after such a break, the client opens a new session
//! and sends the blob again; the push succeeds whole either way.

mod common;

use std::sync::atomic::Ordering;

use common::proxy::upload_cutting_proxy;
use common::resumable_registry::resumable_registry;
use common::{client_for, push_fixture, temp_store};
use containerization_oci::registry::{ClientConfig, RegistryClient};
use containerization_oci::{Platform, Reference};
use containerization_testkit::{Fixture, Registry, fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_cut_mid_patch_asks_where_it_stands_then_goes_on() {
    let source = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let reference = push_fixture(&source, &image, "demo/busybox:1");
    let (dir, store) = temp_store();
    let platform = Platform::new("linux", "amd64", None);
    client_for(&source, dir.path())
        .pull(&store, &reference, &platform)
        .await
        .expect("pull");

    // The destination sits behind a proxy that breaks the first connection
    // after 300 KiB went up: inside the busybox layer's 64 KiB PATCHes.
    let destination = Registry::anonymous().expect("registry");
    let (port, cut) = upload_cutting_proxy(destination.port(), 300 << 10).await;
    let client = RegistryClient::new(ClientConfig {
        monolithic_limit: 1024,
        chunk_size: 64 << 10,
        concurrency: 1,
        ..ClientConfig::default()
    })
    .expect("client");
    let target: Reference = format!("127.0.0.1:{port}/far/busybox:1")
        .parse()
        .expect("reference");
    let digest = client
        .push(&store, &reference.to_string(), &target)
        .await
        .expect("push goes on after the cut");
    assert!(cut.load(Ordering::SeqCst), "the proxy cut an upload");

    // The client asked the upload URL where to go on, then (refused: the
    // session's state is stale) opened a new session for the layer.
    let requests = destination.requests();
    let uploads: Vec<_> = requests
        .iter()
        .filter(|r| r.uri.starts_with("/v2/far/busybox/blobs/uploads/"))
        .collect();
    let status_asks = uploads.iter().filter(|r| r.method == "GET").count();
    assert!(status_asks >= 1, "an upload status GET: {uploads:?}");
    let sessions = uploads
        .iter()
        .filter(|r| r.method == "POST" && r.status == 202)
        .count();
    assert_eq!(
        sessions, 3,
        "config, layer, and the layer again: {uploads:?}"
    );

    // And the blobs are whole: the image pulls back, digests checked.
    let (_dir2, store2) = temp_store();
    let pulled = client
        .pull(&store2, &target, &platform)
        .await
        .expect("pull back");
    assert_eq!(pulled.digest().expect("digest"), digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_broken_mid_patch_goes_on_from_the_registrys_range() {
    let source = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let reference = push_fixture(&source, &image, "demo/busybox:1");
    let (dir, store) = temp_store();
    let platform = Platform::new("linux", "amd64", None);
    client_for(&source, dir.path())
        .pull(&store, &reference, &platform)
        .await
        .expect("pull");
    let layer = store
        .resolve(&reference.to_string(), &platform)
        .expect("resolve")
        .manifest
        .layers()[0]
        .clone();
    let chunk = 64usize << 10;
    assert!(
        layer.size() > 4 * chunk as u64,
        "the layer takes several chunks"
    );

    // The third PATCH (of the layer: the config goes up in one PUT) loses
    // its second half and its answer.
    let registry = resumable_registry(3).await;
    let client = RegistryClient::new(ClientConfig {
        monolithic_limit: 4096,
        chunk_size: chunk,
        concurrency: 1,
        ..ClientConfig::default()
    })
    .expect("client");
    let target: Reference = format!("127.0.0.1:{}/far/busybox:1", registry.port)
        .parse()
        .expect("reference");
    client
        .push(&store, &reference.to_string(), &target)
        .await
        .expect("push goes on after the break");

    let seen = registry.seen();
    assert_eq!(
        seen.blobs.len(),
        2,
        "config and layer arrived whole: {seen:?}"
    );
    assert!(seen.blobs.contains(&layer.digest().to_string()), "{seen:?}");
    assert_eq!(seen.manifests, 1);
    assert!(seen.status_requests >= 1, "asked where to go on: {seen:?}");
    assert_eq!(
        seen.sessions, 2,
        "one session each, none started over: {seen:?}"
    );
    assert!(
        seen.patched_bytes < layer.size() as usize + chunk,
        "only the lost half chunk went up twice: {seen:?}"
    );
}

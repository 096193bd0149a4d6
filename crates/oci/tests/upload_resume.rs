//! A chunked upload broken in the middle of a `PATCH`, against a real
//! docker-registry: the client asks the upload URL where the upload stands,
//! and since this registry's signed `_state` no longer matches what it holds,
//! opens a new session and sends the blob again; the push succeeds whole.

mod common;

use std::sync::atomic::Ordering;

use common::proxy::upload_cutting_proxy;
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

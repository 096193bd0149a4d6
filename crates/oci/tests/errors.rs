//! Bad input gives a clear error and leaves the store as it was: wrong
//! password, unknown tag, a blob the registry serves with wrong bytes, a
//! manifest that is not JSON, an unknown media type. A connection cut in the
//! middle of a blob is resumed. Two pulls of one image at once both succeed.

mod common;

use std::sync::atomic::Ordering;

use common::proxy::{canned_registry, cutting_proxy};
use common::{assert_store_empty, client_for, client_with_password, fixture_digest, temp_store};
use containerization_oci::store::ImageStore;
use containerization_oci::{Platform, Reference};
use containerization_testkit::{Fixture, Registry, fixture};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_as_such() {
    let registry = Registry::basic_auth().expect("registry");
    let reference: Reference = common::push_fixture(
        &registry,
        &fixture(Fixture::Busybox).expect("fixture"),
        "demo/busybox:1",
    );
    let (dir, store) = temp_store();
    let client = client_with_password(&registry, dir.path(), Some("wrong".into()));
    let error = client
        .pull(&store, &reference, &amd64())
        .await
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "unauthorized: login to {} failed: wrong user name or password",
            registry.host()
        )
    );
    assert_store_empty(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tag_is_reported_with_the_repository() {
    let registry = Registry::anonymous().expect("registry");
    registry
        .push(
            &fixture(Fixture::Busybox).expect("fixture"),
            "demo/busybox:1",
        )
        .expect("push");
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    let reference: Reference = format!("{}/demo/busybox:nope", registry.host())
        .parse()
        .expect("ref");
    let error = client
        .pull(&store, &reference, &amd64())
        .await
        .expect_err("unknown");
    assert_eq!(
        error.to_string(),
        format!(
            "manifest unknown: no tag 'nope' in {}/demo/busybox",
            registry.host()
        )
    );
    assert_store_empty(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_rejects_blob_with_wrong_digest() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let reference: Reference = common::push_fixture(&registry, &image, "demo/busybox:1");
    // Corrupt the layer (the biggest blob) in the registry's storage.
    let mut blobs = Vec::new();
    let mut stack = vec![registry.storage_dir().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "data") {
                blobs.push((std::fs::metadata(&path).expect("stat").len(), path));
            }
        }
    }
    blobs.sort();
    let (_, layer) = blobs.last().expect("a blob");
    let mut bytes = std::fs::read(layer).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(layer, bytes).expect("write");

    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    let error = client
        .pull(&store, &reference, &amd64())
        .await
        .expect_err("corrupt");
    assert!(
        error.to_string().contains("has the wrong content"),
        "{error}"
    );
    assert!(store.list().expect("list").is_empty());
    assert!(
        std::fs::read_dir(store.content().ingest_dir())
            .expect("ingest")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("sha256-"))
    );
    let _ = fixture_digest(&image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_blob_is_resumed() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    registry.push(&image, "demo/busybox:1").expect("push");
    let (port, cut) = cutting_proxy(registry.port(), 300_000).await;
    let reference: Reference = format!("127.0.0.1:{port}/demo/busybox:1")
        .parse()
        .expect("ref");
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    let image_pulled = client
        .pull(&store, &reference, &amd64())
        .await
        .expect("pull survives the cut");
    assert!(cut.load(Ordering::SeqCst), "the proxy did cut a connection");
    assert_eq!(
        image_pulled.digest().expect("digest").to_string(),
        fixture_digest(&image)
    );
    let resolved = store
        .resolve(&reference.to_string(), &amd64())
        .expect("resolve");
    let target = tempfile::tempdir().expect("temp dir");
    containerization_oci::layer::unpack_image(
        store.content(),
        &resolved.manifest,
        target.path(),
        &Default::default(),
    )
    .expect("the resumed layer unpacks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_is_not_json_is_refused() {
    let port = canned_registry(
        "application/vnd.oci.image.manifest.v1+json",
        "this is not json",
    )
    .await;
    let reference: Reference = format!("127.0.0.1:{port}/bad/json:1").parse().expect("ref");
    let (dir, store) = temp_store();
    let client = client_for(&Registry::anonymous().expect("registry"), dir.path());
    let error = client
        .pull(&store, &reference, &amd64())
        .await
        .expect_err("not JSON");
    assert!(
        error.to_string().contains("is not a valid JSON manifest"),
        "{error}"
    );
    assert_store_empty(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_larger_than_the_limit_is_refused_without_being_held() {
    let padding = "x".repeat(containerization_oci::limits::MAX_MANIFEST_BYTES as usize);
    let body: &'static str = Box::leak(
        format!(r#"{{"schemaVersion":2,"annotations":{{"pad":"{padding}"}}}}"#).into_boxed_str(),
    );
    let port = canned_registry("application/vnd.oci.image.manifest.v1+json", body).await;
    let reference: Reference = format!("127.0.0.1:{port}/big/manifest:1")
        .parse()
        .expect("ref");
    let (dir, store) = temp_store();
    let client = client_for(&Registry::anonymous().expect("registry"), dir.path());
    let error = client
        .pull(&store, &reference, &amd64())
        .await
        .expect_err("too large");
    assert!(
        error.to_string().contains("is larger than 4194304 bytes"),
        "{error}"
    );
    assert_store_empty(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_media_type_is_refused() {
    let port = canned_registry(
        "application/vnd.example.thing+json",
        r#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}"#,
    )
    .await;
    let reference: Reference = format!("127.0.0.1:{port}/bad/type:1").parse().expect("ref");
    let (dir, store) = temp_store();
    let client = client_for(&Registry::anonymous().expect("registry"), dir.path());
    let error = client
        .pull(&store, &reference, &amd64())
        .await
        .expect_err("unknown type");
    assert!(
        error
            .to_string()
            .starts_with("unsupported media type \"application/vnd.example.thing+json\""),
        "{error}"
    );
    assert_store_empty(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pulls_of_one_image_at_once_both_succeed() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Layered).expect("fixture");
    let reference: Reference = common::push_fixture(&registry, &image, "demo/layered:1");
    let dir = tempfile::tempdir().expect("temp dir");
    let first = ImageStore::open(dir.path()).expect("store");
    let second = ImageStore::open(dir.path()).expect("store");
    let (c1, c2) = (
        client_for(&registry, dir.path()),
        client_for(&registry, dir.path()),
    );
    let platform = amd64();
    let (a, b) = tokio::join!(
        c1.pull(&first, &reference, &platform),
        c2.pull(&second, &reference, &platform)
    );
    a.expect("first pull");
    b.expect("second pull");
    assert_eq!(first.list().expect("list").len(), 1);
    let usage = first.usage().expect("usage");
    assert_eq!(usage.unreachable_blobs, 0);
    assert_eq!(
        first.prune().expect("prune").removed.len(),
        0,
        "GC keeps every blob of a named image"
    );
    first.untag(&reference.to_string()).expect("untag");
    assert_eq!(first.prune().expect("prune").removed.len(), usage.blobs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_answers_are_retried_honouring_retry_after() {
    const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
    let port = common::proxy::scripted_registry(vec![
        ("429 Too Many Requests", "Retry-After: 1\r\n", "slow down"),
        ("503 Service Unavailable", "", "busy"),
        ("200 OK", "", MANIFEST),
    ])
    .await;
    let reference: Reference = format!("127.0.0.1:{port}/busy/image:1")
        .parse()
        .expect("ref");
    let dir = tempfile::tempdir().expect("temp dir");
    let client = client_for(&Registry::anonymous().expect("registry"), dir.path());
    let started = std::time::Instant::now();
    let fetched = client
        .fetch_manifest(&reference)
        .await
        .expect("third answer is good");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(fetched.bytes, MANIFEST.as_bytes());
}

/// Names, in `store`, a copy of image `name` whose config lists a wrong
/// `diff_id` for its first layer.
fn with_wrong_diff_id(store: &ImageStore, name: &str, new_name: &str) {
    let resolved = store.resolve(name, &amd64()).expect("resolve");
    let mut config: serde_json::Value =
        serde_json::from_slice(&resolved.config_bytes).expect("config");
    config["rootfs"]["diff_ids"][0] = containerization_oci::Digest::sha256(b"other")
        .to_string()
        .into();
    let config_bytes = serde_json::to_vec(&config).expect("json");
    let config_digest = store
        .content()
        .put_new_blob(&config_bytes)
        .expect("config blob");
    let mut manifest = serde_json::to_value(&resolved.manifest).expect("json");
    manifest["config"]["digest"] = config_digest.to_string().into();
    manifest["config"]["size"] = config_bytes.len().into();
    let bytes = serde_json::to_vec(&manifest).expect("json");
    let digest = store.content().put_new_blob(&bytes).expect("manifest blob");
    let descriptor = serde_json::from_value(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest.to_string(),
        "size": bytes.len(),
    }))
    .expect("descriptor");
    store.set(new_name, &descriptor).expect("name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_that_do_not_match_their_diff_ids_are_refused_where_they_are_decompressed() {
    let registry = Registry::anonymous().expect("registry");
    let reference: Reference = common::push_fixture(
        &registry,
        &fixture(Fixture::Busybox).expect("fixture"),
        "demo/busybox:1",
    );
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    client
        .pull(&store, &reference, &amd64())
        .await
        .expect("pull");
    let bad: Reference = format!("{}/demo/lying:1", registry.host())
        .parse()
        .expect("ref");
    with_wrong_diff_id(&store, &reference.to_string(), &bad.to_string());

    // Unpack checks the diff_ids while decompressing, even of a layer whose
    // diff_id (another one) was checked before.
    let unpack = |store: &ImageStore, name: &str| {
        let target = tempfile::tempdir().expect("temp dir");
        let resolved = store.resolve(name, &amd64()).expect("resolve");
        containerization_oci::layer::unpack_resolved(
            store.content(),
            &resolved,
            target.path(),
            &Default::default(),
        )
    };
    unpack(&store, &reference.to_string()).expect("the true image unpacks");
    let error = unpack(&store, &bad.to_string()).expect_err("diff_id mismatch");
    assert!(error.to_string().contains("uncompresses to"), "{error}");

    // A pull does not decompress: the lying image's blobs are all whole,
    // so it is pulled, and its unpack is refused.
    client
        .push(&store, &bad.to_string(), &bad)
        .await
        .expect("push the lying image");
    let (dir2, fresh) = temp_store();
    client_for(&registry, dir2.path())
        .pull(&fresh, &bad, &amd64())
        .await
        .expect("pulled: every blob matches its digest");
    let error = unpack(&fresh, &bad.to_string()).expect_err("diff_id mismatch");
    assert!(error.to_string().contains("uncompresses to"), "{error}");

    // A pull asked to check diff_ids refuses it before anything is named.
    let (dir3, checking) = temp_store();
    let error = common::client_checking_diff_ids(&registry, dir3.path())
        .pull(&checking, &bad, &amd64())
        .await
        .expect_err("diff_id mismatch");
    assert!(
        error.to_string().contains("but the image config expects"),
        "{error}"
    );
    assert!(checking.list().expect("list").is_empty());
}

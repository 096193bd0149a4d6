//! Cross-repository mounts on push, seen in a real registry's request log:
//! a blob the store knows to be in another repository of the same registry
//! is mounted from there, not uploaded again.

mod common;

use common::{client_for, push_fixture, temp_store};
use containerization_oci::{Platform, Reference};
use containerization_testkit::{Fixture, LoggedRequest, Registry, fixture};

/// The upload requests (`/v2/<repository>/blobs/uploads/…`) the registry answered.
fn uploads(registry: &Registry, repository: &str) -> Vec<LoggedRequest> {
    let prefix = format!("/v2/{repository}/blobs/uploads/");
    registry
        .requests()
        .into_iter()
        .filter(|r| r.uri.starts_with(&prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_mounts_blobs_from_the_repository_they_were_pulled_from() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let source = push_fixture(&registry, &image, "demo/source:1");
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    let platform = Platform::new("linux", "amd64", None);
    client.pull(&store, &source, &platform).await.expect("pull");
    // Named on another registry: only the store's records say where the
    // blobs are on this one.
    let local = "example.com/local/copy:1";
    store.tag(&source.to_string(), local).expect("tag");
    store.untag(&source.to_string()).expect("untag");

    let target: Reference = format!("{}/demo/target:1", registry.host())
        .parse()
        .expect("reference");
    client.push(&store, local, &target).await.expect("push");
    let requests = uploads(&registry, "demo/target");
    let mounted = requests
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.uri.contains("mount=sha256:")
                && r.uri.contains("from=demo/source")
                && r.status == 201
        })
        .count();
    assert_eq!(mounted, 2, "config and layer mounted: {requests:?}");
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "PATCH" || r.method == "PUT"),
        "no blob uploaded: {requests:?}"
    );
    // The mounted image is whole: it pulls back into a fresh store.
    let (_dir2, store2) = temp_store();
    client
        .pull(&store2, &target, &platform)
        .await
        .expect("pull the mounted image");

    // A store without the records uploads the blobs: the records made the
    // difference above.
    std::fs::remove_dir_all(store.content().ingest_dir().join("sources")).expect("forget");
    let third: Reference = format!("{}/demo/third:1", registry.host())
        .parse()
        .expect("reference");
    client.push(&store, local, &third).await.expect("push");
    let requests = uploads(&registry, "demo/third");
    let put = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 201)
        .count();
    assert_eq!(put, 2, "config and layer uploaded: {requests:?}");
    assert!(
        !requests.iter().any(|r| r.uri.contains("mount=")),
        "nothing to mount from: {requests:?}"
    );
}

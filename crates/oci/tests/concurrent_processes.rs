//! Two OS processes pulling the same image into the same store at once, from
//! a real docker-registry: both succeed, and the store is left consistent
//! (one `index.json` entry, every blob whole and matching its digest, no
//! partial ingest file, nothing unreachable).
//!
//! The processes are this test binary run again with `--ignored --exact
//! pull_as_a_child_process`, the ignored test below, which pulls what the
//! environment names.

mod common;

use std::path::Path;
use std::process::Command;

use common::temp_store;
use containerization_oci::registry::{ClientConfig, RegistryClient};
use containerization_oci::store::{ImageStore, digest_of};
use containerization_oci::{Algorithm, Digest, Platform, Reference};
use containerization_testkit::{Fixture, Registry, fixture};

const STATE_ROOT: &str = "CZ_TEST_CHILD_STATE_ROOT";
const REFERENCE: &str = "CZ_TEST_CHILD_REFERENCE";

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

/// The child's side: pull the image the parent names into its store.
#[test]
#[ignore = "a child process of two_processes_pulling_one_image_leave_one_consistent_store"]
fn pull_as_a_child_process() {
    let root = std::env::var(STATE_ROOT).expect("the parent names a state root");
    let reference: Reference = std::env::var(REFERENCE)
        .expect("the parent names a reference")
        .parse()
        .expect("reference");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = ImageStore::open(Path::new(&root)).expect("store");
    let client = RegistryClient::new(ClientConfig::default()).expect("client");
    runtime
        .block_on(client.pull(&store, &reference, &amd64()))
        .expect("pull");
}

#[test]
fn two_processes_pulling_one_image_leave_one_consistent_store() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Layered).expect("fixture");
    let reference = common::push_fixture(&registry, &image, "demo/layered:1");
    let (dir, store) = temp_store();
    let me = std::env::current_exe().expect("this test binary");
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&me)
                .args(["--ignored", "--exact", "pull_as_a_child_process"])
                .env(STATE_ROOT, dir.path())
                .env(REFERENCE, reference.to_string())
                .spawn()
                .expect("start a child")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("child ends");
        assert!(output.status.success(), "a child pull failed");
    }

    // One name, for the image's root.
    let images = store.list().expect("list");
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].name, reference.to_string());
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(store.content().root().join("index.json")).expect("index.json"),
    )
    .expect("index.json is JSON");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );
    // Every blob matches its name.
    let blobs = store.content().root().join("blobs").join("sha256");
    let mut count = 0;
    for entry in std::fs::read_dir(&blobs).expect("blobs") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let expected: Digest = format!("sha256:{name}").parse().expect("digest name");
        let actual = digest_of(
            &mut std::fs::File::open(&path).expect("open blob"),
            Algorithm::Sha256,
        )
        .expect("hash");
        assert_eq!(actual, expected, "{}", path.display());
        count += 1;
    }
    // Every blob is reached from the name, and nothing is half written.
    store
        .resolve(&reference.to_string(), &amd64())
        .expect("the manifest and config resolve");
    let usage = store.usage().expect("usage");
    assert_eq!(usage.blobs, count);
    assert_eq!(usage.unreachable_blobs, 0);
    let partial: Vec<_> = std::fs::read_dir(store.content().ingest_dir())
        .expect("ingest")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sha256-"))
        .collect();
    assert!(partial.is_empty(), "partial ingest files left: {partial:?}");
}

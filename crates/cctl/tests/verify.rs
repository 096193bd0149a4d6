//! Nothing unverified is used: stored blobs that rot are refused where they
//! are read, reported by `cctl image check` and repaired by a pull; a layer
//! whose content does not match its config's diff_id pulls (its blob is
//! whole) but builds nothing; and a layer checked once is not decompressed
//! again to be checked.

mod support;

use std::path::{Path, PathBuf};

use containerization_oci::store::ImageStore;
use containerization_oci::{Digest, Platform};
use support::{Ran, World};

/// The image's config blob and layer blobs in the world's store.
fn blobs(world: &World, image: &str) -> (Digest, Vec<Digest>) {
    let store = ImageStore::open(world.root.path()).expect("store");
    let resolved = store.resolve(image, &Platform::host()).expect("resolve");
    let config = Digest::try_from(resolved.manifest.config().digest()).expect("digest");
    let layers = resolved
        .manifest
        .layers()
        .iter()
        .map(|l| Digest::try_from(l.digest()).expect("digest"))
        .collect();
    (config, layers)
}

fn blob_path(world: &World, digest: &Digest) -> PathBuf {
    world
        .root
        .path()
        .join("content/blobs")
        .join(digest.algorithm().name())
        .join(digest.hex())
}

/// Flips one bit of the byte at `at` (from the end when negative).
fn flip(path: &Path, at: i64) {
    let mut bytes = std::fs::read(path).expect("read blob");
    let index = if at < 0 {
        bytes.len() - at.unsigned_abs() as usize
    } else {
        at as usize
    };
    bytes[index] ^= 0x04;
    std::fs::write(path, bytes).expect("write blob");
}

/// The built bases in the world's root file system cache.
fn bases(world: &World) -> Vec<String> {
    match std::fs::read_dir(world.root.path().join("rootfs")) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".ext4"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `cctl image check --format json`: its report, and whether it passed.
fn check(world: &World) -> (serde_json::Value, Ran) {
    let ran = world.cctl(&["image", "check", "--format", "json"]);
    let report = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran:?}"));
    (report, ran)
}

/// `cctl create` builds the base (if missing) without starting a VM.
fn create(world: &World, image: &str) -> Ran {
    let ran = world.cctl(&["create", "--name", "probe", image, "true"]);
    without_probe(world, ran)
}

/// `ran`, once the container `probe` it made (if it did) is removed.
fn without_probe(world: &World, ran: Ran) -> Ran {
    if ran.code == 0 {
        let removed = world.cctl(&["rm", "probe"]);
        assert_eq!(removed.code, 0, "{removed:?}");
    }
    ran
}

/// `cctl create` outside the test's namespace (where the registry is), so
/// it may pull, with the debug log on; removes the container it made.
fn create_on_host(world: &World, image: &str) -> Ran {
    let ran: Ran = std::process::Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args([
            "create",
            "--name",
            "probe",
            "--network",
            "none",
            image,
            "true",
        ])
        .env("CZ_ROOT", world.root.path())
        .env("CZ_LOG", "debug")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cctl runs")
        .into();
    without_probe(world, ran)
}

#[test]
fn a_new_images_base_is_written_while_it_pulls() {
    let world = World::new();
    let fresh = world
        .registry
        .push(
            &containerization_testkit::fixture(containerization_testkit::Fixture::Busybox)
                .expect("busybox fixture"),
            "test/fresh:1",
        )
        .expect("push");
    // Nothing of it is stored: its blobs download, and the base is
    // written from them as they arrive.
    let removed = world.cctl(&["image", "rm", &world.image]);
    assert_eq!(removed.code, 0, "{removed:?}");
    let made = create_on_host(&world, &fresh);
    assert_eq!(made.code, 0, "{made:?}");
    let built = |ran: &Ran| {
        ran.stderr
            .matches("built the base root file system while pulling")
            .count()
    };
    assert_eq!(built(&made), 1, "{made:?}");
    // Built once: the container's creation found it.
    assert_eq!(
        made.stderr.matches("built a base root file system").count(),
        1,
        "{made:?}"
    );
    assert_eq!(bases(&world).len(), 1);
    assert!(made.stderr.contains("bytes_before_stored="), "{made:?}");
    // A stored image is not pulled, and its base is not built again.
    let again = create_on_host(&world, &fresh);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(built(&again), 0, "{again:?}");
    assert_eq!(bases(&world).len(), 1);
}

#[test]
fn rotten_blobs_are_refused_where_read_reported_by_check_and_repaired_by_a_pull() {
    let world = World::new();
    let (config, layers) = blobs(&world, &world.image);
    let layer = layers.last().expect("a layer").clone();

    // A fresh pull decompressed nothing: the first check decompresses
    // every layer, the second none.
    let (report, ran) = check(&world);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(report["decompressed"], layers.len(), "{report}");
    assert_eq!(report["known"], 0, "{report}");
    let (report, _) = check(&world);
    assert_eq!(report["decompressed"], 0, "{report}");
    assert_eq!(report["known"], layers.len(), "{report}");

    // (which blob, which byte, whether `run` meets it before `check` does)
    let cases = [
        (&layer, 100, true),
        (&layer, -6, false), // the gzip trailer's CRC
        (&config, 10, true),
    ];
    for (blob, at, run_first) in cases {
        let shown = blob.to_string();
        flip(&blob_path(&world, blob), at);
        let refused = |ran: &Ran| {
            assert_eq!(ran.code, 125, "{ran:?}");
            assert!(ran.stderr.contains(&shown), "names the blob: {ran:?}");
        };
        if run_first {
            let ran = world.run(&[], &["true"]);
            refused(&ran);
            assert!(ran.stderr.contains("is damaged"), "{ran:?}");
        }
        let (report, ran) = check(&world);
        assert_ne!(ran.code, 0, "{ran:?}");
        let problems = report["problems"].as_array().expect("problems");
        assert!(
            problems.iter().any(|p| p["digest"] == shown.as_str()),
            "{report}"
        );
        if !run_first {
            assert!(ran.stdout.contains("is damaged"), "{ran:?}");
            refused(&create(&world, &world.image));
        }
        assert!(
            bases(&world).is_empty(),
            "nothing built: {:?}",
            bases(&world)
        );
        let pulled = world.cctl_on_host(&["image", "pull", &world.image]);
        assert_eq!(pulled.code, 0, "{pulled:?}");
        let (report, ran) = check(&world);
        assert_eq!(ran.code, 0, "repaired: {report}");
    }
    let ran = world.run(&[], &["sh", "-c", "busybox | head -1"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("BusyBox"), "{ran:?}");
    assert_eq!(bases(&world).len(), 1);
}

#[test]
fn a_layer_that_lies_about_its_diff_id_pulls_but_builds_nothing() {
    let world = World::new();
    // The busybox image with a config whose first diff_id is wrong, pushed
    // to the registry as another image.
    let store = ImageStore::open(world.root.path()).expect("store");
    let resolved = store
        .resolve(&world.image, &Platform::host())
        .expect("resolve");
    let mut config: serde_json::Value =
        serde_json::from_slice(&resolved.config_bytes).expect("config");
    config["rootfs"]["diff_ids"][0] = Digest::sha256(b"other").to_string().into();
    let config_bytes = serde_json::to_vec(&config).expect("json");
    let config_digest = store.content().put_new_blob(&config_bytes).expect("put");
    let mut manifest = serde_json::to_value(&resolved.manifest).expect("json");
    manifest["config"]["digest"] = config_digest.to_string().into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
    let digest = store.content().put_new_blob(&manifest_bytes).expect("put");
    let descriptor = serde_json::from_value(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest.to_string(),
        "size": manifest_bytes.len(),
    }))
    .expect("descriptor");
    let lying = format!("{}/test/lying:1", world.registry.host());
    store.set(&lying, &descriptor).expect("name");
    let pushed = world.cctl_on_host(&["image", "push", &lying]);
    assert_eq!(pushed.code, 0, "{pushed:?}");
    let removed = world.cctl(&["image", "rm", &lying]);
    assert_eq!(removed.code, 0, "{removed:?}");

    let layer = Digest::try_from(resolved.manifest.layers()[0].digest()).expect("digest");
    let names_the_layer = |ran: &Ran| {
        assert_ne!(ran.code, 0, "{ran:?}");
        assert!(ran.stderr.contains(&layer.to_string()), "{ran:?}");
        assert!(ran.stderr.contains("uncompresses to"), "{ran:?}");
    };
    // A create that pulls it writes its base while the layers download,
    // and keeps none: the layer is refused there too, and named.
    let made = create_on_host(&world, &lying);
    names_the_layer(&made);
    assert!(bases(&world).is_empty(), "{:?}", bases(&world));

    // Its blobs are all whole: the pull succeeds.
    let pulled = world.cctl_on_host(&["image", "pull", &lying]);
    assert_eq!(pulled.code, 0, "{pulled:?}");
    // The true image's base, built first, records its layer as checked
    // against the true diff_id; that does not vouch for the lie.
    let made = create(&world, &world.image);
    assert_eq!(made.code, 0, "{made:?}");
    assert_eq!(bases(&world).len(), 1);
    let ran = world.cctl(&["run", "--rm", &lying, "true"]);
    names_the_layer(&ran);
    assert_eq!(ran.code, 125, "{ran:?}");
    assert_eq!(bases(&world).len(), 1, "no base for the lie");

    let out = tempfile::tempdir().expect("temp dir");
    let ext4 = out.path().join("lying.ext4");
    names_the_layer(&world.cctl(&[
        "rootfs",
        "create",
        &lying,
        "--output",
        ext4.to_str().expect("utf-8"),
    ]));
    let left: Vec<_> = std::fs::read_dir(out.path()).expect("list").collect();
    assert!(left.is_empty(), "no image left: {left:?}");

    let unpacked = out.path().join("unpacked");
    names_the_layer(&world.cctl_on_host(&[
        "image",
        "pull",
        "--unpack",
        unpacked.to_str().expect("utf-8"),
        &lying,
    ]));
    assert!(!unpacked.exists(), "no folder left");

    let (report, ran) = check(&world);
    assert_ne!(ran.code, 0, "{ran:?}");
    let problems = report["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["image"], lying.as_str(), "{report}");
    assert_eq!(
        problems[0]["digest"],
        layer.to_string().as_str(),
        "{report}"
    );
}

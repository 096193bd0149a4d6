//! The root file system cache and writable clones, checked with the real
//! tools: e2fsck and debugfs for the bases, qemu-img and qemu-io for the
//! qcow2 overlays.

use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use containerization::Error;
use containerization::rootfs::{CloneKind, RootfsCache, writable_clone};
use containerization_oci::Digest;
use containerization_oci::layer::StoredLayer;
use containerization_oci::store::ContentStore;
use containerization_testkit::{Fixture, fixture};

/// The busybox fixture's layers in a store of their own.
struct Busybox {
    manifest: Digest,
    /// Holds the store.
    _dir: tempfile::TempDir,
    content: ContentStore,
    layers: Vec<StoredLayer>,
}

/// The busybox fixture's manifest digest, and its layers (lowest first)
/// copied into a fresh content store.
fn busybox() -> Busybox {
    let (image, blobs) = busybox_unstored();
    for (layer, bytes) in image.layers.iter().zip(blobs) {
        image.content.put_blob(&layer.digest, &bytes).expect("copy");
    }
    image
}

/// [`busybox`] with an empty content store, and each layer's blob.
fn busybox_unstored() -> (Busybox, Vec<Vec<u8>>) {
    let image = fixture(Fixture::Busybox).expect("fixture");
    let layout = image.layout();
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture_store =
        ContentStore::open(layout, &dir.path().join("fixture-ingest")).expect("layout");
    let json = |digest: &str| -> serde_json::Value {
        let digest: Digest = digest.parse().expect("digest");
        serde_json::from_slice(&fixture_store.read_blob(&digest).expect("read")).expect("json")
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read"))
            .expect("json");
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest");
    let manifest_json = json(manifest);
    let config = json(manifest_json["config"]["digest"].as_str().expect("config"));
    let content =
        ContentStore::open(&dir.path().join("content"), &dir.path().join("ingest")).expect("store");
    let (layers, blobs) = manifest_json["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().expect("diff_ids"))
        .map(|(layer, diff_id)| {
            let descriptor = serde_json::from_value(layer.clone()).expect("descriptor");
            let layer = StoredLayer::new(
                &descriptor,
                Some(diff_id.as_str().expect("diff_id").parse().expect("digest")),
            )
            .expect("layer");
            let bytes = std::fs::read(fixture_store.blob_path(&layer.digest)).expect("blob");
            (layer, bytes)
        })
        .unzip();
    let image = Busybox {
        manifest: manifest.parse().expect("digest"),
        _dir: dir,
        content,
        layers,
    };
    (image, blobs)
}

impl Busybox {
    fn base(&self, cache: &RootfsCache) -> Result<PathBuf, Error> {
        cache.base(&self.manifest, &self.content, &self.layers)
    }
}

/// Runs a tool, returning whether it succeeded and what it printed.
fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn sha256(path: &Path) -> String {
    let (ok, out) = run("sha256sum", &[text(path)]);
    assert!(ok, "{out}");
    out.split_whitespace().next().expect("sum").to_owned()
}

/// A base of the busybox image in a fresh cache.
fn busybox_base() -> (tempfile::TempDir, PathBuf) {
    let image = busybox();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    let base = image.base(&cache).expect("base");
    (tmp, base)
}

#[test]
fn base_from_busybox_layers_is_a_clean_read_only_ext4_with_busybox() {
    let image = busybox();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    let started = Instant::now();
    let base = image.base(&cache).expect("base");
    eprintln!("base built in {:?}", started.elapsed());

    assert_eq!(base, cache.path(&image.manifest));
    assert_eq!(
        base.file_name().and_then(|n| n.to_str()),
        Some(format!("sha256-{}.ext4", image.manifest.hex()).as_str())
    );
    let (ok, out) = run("e2fsck", &["-fn", text(&base)]);
    assert!(ok, "{out}");
    let meta = std::fs::metadata(&base).expect("stat");
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
    assert!(meta.len() >= 4 << 30, "virtual size {}", meta.len());
    assert!(
        meta.blocks() * 512 < 64 << 20,
        "the base should be sparse: {} bytes allocated",
        meta.blocks() * 512
    );
    eprintln!(
        "base: {} MiB virtual, {} KiB allocated",
        meta.len() >> 20,
        meta.blocks() / 2
    );
    let (ok, out) = run("debugfs", &["-R", "stat /bin/busybox", text(&base)]);
    assert!(ok && out.contains("Type: regular"), "{out}");
    let (ok, out) = run("dumpe2fs", &["-h", text(&base)]);
    assert!(ok && out.contains("has_journal"), "{out}");

    let listed = cache.list().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].manifest, image.manifest);
    assert_eq!(listed[0].path, base);
    assert_eq!(listed[0].size, meta.len());
    assert_eq!(listed[0].allocated, meta.blocks() * 512);
    let names: Vec<_> = std::fs::read_dir(cache.dir())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "only the base is left: {names:?}");
}

#[test]
fn a_cached_base_is_reused_without_rebuilding() {
    let image = busybox();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    let first = image.base(&cache).expect("base");
    let before = std::fs::metadata(&first).expect("stat");
    // A rebuild would need the layers: without them only the cache answers.
    let second = cache
        .base(&image.manifest, &image.content, &[])
        .expect("cached base");
    let after = std::fs::metadata(&second).expect("stat");
    assert_eq!(first, second);
    assert_eq!(before.ino(), after.ino());
    assert_eq!(before.mtime_nsec(), after.mtime_nsec());
    assert_eq!(before.mtime(), after.mtime());
}

#[test]
fn threads_building_one_base_at_once_make_one_valid_file() {
    let image = busybox();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    let paths: Vec<PathBuf> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| image.base(&cache).expect("base")))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("thread"))
            .collect()
    });
    assert!(paths.iter().all(|p| *p == paths[0]), "{paths:?}");
    let (ok, out) = run("e2fsck", &["-fn", text(&paths[0])]);
    assert!(ok, "{out}");
    let names: Vec<_> = std::fs::read_dir(cache.dir())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "one base and nothing else: {names:?}");
}

/// Builds `image`'s base in a fresh cache, expecting it to fail; returns
/// the message, having checked that it names the image and that nothing
/// was left in the cache.
fn refused(image: &Busybox) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    let error = image.base(&cache).expect_err("the build must fail");
    assert!(matches!(error, Error::Rootfs { .. }), "{error:?}");
    let message = error.to_string();
    eprintln!("{message}");
    assert!(message.contains(&image.manifest.to_string()), "{message}");
    let names: Vec<_> = std::fs::read_dir(cache.dir())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(names.is_empty(), "nothing may be left behind: {names:?}");
    assert!(cache.list().expect("list").is_empty());
    message
}

#[test]
fn a_garbage_layer_fails_naming_the_image_and_leaves_nothing() {
    let mut image = busybox();
    let garbage = b"\x1f\x8b this is not a gzip tar layer at all";
    let digest = image.content.put_new_blob(garbage).expect("put");
    image.layers.push(StoredLayer {
        digest,
        size: garbage.len() as u64,
        compression: containerization_oci::media_type::Compression::Gzip,
        diff_id: None,
    });
    let message = refused(&image);
    assert!(message.contains("layer 2"), "{message}");
}

#[test]
fn a_flipped_byte_in_a_stored_layer_is_refused_and_the_blob_set_aside() {
    let image = busybox();
    let layer = &image.layers[0];
    let path = image.content.blob_path(&layer.digest);
    let mut bytes = std::fs::read(&path).expect("read");
    // In the deflate stream, then in the gzip trailer's CRC.
    for at in [bytes.len() / 3, bytes.len() - 7] {
        bytes[at] ^= 0x10;
        std::fs::write(&path, &bytes).expect("damage");
        let message = refused(&image);
        assert!(message.contains("layer 1"), "{message}");
        assert!(message.contains("is damaged"), "{message}");
        assert!(message.contains(&layer.digest.to_string()), "{message}");
        assert!(!image.content.contains(&layer.digest), "set aside");
        bytes[at] ^= 0x10;
        std::fs::write(&path, &bytes).expect("repair");
    }
    image
        .base(&RootfsCache::new(image._dir.path().join("rootfs")))
        .expect("repaired");
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused_and_kept() {
    let mut image = busybox();
    image.layers[0].diff_id = Some(Digest::sha256(b"another layer"));
    let message = refused(&image);
    assert!(message.contains("layer 1"), "{message}");
    assert!(message.contains("uncompresses to"), "{message}");
    assert!(image.content.contains(&image.layers[0].digest));
}

#[test]
fn a_removed_base_is_gone_from_the_cache() {
    let image = busybox();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    assert!(
        !cache
            .remove(&image.manifest)
            .expect("remove from a new cache")
    );
    let base = image.base(&cache).expect("base");
    assert!(cache.remove(&image.manifest).expect("remove"));
    assert!(!base.exists());
    assert!(!cache.remove(&image.manifest).expect("remove again"));
    assert!(cache.list().expect("list").is_empty());
}

/// A small read-only raw disk with data at both ends and a hole between:
/// overlay semantics do not depend on the content, and hashing a 4 GiB base
/// takes far longer than the test.
fn small_base(dir: &Path) -> PathBuf {
    let path = dir.join("small.raw");
    let head: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(8 << 20).expect("set_len");
    file.write_all_at(&head, 0).expect("write");
    file.write_all_at(&head[..65536], (8 << 20) - 65536)
        .expect("write");
    drop(file);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    path
}

#[test]
fn an_overlay_of_a_cached_base_is_a_qcow2_over_the_raw_base() {
    let (tmp, base) = busybox_base();
    let overlay = tmp.path().join("overlay.qcow2");
    let mut timings = Vec::new();
    for round in 0..100 {
        let _ = std::fs::remove_file(&overlay);
        let started = Instant::now();
        let kind = writable_clone(&base, &overlay).expect("clone");
        timings.push(started.elapsed());
        if round == 0 {
            // This machine's /work is ext4: no reflinks.
            assert_eq!(kind, CloneKind::Qcow2Overlay);
        }
    }
    timings.sort();
    eprintln!(
        "overlay creation over 100 rounds: min {:?}, median {:?}, max {:?}",
        timings[0],
        timings[timings.len() / 2],
        timings[timings.len() - 1]
    );

    let (ok, out) = run("qemu-img", &["check", text(&overlay)]);
    assert!(ok, "{out}");
    let (ok, out) = run("qemu-img", &["info", "--output=json", text(&overlay)]);
    assert!(ok, "{out}");
    let info: serde_json::Value = serde_json::from_str(&out).expect("json");
    let base_size = std::fs::metadata(&base).expect("stat").len();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["backing-filename"], text(&base));
    assert_eq!(info["backing-filename-format"], "raw");
    assert_eq!(info["virtual-size"], base_size);
    assert_eq!(info["cluster-size"], 65536);
    // Sparse-aware, unlike hashing 4 GiB of mostly holes.
    let (ok, out) = run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "qcow2",
            "-F",
            "raw",
            text(&overlay),
            text(&base),
        ],
    );
    assert!(ok && out.contains("Images are identical"), "{out}");
}

#[test]
fn an_overlay_reads_back_the_bytes_of_its_base() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = small_base(tmp.path());
    let overlay = tmp.path().join("overlay.qcow2");
    assert_eq!(
        writable_clone(&base, &overlay).expect("clone"),
        CloneKind::Qcow2Overlay
    );
    let (ok, out) = run("qemu-img", &["check", text(&overlay)]);
    assert!(ok, "{out}");
    let raw = tmp.path().join("out.raw");
    let (ok, out) = run(
        "qemu-img",
        &["convert", "-O", "raw", text(&overlay), text(&raw)],
    );
    assert!(ok, "{out}");
    assert_eq!(sha256(&raw), sha256(&base));
}

#[test]
fn writes_through_an_overlay_leave_the_base_and_other_overlays_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = small_base(tmp.path());
    let before = sha256(&base);
    let one = tmp.path().join("one.qcow2");
    let two = tmp.path().join("two.qcow2");
    writable_clone(&base, &one).expect("clone one");
    writable_clone(&base, &two).expect("clone two");
    let empty_len = std::fs::metadata(&one).expect("stat").len();

    let (ok, out) = run("qemu-io", &["-c", "write -P 0xab 0 64k", text(&one)]);
    assert!(ok, "{out}");
    let (ok, out) = run("qemu-io", &["-c", "write -P 0xcd 0 64k", text(&two)]);
    assert!(ok, "{out}");

    assert!(std::fs::metadata(&one).expect("stat").len() > empty_len);
    assert_eq!(sha256(&base), before, "the base must not change");
    let (ok, out) = run("qemu-io", &["-c", "read -P 0xab 0 64k", text(&one)]);
    assert!(ok && !out.contains("Pattern verification failed"), "{out}");
    let (ok, out) = run("qemu-io", &["-c", "read -P 0xcd 0 64k", text(&two)]);
    assert!(ok && !out.contains("Pattern verification failed"), "{out}");
    for overlay in [&one, &two] {
        let (ok, out) = run("qemu-img", &["check", text(overlay)]);
        assert!(ok, "{out}");
    }
}

#[test]
fn a_clone_never_replaces_an_existing_file() {
    let (tmp, base) = busybox_base();
    let dest = tmp.path().join("taken");
    std::fs::write(&dest, b"keep me").expect("write");
    let error = writable_clone(&base, &dest).expect_err("dest exists");
    assert!(error.to_string().contains("exists"), "{error}");
    assert_eq!(std::fs::read(&dest).expect("read"), b"keep me");
}

#[test]
fn a_clone_across_file_systems_falls_back_to_an_overlay() {
    // FICLONE between two file systems fails with EXDEV: the fallback path.
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("skipped: no /dev/shm");
        return;
    }
    let (_tmp, base) = busybox_base();
    let other = tempfile::tempdir_in(shm).expect("tempdir in /dev/shm");
    let dest = other.path().join("overlay.qcow2");
    let kind = writable_clone(&base, &dest).expect("clone");
    assert_eq!(kind, CloneKind::Qcow2Overlay);
    let (ok, out) = run("qemu-img", &["check", text(&dest)]);
    assert!(ok, "{out}");
}

#[test]
fn a_missing_base_is_reported_and_nothing_is_created() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("overlay.qcow2");
    let error = writable_clone(&tmp.path().join("nope.ext4"), &dest).expect_err("no base to clone");
    assert!(error.to_string().contains("nope.ext4"), "{error}");
    assert!(!dest.exists());
}

/// Writes each blob into `content` as a pull does (its ingest file, in
/// small pieces, then stored), with `damage` applied to the bytes first;
/// stops after `upto` bytes of each blob when given (a pull that broke).
/// Returns whether every blob was stored.
fn download(
    content: &ContentStore,
    layers: &[StoredLayer],
    blobs: &[Vec<u8>],
    damage: impl Fn(&mut Vec<u8>),
    upto: Option<usize>,
) -> bool {
    use containerization_oci::store::IngestStart;
    let mut stored = true;
    for (layer, bytes) in layers.iter().zip(blobs) {
        let mut bytes = bytes.clone();
        damage(&mut bytes);
        let IngestStart::Writer(mut ingest) = content
            .begin_ingest(&layer.digest, layer.size)
            .expect("ingest")
        else {
            panic!("already stored");
        };
        let end = upto.unwrap_or(bytes.len()).min(bytes.len());
        for piece in bytes[..end].chunks(32 << 10) {
            ingest.write(piece).expect("write");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if upto.is_some() {
            return false;
        }
        stored &= ingest.commit().is_ok();
    }
    stored
}

/// Builds `image`'s base in `cache` through `follower` on another thread
/// while `download` runs here, as `cctl run` does during a pull.
fn built_while(
    image: &Busybox,
    cache: &RootfsCache,
    follower: &containerization_oci::store::BlobFollower,
    download: impl FnOnce(),
) -> Result<PathBuf, Error> {
    std::thread::scope(|scope| {
        let building = scope.spawn(|| {
            cache.base_following(&image.manifest, &image.content, &image.layers, follower)
        });
        download();
        building.join().expect("the build thread")
    })
}

#[test]
fn a_base_is_written_while_its_layers_download_and_matches_one_built_after() {
    use containerization_oci::store::BlobFollower;
    let (image, blobs) = busybox_unstored();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    let follower = BlobFollower::new();
    let base = built_while(&image, &cache, &follower, || {
        assert!(download(
            &image.content,
            &image.layers,
            &blobs,
            |_| {},
            None
        ));
    })
    .expect("the base is built as the layers arrive");
    // The build read the layers as they arrived, not after.
    let early = follower.bytes_before_stored();
    assert!(early > 0, "no byte was read before its blob was stored");
    eprintln!("{early} bytes read before their blobs were stored");
    let (ok, out) = run("e2fsck", &["-fn", text(&base)]);
    assert!(ok, "{out}");
    let (ok, out) = run("debugfs", &["-R", "stat /bin/busybox", text(&base)]);
    assert!(ok && out.contains("Type: regular"), "{out}");
    // The same file system as a base built from the stored layers.
    let other = tempfile::tempdir().expect("tempdir");
    let after = image
        .base(&RootfsCache::new(other.path().join("rootfs")))
        .expect("a base from the stored layers");
    let listing = |base: &Path| run("debugfs", &["-R", "ls -l /bin", text(base)]).1;
    assert_eq!(listing(&base), listing(&after));
    let names: Vec<_> = std::fs::read_dir(cache.dir())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "one base and nothing else: {names:?}");
}

#[test]
fn a_base_written_while_downloading_is_dropped_when_the_download_is_bad_or_stops() {
    use containerization_oci::store::BlobFollower;
    let (image, blobs) = busybox_unstored();
    let leftovers = |cache: &RootfsCache| -> Vec<String> {
        std::fs::read_dir(cache.dir())
            .map(|entries| {
                entries
                    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.ends_with(".lock"))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Bytes damaged on the way: the download's own check refuses them at
    // its end, and the build, which read them first, refuses them too,
    // naming the layer; the store's blobs are not set aside (none is).
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    let follower = BlobFollower::new();
    let error = built_while(&image, &cache, &follower, || {
        let stored = download(
            &image.content,
            &image.layers,
            &blobs,
            |bytes| {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x10;
            },
            None,
        );
        assert!(!stored, "the download refuses the damaged bytes");
        // Like a pull, which stops at its first failure.
        follower.stop();
    })
    .expect_err("a damaged download builds nothing");
    let message = error.to_string();
    assert!(message.contains("layer 1 is refused"), "{message}");
    assert!(
        message.contains(&image.layers[0].digest.to_string()),
        "{message}"
    );
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
    assert!(!image.content.contains(&image.layers[0].digest));

    // A download that stops half way: the pull stops its readers.
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = RootfsCache::new(tmp.path().join("rootfs"));
    let follower = BlobFollower::new();
    let (image, blobs) = busybox_unstored();
    let error = built_while(&image, &cache, &follower, || {
        let half = blobs[0].len() / 2;
        assert!(!download(
            &image.content,
            &image.layers,
            &blobs,
            |_| {},
            Some(half)
        ));
        follower.stop();
    })
    .expect_err("a broken download builds nothing");
    assert!(error.to_string().contains("layer 1 is refused"), "{error}");
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
}

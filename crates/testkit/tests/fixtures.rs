//! Each fixture has the properties its documentation promises, checked with
//! third-party tools (skopeo, GNU tar, chroot) rather than this project's code.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use containerization_testkit::layered::{
    BIG_DIR_ENTRIES, CAPABILITY_XATTR, LONG_LINK_TARGET, SPARSE_SIZE,
};
use containerization_testkit::{Compression, Fixture, FixtureImage, fixture};
use serde_json::Value;

fn output(command: &mut Command) -> Vec<u8> {
    let out = command.output().expect("command starts");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn skopeo_inspect(image: &FixtureImage, what: &str) -> Value {
    let bytes = output(
        Command::new("skopeo")
            .args(["inspect", what])
            .arg(image.oci_reference()),
    );
    serde_json::from_slice(&bytes).expect("skopeo prints JSON")
}

fn blob(image: &FixtureImage, digest: &Value) -> PathBuf {
    let digest = digest.as_str().expect("digest is a string");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    image.layout().join("blobs/sha256").join(hex)
}

fn read_blob_json(image: &FixtureImage, digest: &Value) -> Value {
    let bytes = std::fs::read(blob(image, digest)).expect("blob is readable");
    serde_json::from_slice(&bytes).expect("blob is JSON")
}

/// Extracts one layer blob with GNU tar (as root: owners, devices, xattrs).
fn extract(layer: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    output(
        Command::new("tar")
            .args([
                "--extract",
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
            ])
            .arg("--file")
            .arg(layer)
            .arg("--directory")
            .arg(dir.path()),
    );
    dir
}

fn list(layer: &Path) -> String {
    String::from_utf8(output(
        Command::new("tar").arg("--list").arg("--file").arg(layer),
    ))
    .expect("ASCII names in this layer")
}

fn layers(manifest: &Value) -> Vec<Value> {
    manifest["layers"].as_array().expect("layers").clone()
}

#[test]
fn busybox_fixture_is_a_runnable_one_layer_amd64_image() {
    let image = fixture(Fixture::Busybox).unwrap();
    let manifest = skopeo_inspect(&image, "--raw");
    let layers = layers(&manifest);
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], Compression::Gzip.layer_media_type());
    let config = skopeo_inspect(&image, "--config");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["/bin/sh"]));

    let root = extract(&blob(&image, &layers[0]["digest"]));
    assert_eq!(
        std::fs::read_link(root.path().join("bin/ls")).unwrap(),
        Path::new("/bin/busybox")
    );
    let said = output(Command::new("chroot").arg(root.path()).args([
        "/bin/sh",
        "-c",
        "echo hello from $(id -un)",
    ]));
    assert_eq!(String::from_utf8_lossy(&said), "hello from root\n");
}

#[test]
fn layered_fixture_has_whiteouts_opaque_dirs_and_replacements() {
    let image = fixture(Fixture::Layered).unwrap();
    let layers = layers(&skopeo_inspect(&image, "--raw"));
    assert_eq!(layers.len(), 4);

    let lower = list(&blob(&image, &layers[0]["digest"]));
    for path in [
        "data/old-file",
        "data/old-dir/sub/b",
        "data/opaque/lower-dir/x",
        "data/dir-to-file/inner",
        "data/file-to-dir",
        "bin/busybox",
    ] {
        assert!(
            lower.lines().any(|l| l.trim_end_matches('/') == path),
            "{path} in layer 1"
        );
    }
    let changes = list(&blob(&image, &layers[1]["digest"]));
    for path in [
        "data/.wh.old-file",
        "data/.wh.old-dir",
        "data/opaque/.wh..wh..opq",
        "data/opaque/from-upper",
        "data/dir-to-file",
        "data/file-to-dir/inner",
        "data/merge/upper",
    ] {
        assert!(
            changes.lines().any(|l| l == path),
            "{path} in layer 2:\n{changes}"
        );
    }
    let root = extract(&blob(&image, &layers[1]["digest"]));
    assert!(root.path().join("data/dir-to-file").is_file());
    assert!(root.path().join("data/file-to-dir").is_dir());
}

#[test]
fn layered_fixture_has_links_xattrs_devices_owners_and_odd_names() {
    let image = fixture(Fixture::Layered).unwrap();
    let layers = layers(&skopeo_inspect(&image, "--raw"));
    let root = extract(&blob(&image, &layers[2]["digest"]));
    let data = root.path().join("data");

    let target = std::fs::metadata(data.join("links/target")).unwrap();
    assert_eq!(target.nlink(), 3);
    for name in ["hard-1", "hard-2"] {
        assert_eq!(
            std::fs::metadata(data.join("links").join(name))
                .unwrap()
                .ino(),
            target.ino()
        );
    }
    assert_eq!(
        std::fs::read_link(data.join("links/short")).unwrap(),
        Path::new("target")
    );
    let long = std::fs::read_link(data.join("links/long")).unwrap();
    assert_eq!(long, Path::new(LONG_LINK_TARGET));
    assert!(long.as_os_str().len() > 60);

    let mut value = [0u8; 64];
    let n = rustix::fs::getxattr(data.join("xattrs/user"), "user.fixture", &mut value).unwrap();
    assert_eq!(&value[..n], b"layered");
    let n = rustix::fs::getxattr(
        data.join("xattrs/capability"),
        "security.capability",
        &mut value,
    )
    .unwrap();
    assert_eq!(&value[..n], CAPABILITY_XATTR);

    let kind = |name: &str| std::fs::symlink_metadata(data.join("special").join(name)).unwrap();
    assert!(kind("fifo").file_type().is_fifo());
    let null = kind("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (
            rustix::fs::major(null.rdev()),
            rustix::fs::minor(null.rdev())
        ),
        (1, 3)
    );
    let loop0 = kind("loop0");
    assert!(loop0.file_type().is_block_device());
    assert_eq!(rustix::fs::major(loop0.rdev()), 7);

    let names: Vec<Vec<u8>> = std::fs::read_dir(data.join("names"))
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    assert!(names.iter().any(|n| n.len() == 255), "a 255-byte name");
    assert!(
        names.iter().any(|n| n.as_slice() == b"latin1-caf\xe9"),
        "a non-UTF-8 name"
    );
    assert!(
        names.iter().any(|n| n == "ünïcødé-日本語-ñ".as_bytes()),
        "a non-ASCII name"
    );

    let owned = std::fs::metadata(data.join("owned/by-1000")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1000, 1000, 0o640)
    );
    let setuid = std::fs::metadata(data.join("owned/setuid")).unwrap();
    assert_eq!(setuid.mode() & 0o7777, 0o4755);

    assert_eq!(
        std::fs::read_dir(data.join("big-dir")).unwrap().count(),
        BIG_DIR_ENTRIES
    );
}

#[test]
fn layered_fixture_stores_a_4_gib_sparse_file_in_a_small_layer() {
    let image = fixture(Fixture::Layered).unwrap();
    let layers = layers(&skopeo_inspect(&image, "--raw"));
    let layer = blob(&image, &layers[3]["digest"]);
    assert!(std::fs::metadata(&layer).unwrap().len() < 1 << 20);

    let root = extract(&layer);
    let path = root.path().join("data/sparse/4g.img");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), SPARSE_SIZE);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "holes stay holes: {} blocks",
        meta.blocks()
    );
    let file = std::fs::File::open(&path).unwrap();
    for (offset, text) in [
        (0, "start"),
        (1 << 30, "one gibibyte"),
        (SPARSE_SIZE - 4096, "end"),
    ] {
        let mut buf = vec![0u8; text.len()];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, offset).unwrap();
        assert_eq!(buf, text.as_bytes());
    }
}

/// The ELF machine of `path`: 62 for x86-64, 183 for AArch64.
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).expect("binary is readable");
    assert!(bytes.starts_with(b"\x7fELF"));
    u16::from_le_bytes([bytes[18], bytes[19]])
}

#[test]
fn multiplatform_fixture_indexes_amd64_and_arm64_busybox() {
    let image = fixture(Fixture::MultiPlatform).unwrap();
    let index = skopeo_inspect(&image, "--raw");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (descriptor, (architecture, variant, machine)) in manifests
        .iter()
        .zip([("amd64", None, 62), ("arm64", Some("v8"), 183)])
    {
        assert_eq!(descriptor["platform"]["architecture"], architecture);
        assert_eq!(descriptor["platform"]["variant"].as_str(), variant);
        let manifest = read_blob_json(&image, &descriptor["digest"]);
        let config = read_blob_json(&image, &manifest["config"]["digest"]);
        assert_eq!(config["architecture"], architecture);
        let root = extract(&blob(&image, &manifest["layers"][0]["digest"]));
        assert_eq!(elf_machine(&root.path().join("bin/busybox")), machine);
    }
}

#[test]
fn compressed_fixtures_hold_one_image_in_three_compressions() {
    let reference = skopeo_inspect(&fixture(Fixture::Busybox).unwrap(), "--config");
    for compression in Compression::ALL {
        let image = fixture(Fixture::Compressed(compression)).unwrap();
        let layers = layers(&skopeo_inspect(&image, "--raw"));
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], compression.layer_media_type());
        let bytes = std::fs::read(blob(&image, &layers[0]["digest"])).unwrap();
        let magic_ok = match compression {
            Compression::Gzip => bytes.starts_with(&[0x1f, 0x8b]),
            Compression::Zstd => bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Uncompressed => bytes.get(257..262) == Some(b"ustar"),
        };
        assert!(
            magic_ok,
            "{compression:?} layer starts with the right magic"
        );
        let config = skopeo_inspect(&image, "--config");
        assert_eq!(
            config["rootfs"]["diff_ids"],
            reference["rootfs"]["diff_ids"]
        );
    }
}

#[test]
fn fixtures_are_built_once_then_taken_from_the_cache() {
    let first = fixture(Fixture::Busybox).unwrap();
    let index = first.layout().join("index.json");
    let built = std::fs::metadata(&index).unwrap().modified().unwrap();
    let second = fixture(Fixture::Busybox).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        std::fs::metadata(&index).unwrap().modified().unwrap(),
        built
    );
    let recipe = std::fs::read_to_string(first.layout().parent().unwrap().join("RECIPE")).unwrap();
    assert!(recipe.starts_with("busybox fixture"), "{recipe}");
}

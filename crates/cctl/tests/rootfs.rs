//! `cctl rootfs create` and `inspect`: from a directory, from layer tarballs
//! and from an image loaded into the store; errors a user can act on.

use std::fs;
use std::path::Path;
use std::process::Command;

fn cctl(root: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args(args)
        .env("CZ_ROOT", root)
        .output()
        .expect("cctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn e2fsck_clean(image: &Path) {
    let status = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .expect("e2fsck");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn rootfs_create_from_a_directory_then_inspect_lists_like_ls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("etc")).expect("mkdir");
    fs::write(src.join("etc/hostname"), "box\n").expect("write");
    std::os::unix::fs::symlink("etc/hostname", src.join("link")).expect("symlink");
    let image = tmp.path().join("out.ext4");
    let (ok, _, stderr) = cctl(
        tmp.path(),
        &[
            "rootfs",
            "create",
            "--from-dir",
            &src.to_string_lossy(),
            "-o",
            &image.to_string_lossy(),
            "--size",
            "8M",
            "--journal",
            "--block-size",
            "1024",
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(fs::metadata(&image).expect("stat").len(), 8 << 20);
    e2fsck_clean(&image);
    let (ok, stdout, stderr) = cctl(tmp.path(), &["rootfs", "inspect", &image.to_string_lossy()]);
    assert!(ok, "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("drwx") && l.ends_with(" etc")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("lrwxrwxrwx") && l.ends_with("link -> etc/hostname")),
        "{stdout}"
    );
    let (ok, stdout, _) = cctl(
        tmp.path(),
        &[
            "rootfs",
            "inspect",
            &image.to_string_lossy(),
            "etc/hostname",
        ],
    );
    assert!(
        ok && stdout.starts_with("-rw") && stdout.contains(" 4 "),
        "{stdout}"
    );
}

#[test]
fn rootfs_create_from_layers_and_from_a_loaded_image_agree() {
    let fixture = containerization_testkit::fixture(containerization_testkit::Fixture::Busybox)
        .expect("fixture");
    let tmp = tempfile::tempdir().expect("tempdir");
    let archive = tmp.path().join("layout.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(fixture.layout())
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success());
    let (ok, _, stderr) = cctl(
        tmp.path(),
        &["image", "load", "-i", &archive.to_string_lossy()],
    );
    assert!(ok, "{stderr}");
    let from_image = tmp.path().join("image.ext4");
    let (ok, _, stderr) = cctl(
        tmp.path(),
        &[
            "rootfs",
            "create",
            fixture.name(),
            "-o",
            &from_image.to_string_lossy(),
        ],
    );
    assert!(ok, "{stderr}");
    e2fsck_clean(&from_image);

    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(fixture.layout().join("index.json")).expect("index"))
            .expect("json");
    let blob = |d: &str| {
        fixture
            .layout()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(blob(
            index["manifests"][0]["digest"].as_str().expect("digest"),
        ))
        .expect("manifest"),
    )
    .expect("json");
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            blob(l["digest"].as_str().expect("digest"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let from_layers = tmp.path().join("layers.ext4");
    let mut args = vec!["rootfs", "create", "-o"];
    let out = from_layers.to_string_lossy().into_owned();
    args.push(&out);
    args.push("--layers");
    args.extend(layers.iter().map(String::as_str));
    let (ok, _, stderr) = cctl(tmp.path(), &args);
    assert!(ok, "{stderr}");
    e2fsck_clean(&from_layers);
    let list = |image: &Path| {
        cctl(
            tmp.path(),
            &["rootfs", "inspect", &image.to_string_lossy(), "bin"],
        )
        .1
    };
    let listed = list(&from_image);
    assert!(listed.contains("busybox"), "{listed}");
    assert_eq!(listed, list(&from_layers));
}

#[test]
fn rootfs_create_says_when_the_size_is_too_small_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).expect("mkdir");
    fs::write(src.join("big"), vec![1u8; 2 << 20]).expect("write");
    let image = tmp.path().join("out.ext4");
    let (ok, _, stderr) = cctl(
        tmp.path(),
        &[
            "rootfs",
            "create",
            "--from-dir",
            &src.to_string_lossy(),
            "-o",
            &image.to_string_lossy(),
            "--size",
            "1M",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("give a larger size"), "{stderr}");
    assert!(!image.exists());
    let (ok, _, stderr) = cctl(
        tmp.path(),
        &[
            "rootfs",
            "create",
            "missing-image",
            "-o",
            &image.to_string_lossy(),
        ],
    );
    assert!(!ok && stderr.contains("pull it first"), "{stderr}");
}

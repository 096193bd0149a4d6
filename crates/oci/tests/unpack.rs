//! Our unpack against `umoci raw unpack` of the same image: same contents,
//! types, modes, owners, times, xattrs and hard links. Also: layers that try
//! to escape the target are refused.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{client_for, run, temp_store};
use containerization_oci::layer::{UnpackOptions, Unpacker, unpack_image};
use containerization_oci::{Error, Platform, Reference};
use containerization_testkit::{Fixture, Registry, fixture};

/// Everything we compare about one file system entry.
fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("list").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            let m = std::fs::symlink_metadata(&path).expect("lstat");
            let ft = m.file_type();
            let mut what = format!(
                "mode={:o} uid={} gid={} mtime={}",
                m.mode(),
                m.uid(),
                m.gid(),
                if ft.is_dir() { 0 } else { m.mtime() }
            );
            if ft.is_symlink() {
                what += &format!(
                    " link={}",
                    std::fs::read_link(&path).expect("readlink").display()
                );
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone());
                    what += &format!(" inode-group={first}");
                }
                what += &format!(" size={}", m.len());
                if m.len() < (64 << 20) {
                    let mut bytes = Vec::new();
                    std::fs::File::open(&path)
                        .expect("open")
                        .read_to_end(&mut bytes)
                        .expect("read");
                    what += &format!(" sha256={}", containerization_oci::Digest::sha256(&bytes));
                } else {
                    what += &format!(" sparse={}", m.blocks() * 512 < m.len());
                }
            } else if !ft.is_dir() {
                what += &format!(" rdev={}", m.rdev());
            }
            let mut names = vec![0u8; 4096];
            if let Ok(n) = rustix::fs::llistxattr(&path, &mut names) {
                let mut list: Vec<&[u8]> = names[..n]
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .collect();
                list.sort();
                for name in list {
                    let name = String::from_utf8_lossy(name).into_owned();
                    let mut value = vec![0u8; 4096];
                    let len = rustix::fs::lgetxattr(&path, name.as_str(), &mut value).unwrap_or(0);
                    what += &format!(" xattr:{name}={}", hex::encode(&value[..len]));
                }
            }
            out.insert(rel, what);
            if ft.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpack_equals_umoci_raw_unpack_of_the_layered_fixture() {
    let image = fixture(Fixture::Layered).expect("fixture");
    let registry = Registry::anonymous().expect("registry");
    let reference: Reference = common::push_fixture(&registry, &image, "demo/layered:1");
    let (dir, store) = temp_store();
    let client = client_for(&registry, dir.path());
    let platform = Platform::new("linux", "amd64", None);
    client
        .pull(&store, &reference, &platform)
        .await
        .expect("pull");
    let resolved = store
        .resolve(&reference.to_string(), &platform)
        .expect("resolve");

    // umoci cannot unpack GNU sparse entries (the last layer): compare the
    // first three layers, as an image of their own in our store, which also
    // shows umoci reads our store.
    let mut config: serde_json::Value =
        serde_json::from_slice(&resolved.config_bytes).expect("config");
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("diff_ids")
        .truncate(3);
    let config_bytes = serde_json::to_vec(&config).expect("json");
    let config_digest = store
        .content()
        .put_new_blob(&config_bytes)
        .expect("config blob");
    let mut manifest = serde_json::to_value(&resolved.manifest).expect("json");
    manifest["layers"]
        .as_array_mut()
        .expect("layers")
        .truncate(3);
    manifest["config"]["digest"] = config_digest.to_string().into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = store
        .content()
        .put_new_blob(&manifest_bytes)
        .expect("manifest blob");
    let descriptor: oci_spec::image::Descriptor = serde_json::from_value(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest.to_string(),
        "size": manifest_bytes.len(),
    }))
    .expect("descriptor");
    store.set("partial", &descriptor).expect("name it");
    let partial = store
        .resolve("partial", &platform)
        .expect("resolve partial");

    let work = tempfile::tempdir().expect("temp dir");
    let ours = work.path().join("ours");
    // Device nodes too, which a host unpack skips unless asked.
    let keep_devices = UnpackOptions {
        keep_devices: true,
        ..UnpackOptions::default()
    };
    unpack_image(store.content(), &partial.manifest, &ours, &keep_devices).expect("our unpack");
    let theirs = work.path().join("umoci");
    run(Command::new("umoci")
        .args(["raw", "unpack", "--image"])
        .arg(format!("{}:partial", store.content().root().display()))
        .arg(&theirs));
    let (ours, theirs) = (describe(&ours), describe(&theirs));
    let mut differences = Vec::new();
    for key in ours
        .keys()
        .chain(theirs.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if ours.get(key) != theirs.get(key) {
            differences.push(format!(
                "{key}:\n  ours:  {:?}\n  umoci: {:?}",
                ours.get(key),
                theirs.get(key)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The whole image, sparse layer included.
    let full = work.path().join("full");
    unpack_image(
        store.content(),
        &resolved.manifest,
        &full,
        &UnpackOptions::default(),
    )
    .expect("full unpack");
    let sparse = std::fs::metadata(full.join("data/sparse/4g.img")).expect("sparse file");
    assert_eq!(sparse.len(), containerization_testkit::layered::SPARSE_SIZE);
    assert!(
        sparse.blocks() * 512 < (1 << 20),
        "the sparse file stays sparse"
    );
}

/// A tar with one entry whose name is written raw (bypassing `tar`'s checks).
fn raw_tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(if *kind == tar::EntryType::Regular {
            4
        } else {
            0
        });
        header.set_cksum();
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"evil"
        } else {
            b""
        };
        builder.append(&header, data).expect("append");
    }
    builder.into_inner().expect("finish")
}

fn unpack_raw(entries: &[(&str, tar::EntryType, &str)]) -> (tempfile::TempDir, Result<(), Error>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut unpacker = Unpacker::new(&dir.path().join("root")).expect("unpacker");
    let result = unpacker.apply_layer(&raw_tar(entries)[..], "test-layer");
    (dir, result)
}

#[test]
fn unpack_refuses_dot_dot_paths() {
    let (dir, result) = unpack_raw(&[("../escaped", tar::EntryType::Regular, "")]);
    let error = result.expect_err("refused");
    assert!(
        error.to_string().contains("has a '..' component"),
        "{error}"
    );
    assert!(!dir.path().join("escaped").exists());
}

#[test]
fn unpack_resolves_a_climbing_symlink_at_the_target_as_at_the_root() {
    let (dir, result) = unpack_raw(&[
        ("up", tar::EntryType::Symlink, "../.."),
        ("up/escaped", tar::EntryType::Regular, ""),
    ]);
    result.expect("`..` at the target stays at the target, as at `/`");
    assert!(dir.path().join("root/escaped").exists());
    assert!(!dir.path().join("escaped").exists());
}

#[test]
fn unpack_keeps_absolute_symlinks_inside_the_target() {
    let (dir, result) = unpack_raw(&[
        ("etc", tar::EntryType::Symlink, "/"),
        ("etc/inside", tar::EntryType::Regular, ""),
    ]);
    result.expect("an absolute link resolves inside the target");
    assert!(dir.path().join("root/inside").exists());
}

#[test]
fn unpack_refuses_hard_links_out_of_the_target() {
    let (_dir, result) = unpack_raw(&[("passwd", tar::EntryType::Link, "../../../../etc/passwd")]);
    assert!(
        result
            .expect_err("refused")
            .to_string()
            .contains("links to a path with '..'")
    );
    let (_dir, result) = unpack_raw(&[
        ("up", tar::EntryType::Symlink, "/"),
        ("passwd", tar::EntryType::Link, "up/nothing-here"),
    ]);
    assert!(
        result
            .expect_err("refused")
            .to_string()
            .contains("hard link to nothing")
    );
}

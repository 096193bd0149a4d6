//! The reader opens images mke2fs made (64bit, journal, resize inode, 1 KiB
//! blocks) and finds the same tree as the source, exported as tar too.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use containerization_ext4::{FileKind, Image};

fn build_source(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).expect("mkdir");
    fs::write(root.join("a/small"), "small\n").expect("write");
    fs::write(
        root.join("a/b/c/big"),
        (0..300_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<_>>(),
    )
    .expect("write");
    std::os::unix::fs::symlink("a/small", root.join("short")).expect("symlink");
    std::os::unix::fs::symlink("y".repeat(300), root.join("long")).expect("symlink");
    for i in 0..500 {
        fs::write(
            root.join(format!("a/b/entry-{i:04}-{}", "x".repeat(40))),
            i.to_string(),
        )
        .expect("write");
    }
    rustix::fs::setxattr(
        root.join("a/small"),
        "user.k",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("xattr");
}

/// Every path with its kind and content (files), target (links).
fn walk(image: &Image, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for e in image.read_dir(dir).expect("list") {
        let name = String::from_utf8(e.name.clone()).expect("utf-8");
        if name == "lost+found" {
            continue;
        }
        let path = dir.join(&name);
        let stat = image.stat(&path).expect("stat");
        match stat.kind {
            FileKind::Directory => {
                out.insert(path.clone(), b"dir".to_vec());
                walk(image, &path, out);
            }
            FileKind::Regular => {
                out.insert(path.clone(), image.read_file(&path).expect("read"));
            }
            FileKind::Symlink => {
                out.insert(path.clone(), image.read_link(&path).expect("readlink"));
            }
            _ => {}
        }
    }
}

fn host_walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for e in fs::read_dir(root.join(dir)).expect("list") {
        let e = e.expect("entry");
        let path = dir.join(e.file_name());
        let t = e.file_type().expect("type");
        if t.is_dir() {
            out.insert(path.clone(), b"dir".to_vec());
            host_walk(root, &path, out);
        } else if t.is_symlink() {
            out.insert(
                path.clone(),
                fs::read_link(e.path())
                    .expect("readlink")
                    .into_os_string()
                    .into_encoded_bytes(),
            );
        } else {
            let data = fs::read(e.path())
                .unwrap_or_else(|err| panic!("read {}: {err}", e.path().display()));
            out.insert(path, data);
        }
    }
}

#[test]
fn images_made_by_mke2fs_read_back_like_their_source() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    build_source(&src);
    let mut expected = BTreeMap::new();
    host_walk(&src, Path::new(""), &mut expected);
    for (name, args) in [
        ("default", vec!["-t", "ext4"]),
        (
            "small-blocks",
            vec!["-t", "ext4", "-b", "1024", "-O", "^metadata_csum"],
        ),
    ] {
        let image = tmp.path().join(format!("{name}.ext4"));
        let status = Command::new("mke2fs")
            .args(["-q", "-F"])
            .args(&args)
            .arg("-d")
            .arg(&src)
            .arg(&image)
            .arg("64M")
            .status()
            .expect("mke2fs");
        assert!(status.success());
        let reader = Image::open(&image).expect("open");
        let mut actual = BTreeMap::new();
        walk(&reader, Path::new(""), &mut actual);
        assert_eq!(
            expected.keys().collect::<Vec<_>>(),
            actual.keys().collect::<Vec<_>>(),
            "{name}"
        );
        assert!(expected == actual, "{name}: contents differ");
        let xattrs = reader.stat("a/small").expect("stat").metadata.xattrs;
        assert!(
            xattrs.iter().any(|x| x.name == "user.k" && x.value == b"v"),
            "{name}: {xattrs:?}"
        );

        // Export as tar and let GNU tar unpack it.
        let tar_path = tmp.path().join(format!("{name}.tar"));
        reader
            .export_tar(fs::File::create(&tar_path).expect("create"))
            .expect("export");
        let unpacked = tmp.path().join(format!("{name}-unpacked"));
        fs::create_dir_all(&unpacked).expect("mkdir");
        let status = Command::new("tar")
            .arg("-xf")
            .arg(&tar_path)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .expect("tar");
        assert!(status.success());
        let mut exported = BTreeMap::new();
        host_walk(&unpacked, Path::new(""), &mut exported);
        exported.retain(|p, _| !p.starts_with("lost+found"));
        assert!(expected == exported, "{name}: the exported tar differs");
    }
}

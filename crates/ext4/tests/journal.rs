//! An image with a journal: e2fsck finds it clean, the kernel mounts it
//! read-write (ordered data), writes survive unmount, and it stays clean.

mod common;

use std::fs;
use std::process::Command;

use common::e2fsck_clean;
use containerization_ext4::{FormatOptions, Formatter, Image, Metadata, Timestamp};

#[test]
fn a_journaled_image_mounts_read_write_and_stays_clean() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("journal.ext4");
    let options = FormatOptions {
        journal: true,
        size: Some(256 << 20),
        ..FormatOptions::default()
    };
    let mut f = Formatter::create(&out, options).expect("create");
    let meta = Metadata::new(0o644, Timestamp::from_seconds(1_700_000_000));
    f.add_file("etc/hostname", &meta, &mut &b"box\n"[..])
        .expect("add");
    f.finish().expect("finish");
    e2fsck_clean(&out);
    let dumpe2fs = Command::new("dumpe2fs")
        .arg("-h")
        .arg(&out)
        .output()
        .expect("dumpe2fs");
    let text = String::from_utf8_lossy(&dumpe2fs.stdout);
    assert!(text.contains("has_journal"), "{text}");
    assert!(text.contains("Total journal blocks:"), "{text}");

    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).expect("mkdir");
    let mount = Command::new("mount")
        .args(["-t", "ext4", "-o", "loop,data=ordered"])
        .arg(&out)
        .arg(&dir)
        .output()
        .expect("mount");
    assert!(
        mount.status.success(),
        "{}",
        String::from_utf8_lossy(&mount.stderr)
    );
    let written = fs::write(dir.join("new-file"), vec![3u8; 100_000]);
    let read = fs::read(dir.join("etc/hostname"));
    let umount = Command::new("umount").arg(&dir).status().expect("umount");
    written.expect("write through the kernel");
    assert_eq!(read.expect("read"), b"box\n");
    assert!(umount.success());
    e2fsck_clean(&out);
    let image = Image::open(&out).expect("open");
    assert_eq!(
        image.read_file("new-file").expect("read"),
        vec![3u8; 100_000]
    );
}

//! Directory → image, checked by e2fsck, debugfs, a kernel mount and the
//! crate's own reader.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::{Compare, LoopMount, assert_same, debugfs_rdump, e2fsck_clean, snapshot};
use containerization_ext4::{FormatOptions, Formatter, Image};

fn build_source(root: &Path) {
    fs::create_dir_all(root.join("etc/deep/er/still")).expect("mkdir");
    fs::write(root.join("etc/hostname"), "box\n").expect("write");
    fs::write(root.join("etc/deep/er/still/file"), vec![7u8; 100_000]).expect("write");
    fs::write(root.join("empty"), b"").expect("write");
    symlink("etc/hostname", root.join("short-link")).expect("symlink");
    symlink("x".repeat(200), root.join("long-link")).expect("symlink");
    fs::hard_link(root.join("etc/hostname"), root.join("hard")).expect("link");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .expect("mknod");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("bigdev"),
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(259, 70_000),
    )
    .expect("mknod");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let _ = std::os::unix::net::UnixListener::bind(root.join("sock"));
    rustix::fs::setxattr(
        root.join("etc/hostname"),
        "user.small",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("xattr");
    rustix::fs::setxattr(
        root.join("empty"),
        "user.big",
        &[b'z'; 1500][..],
        rustix::fs::XattrFlags::empty(),
    )
    .expect("xattr");
    rustix::fs::chown(
        root.join("empty"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(70_000)),
    )
    .expect("chown");
    // A POSIX ACL (user::rw-, user:1000:r--, group::r--, mask::r--, other::---).
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, 1000),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    rustix::fs::setxattr(
        root.join("etc/deep/er/still/file"),
        "system.posix_acl_access",
        &acl,
        rustix::fs::XattrFlags::empty(),
    )
    .expect("set an ACL");
    // Many extents: data and holes alternating.
    let f = fs::File::create(root.join("fragmented")).expect("create");
    for i in 0..40u64 {
        std::os::unix::fs::FileExt::write_all_at(&f, &[1u8; 4096], i * 8192).expect("write");
    }
    for i in 0..700 {
        fs::write(
            root.join(format!("etc/deep/name-{i:04}-{}", "n".repeat(i % 50))),
            i.to_string(),
        )
        .expect("write");
    }
}

#[test]
fn a_directory_tree_survives_e2fsck_debugfs_and_a_kernel_mount() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    build_source(&src);
    // Before anything reads the source (reading moves atimes).
    let host = std::fs::symlink_metadata(src.join("etc/deep/er/still/file")).expect("lstat");
    let image = tmp.path().join("out.ext4");
    let mut f = Formatter::create(&image, FormatOptions::default()).expect("create");
    f.add_dir_tree(&src).expect("add");
    let summary = f.finish().expect("finish");
    assert!(
        summary.size < 16 << 20,
        "an automatic size of {} bytes is too large",
        summary.size
    );
    assert_eq!(std::fs::metadata(&image).expect("stat").len(), summary.size);
    e2fsck_clean(&image);

    let expected = snapshot(&src, Compare::ALL);
    let mount = LoopMount::new(&image);
    assert_same(&expected, &snapshot(mount.path(), Compare::ALL));

    let plain = Compare {
        owners: true,
        times: true,
        xattrs: false,
        links: false,
    };
    let dumped = debugfs_rdump(&image, tmp.path());
    // rdump writes directories, files and symlinks only.
    let dumpable = |e: &common::Entry| matches!(e.kind, "dir" | "file" | "symlink");
    let mut expected_plain = snapshot(&src, plain);
    expected_plain.retain(|_, e| dumpable(e));
    let mut dumped_snap = snapshot(&dumped, plain);
    for e in dumped_snap.values_mut().chain(expected_plain.values_mut()) {
        e.mtime.1 = 0;
    }
    assert_same(&expected_plain, &dumped_snap);

    let reader = Image::open(&image).expect("open");
    assert_eq!(reader.read_file("etc/hostname").expect("read"), b"box\n");
    assert_eq!(
        reader.read_link("long-link").expect("readlink"),
        "x".repeat(200).as_bytes()
    );
    // atime, ctime and crtime keep their nanoseconds too.
    let ours = reader
        .stat("etc/deep/er/still/file")
        .expect("stat")
        .metadata;
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (ours.ctime.seconds, i64::from(ours.ctime.nanoseconds)),
        (host.ctime(), host.ctime_nsec())
    );
    assert_eq!(
        (ours.atime.seconds, i64::from(ours.atime.nanoseconds)),
        (host.atime(), host.atime_nsec())
    );
    let born = host
        .created()
        .expect("btime")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    assert_eq!(
        (ours.crtime.seconds as u64, ours.crtime.nanoseconds),
        (born.as_secs(), born.subsec_nanos())
    );
    let stat = reader.stat("empty").expect("stat");
    assert_eq!((stat.metadata.uid, stat.metadata.gid), (1000, 70_000));
    assert_eq!(stat.metadata.xattrs[0].value.len(), 1500);
}

#[test]
fn a_64bit_journaled_image_of_the_same_tree_matches_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    build_source(&src);
    let image = tmp.path().join("wide.ext4");
    let options = FormatOptions {
        always_64bit: true,
        journal: true,
        ..FormatOptions::default()
    };
    let mut f = Formatter::create(&image, options).expect("create");
    f.add_dir_tree(&src).expect("add");
    f.finish().expect("finish");
    e2fsck_clean(&image);
    let features = std::process::Command::new("dumpe2fs")
        .arg("-h")
        .arg(&image)
        .output()
        .expect("dumpe2fs");
    let text = String::from_utf8_lossy(&features.stdout);
    assert!(
        text.contains(" 64bit") && text.contains("has_journal"),
        "{text}"
    );
    let mount = LoopMount::new(&image);
    assert_same(
        &snapshot(&src, Compare::ALL),
        &snapshot(mount.path(), Compare::ALL),
    );
    let reader = Image::open(&image).expect("open");
    assert_eq!(reader.read_file("etc/hostname").expect("read"), b"box\n");
}

#[test]
fn odd_fixed_sizes_make_images_e2fsck_and_the_kernel_accept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("f"), "hi\n").expect("write");
    // A last group of one block (a backup superblock without room for its
    // descriptors), of two, of 100, and sizes that are not block multiples.
    for size in [
        (128 << 20) + 4096,
        (128 << 20) + 8192,
        (384 << 20) + 409_600,
        (3 << 20) + 1234,
    ] {
        let image = tmp.path().join("odd.ext4");
        let options = FormatOptions {
            size: Some(size),
            ..FormatOptions::default()
        };
        let mut f = Formatter::create(&image, options).expect("create");
        f.add_dir_tree(&src).expect("add");
        let summary = f.finish().expect("finish");
        assert_eq!(summary.size, size / 4096 * 4096);
        e2fsck_clean(&image);
        let mount = LoopMount::new(&image);
        assert_eq!(
            std::fs::read(mount.path().join("f")).expect("read"),
            b"hi\n"
        );
    }
}

#[test]
fn one_and_two_kib_blocks_make_the_same_tree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    build_source(&src);
    // 1,500 bytes of xattr value need more than a 1 KiB xattr block.
    rustix::fs::removexattr(src.join("empty"), "user.big").expect("remove the xattr");
    let expected = snapshot(&src, Compare::ALL);
    for (block_size, journal, always_64bit) in [(1024, true, false), (2048, false, true)] {
        let image = tmp.path().join(format!("{block_size}.ext4"));
        let options = FormatOptions {
            block_size,
            journal,
            always_64bit,
            ..FormatOptions::default()
        };
        let mut f = Formatter::create(&image, options).expect("create");
        f.add_dir_tree(&src).expect("add");
        let summary = f.finish().expect("finish");
        assert_eq!(summary.block_size, u64::from(block_size));
        e2fsck_clean(&image);
        let mount = LoopMount::new(&image);
        assert_same(&expected, &snapshot(mount.path(), Compare::ALL));
        drop(mount);
        let reader = Image::open(&image).expect("open");
        assert_eq!(reader.block_size(), u64::from(block_size));
        assert_eq!(
            reader.read_link("long-link").expect("readlink"),
            "x".repeat(200).as_bytes()
        );
    }
}

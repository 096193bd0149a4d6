//! Scale: 100,000 small files, a directory of 50,000 long names (a
//! two-level htree), a 5 GiB sparse file, a file of more than 128 GiB made of
//! holes, and a file fragmented enough for an extent tree of depth 2.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::process::Command;

use common::{LoopMount, allocated, e2fsck_clean};
use containerization_ext4::{FormatOptions, Formatter, Image, Metadata, Timestamp};

fn meta() -> Metadata {
    Metadata::new(0o644, Timestamp::from_seconds(1_700_000_000))
}

#[test]
fn a_hundred_thousand_small_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("many.ext4");
    let mut f = Formatter::create(&out, FormatOptions::default()).expect("create");
    for i in 0..100_000u32 {
        let body = format!("file {i}\n");
        f.add_file(
            format!("d{:03}/f{i}", i % 300),
            &meta(),
            &mut body.as_bytes(),
        )
        .expect("add");
    }
    let summary = f.finish().expect("finish");
    assert!(summary.inodes_used > 100_000);
    e2fsck_clean(&out);
    let mount = LoopMount::new(&out);
    let count: usize = (0..300)
        .map(|d| {
            fs::read_dir(mount.path().join(format!("d{d:03}")))
                .expect("list")
                .count()
        })
        .sum();
    assert_eq!(count, 100_000);
    assert_eq!(
        fs::read_to_string(mount.path().join("d123/f99723")).expect("read"),
        "file 99723\n"
    );
}

#[test]
fn a_directory_of_fifty_thousand_long_names_is_an_htree_the_kernel_searches() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("big-dir.ext4");
    let mut f = Formatter::create(&out, FormatOptions::default()).expect("create");
    let name = |i: u32| format!("{i:06}-{}", "long-name-".repeat(10));
    for i in 0..50_000u32 {
        f.add_file(format!("big/{}", name(i)), &meta(), &mut &b""[..])
            .expect("add");
    }
    // Bytes over 0x7f hash as signed chars, as the superblock says.
    let odd: Vec<Vec<u8>> = (0..200u8)
        .map(|i| vec![b'x', 0x80 + (i % 100), 0xff - i, b'-', i])
        .filter(|n| !n.contains(&b'/') && !n.contains(&0))
        .collect();
    for name in &odd {
        let path = std::ffi::OsStr::from_bytes(&[b"big/", name.as_slice()].concat()).to_os_string();
        f.add_file(&path, &meta(), &mut &b""[..]).expect("add");
    }
    f.finish().expect("finish");
    e2fsck_clean(&out);
    // debugfs agrees the directory is indexed.
    let htree = Command::new("debugfs")
        .args(["-R", "htree /big"])
        .arg(&out)
        .output()
        .expect("debugfs");
    let text = String::from_utf8_lossy(&htree.stdout);
    assert!(
        text.contains("Indirect levels: 1"),
        "{}",
        &text[..text.len().min(500)]
    );
    let mount = LoopMount::new(&out);
    for i in [0, 1, 17_777, 49_999] {
        assert!(
            mount.path().join("big").join(name(i)).exists(),
            "the kernel cannot find entry {i}"
        );
    }
    assert!(!mount.path().join("big/absent").exists());
    for name in &odd {
        let path = mount
            .path()
            .join("big")
            .join(std::ffi::OsStr::from_bytes(name));
        assert!(path.exists(), "the kernel cannot find {name:?}");
    }
    let listed = fs::read_dir(mount.path().join("big"))
        .expect("list")
        .count();
    assert_eq!(listed, 50_000 + odd.len());
}

#[test]
fn sparse_files_keep_only_their_data_blocks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let host = |name: &str, size: u64, data_at: &[u64]| {
        let path = tmp.path().join(name);
        let file = fs::File::create(&path).expect("create");
        file.set_len(size).expect("size");
        for &at in data_at {
            file.write_all_at(&[0xA5; 4096], at).expect("write");
        }
        path
    };
    let five_gib = 5u64 << 30;
    let big = host("5g", five_gib, &[0, 1 << 30, five_gib - 4096]);
    let huge_size = 200u64 << 30;
    let huge = host("200g", huge_size, &[150 << 30, huge_size - 4096]);
    let fragmented_path = tmp.path().join("fragmented");
    let fragmented = fs::File::create(&fragmented_path).expect("create");
    for i in 0..2_000u64 {
        fragmented
            .write_all_at(&i.to_le_bytes().repeat(512), i * 8192)
            .expect("write");
    }

    let out = tmp.path().join("sparse.ext4");
    let mut f = Formatter::create(&out, FormatOptions::default()).expect("create");
    for (name, path) in [
        ("5g", &big),
        ("200g", &huge),
        ("fragmented", &fragmented_path),
    ] {
        let file = fs::File::open(path).expect("open");
        f.add_host_file(name, &meta(), &file).expect("add");
    }
    f.finish().expect("finish");
    e2fsck_clean(&out);
    assert!(
        allocated(&out) < 64 << 20,
        "the image file takes {} bytes",
        allocated(&out)
    );

    let mount = LoopMount::new(&out);
    let m = fs::metadata(mount.path().join("5g")).expect("stat");
    assert_eq!(m.len(), five_gib);
    assert_eq!(allocated(&mount.path().join("5g")), 3 * 4096);
    let mut block = [0u8; 4096];
    let file = fs::File::open(mount.path().join("200g")).expect("open");
    file.read_exact_at(&mut block, huge_size - 4096)
        .expect("read the last block");
    assert_eq!(block, [0xA5; 4096]);
    file.read_exact_at(&mut block, 100 << 30)
        .expect("read a hole");
    assert_eq!(block, [0; 4096]);
    assert_eq!(
        fs::metadata(mount.path().join("200g")).expect("stat").len(),
        huge_size
    );
    assert_eq!(
        common::content_digest(&mount.path().join("fragmented"), 2_000 * 8192 - 4096),
        common::content_digest(&fragmented_path, 2_000 * 8192 - 4096)
    );
    // Our reader walks the depth-2 tree too.
    let image = Image::open(&out).expect("open");
    let data = image.read_file("fragmented").expect("read");
    assert_eq!(&data[1999 * 8192..1999 * 8192 + 8], &1999u64.to_le_bytes());
}

#[test]
fn with_one_kib_blocks_a_big_directory_is_a_two_level_htree_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("small-blocks.ext4");
    let options = FormatOptions {
        block_size: 1024,
        ..FormatOptions::default()
    };
    let mut f = Formatter::create(&out, options).expect("create");
    let name = |i: u32| format!("{i:06}-{}", "long-name-".repeat(10));
    for i in 0..20_000u32 {
        f.add_file(
            format!("big/{}", name(i)),
            &meta(),
            &mut i.to_string().as_bytes(),
        )
        .expect("add");
    }
    f.finish().expect("finish");
    e2fsck_clean(&out);
    let htree = Command::new("debugfs")
        .args(["-R", "htree /big"])
        .arg(&out)
        .output()
        .expect("debugfs");
    let text = String::from_utf8_lossy(&htree.stdout);
    assert!(
        text.contains("Indirect levels: 1"),
        "{}",
        &text[..text.len().min(500)]
    );
    let mount = LoopMount::new(&out);
    for i in [0, 9_999, 19_999] {
        let got = fs::read_to_string(mount.path().join("big").join(name(i))).expect("read");
        assert_eq!(got, i.to_string());
    }
}

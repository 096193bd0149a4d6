//! OCI layers → image, compared with `umoci raw unpack` of the same layers.

mod common;

use std::path::Path;

use common::{
    Compare, LoopMount, assert_same, e2fsck_clean, image_from_layers, layer_blobs, snapshot,
    umoci_unpack,
};
use containerization_ext4::Image;
use containerization_testkit::{Compression, Fixture, fixture};

#[test]
fn the_layered_fixture_matches_umoci_through_the_kernel() {
    let fixture = fixture(Fixture::Layered).expect("fixture");
    let tmp = tempfile::tempdir().expect("tempdir");
    let image = tmp.path().join("layered.ext4");
    let layers = layer_blobs(fixture.layout(), fixture.name());
    image_from_layers(&layers, &image);
    e2fsck_clean(&image);

    let reference = umoci_unpack(&fixture, 3, tmp.path());
    common::gnu_tar_extract(&layers[3], &reference);
    let expected = snapshot(&reference, Compare::ALL);
    let mount = LoopMount::new(&image);
    let actual = snapshot(mount.path(), Compare::ALL);
    assert_same(&expected, &actual);

    // The sparse file keeps its holes: 3 blocks of data in 4 GiB.
    let sparse = mount.path().join("data/sparse/4g.img");
    assert!(
        common::allocated(&sparse) <= 64 << 10,
        "the sparse file lost its holes"
    );
    // A second reader agrees.
    let reader = Image::open(&image).expect("open");
    assert_eq!(reader.read_dir("data/big-dir").expect("list").len(), 10_000);
    assert_eq!(reader.stat("data/links/hard-1").expect("stat").links, 3);
    assert!(!Path::new(&mount.path().join("data/opaque/from-lower")).exists());
    // And so does ext4-view, an independent reader.
    let view = ext4_view::Ext4::load_from_path(&image).expect("ext4-view load");
    for path in ["/data/links/hard-2", "/data/xattrs/user", "/bin/busybox"] {
        let host = std::fs::read(mount.path().join(&path[1..])).expect("read through the kernel");
        assert_eq!(view.read(path).expect("ext4-view read"), host, "{path}");
    }
    assert_eq!(
        view.read_dir("/data/big-dir")
            .expect("ext4-view list")
            .count(),
        10_002
    );
}

#[test]
fn gzip_zstd_and_plain_layers_make_the_same_tree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut snapshots = Vec::new();
    for compression in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Uncompressed,
    ] {
        let fixture = fixture(Fixture::Compressed(compression)).expect("fixture");
        let image = tmp.path().join(format!("{compression:?}.ext4"));
        image_from_layers(&layer_blobs(fixture.layout(), fixture.name()), &image);
        e2fsck_clean(&image);
        let mount = LoopMount::new(&image);
        snapshots.push(snapshot(mount.path(), Compare::ALL));
    }
    assert_same(&snapshots[0], &snapshots[1]);
    assert_same(&snapshots[0], &snapshots[2]);
    assert!(snapshots[0].contains_key(Path::new("bin/busybox")));
}

/// A tar layer from (path, data) pairs; data `None` is a directory.
fn layer(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        match data {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                builder
                    .append_data(&mut header, path, *bytes)
                    .expect("append");
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, path, std::io::empty())
                    .expect("append");
            }
        }
    }
    builder.into_inner().expect("tar")
}

#[test]
fn space_a_later_layer_frees_is_neither_in_the_image_nor_in_the_file() {
    let big: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8 + 1).collect();
    let lower = layer(&[
        ("data", None),
        ("data/big", Some(&big)),
        ("data/replaced", Some(&big)),
        ("data/dir", None),
        ("data/dir/inner", Some(&big)),
    ]);
    let upper = layer(&[
        ("data/.wh.big", Some(b"")),
        ("data/replaced", Some(b"small now\n")),
        ("data/dir", Some(b"a file replaces the directory\n")),
    ]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("freed.ext4");
    let mut f = containerization_ext4::Formatter::create(&out, Default::default()).expect("create");
    f.unpack_layer(lower.as_slice()).expect("lower");
    f.unpack_layer(upper.as_slice()).expect("upper");
    let summary = f.finish().expect("finish");
    e2fsck_clean(&out);
    assert!(
        summary.blocks_used < 1024,
        "{} blocks still used",
        summary.blocks_used
    );
    assert!(
        common::allocated(&out) < 4 << 20,
        "the image file holds {} bytes",
        common::allocated(&out)
    );
    let image = Image::open(&out).expect("open");
    assert!(image.stat("data/big").is_err());
    assert_eq!(
        image.read_file("data/replaced").expect("read"),
        b"small now\n"
    );
    assert_eq!(
        image.read_file("data/dir").expect("read"),
        b"a file replaces the directory\n"
    );
}

#[test]
fn the_layered_fixture_matches_the_oci_crates_unpack() {
    let fixture = fixture(Fixture::Layered).expect("fixture");
    let tmp = tempfile::tempdir().expect("tempdir");
    let layers = layer_blobs(fixture.layout(), fixture.name());
    let image = tmp.path().join("layered.ext4");
    image_from_layers(&layers, &image);
    let target = tmp.path().join("oci-unpack");
    // Device nodes too: an image keeps them, a host unpack only when asked.
    let options = containerization_oci::layer::UnpackOptions {
        keep_devices: true,
        ..Default::default()
    };
    let mut unpacker =
        containerization_oci::layer::Unpacker::with_options(&target, &options).expect("unpacker");
    for layer in &layers {
        let mut reader = std::io::BufReader::new(std::fs::File::open(layer).expect("open"));
        let gzip = std::io::BufRead::fill_buf(&mut reader)
            .expect("peek")
            .starts_with(&[0x1f, 0x8b]);
        let stream: Box<dyn std::io::Read> = if gzip {
            Box::new(flate2::bufread::MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        };
        unpacker
            .apply_layer(stream, &layer.display().to_string())
            .expect("apply");
    }
    unpacker.finish().expect("finish");
    let mount = LoopMount::new(&image);
    let mut expected = snapshot(&target, Compare::ALL);
    let mut actual = snapshot(mount.path(), Compare::ALL);
    // The oci crate's unpack sets times to whole seconds; ours (like umoci,
    // compared above) keeps the layer's nanoseconds.
    for e in expected.values_mut().chain(actual.values_mut()) {
        e.mtime.1 = 0;
    }
    assert_same(&expected, &actual);
}

fn symlink_layer(links: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder
            .append_link(&mut header, path, target)
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

#[test]
fn entries_under_a_symlinked_directory_land_where_it_points() {
    let lower = layer(&[("usr", None), ("usr/lib", None), ("etc", None)]);
    let links = symlink_layer(&[
        ("lib", "usr/lib"),
        ("abs", "/usr/lib"),
        ("etc/up", "../usr"),
        ("loop", "loop"),
    ]);
    let upper = layer(&[
        ("lib/via-relative", Some(b"1")),
        ("abs/via-absolute", Some(b"2")),
        ("etc/up/lib/via-dotdot", Some(b"3")),
        ("lib/.wh.via-relative", Some(b"")),
    ]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("symlinked.ext4");
    let mut f = containerization_ext4::Formatter::create(&out, Default::default()).expect("create");
    for l in [&lower, &links, &upper] {
        f.unpack_layer(l.as_slice()).expect("layer");
    }
    let looping = layer(&[("loop/file", Some(b"x"))]);
    let err = f
        .unpack_layer(looping.as_slice())
        .expect_err("a symlink loop leads nowhere");
    assert!(err.to_string().contains("symbolic links"), "{err}");
    drop(f);

    let mut f = containerization_ext4::Formatter::create(&out, Default::default()).expect("create");
    for l in [&lower, &links, &upper] {
        f.unpack_layer(l.as_slice()).expect("layer");
    }
    f.finish().expect("finish");
    e2fsck_clean(&out);
    let image = Image::open(&out).expect("open");
    let names: Vec<Vec<u8>> = image
        .read_dir("usr/lib")
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(image.read_file("usr/lib/via-absolute").expect("read"), b"2");
    assert_eq!(image.read_file("usr/lib/via-dotdot").expect("read"), b"3");
    assert_eq!(image.read_link("lib").expect("readlink"), b"usr/lib");
}

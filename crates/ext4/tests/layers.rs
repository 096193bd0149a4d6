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

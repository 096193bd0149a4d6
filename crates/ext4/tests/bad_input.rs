//! Bad input fails with a clear error and leaves no image (and no temporary
//! file) behind.

use std::fs;
use std::path::Path;

use containerization_ext4::{Error, FormatOptions, Formatter, Metadata, Timestamp};

fn meta() -> Metadata {
    Metadata::new(0o644, Timestamp::from_seconds(1_700_000_000))
}

/// Asserts the folder holds nothing but `keep`.
fn assert_nothing_left(dir: &Path, keep: &[&str]) {
    let left: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn layer_error(layer: &[u8]) -> (Error, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut f =
        Formatter::create(tmp.path().join("out.ext4"), FormatOptions::default()).expect("create");
    let err = f
        .unpack_layer(layer)
        .expect_err("the layer must be refused");
    drop(f);
    (err, tmp)
}

#[test]
fn an_image_too_small_for_its_content_is_refused_and_removed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("small.ext4");
    let mut f = Formatter::create(
        &out,
        FormatOptions {
            size: Some(2 << 20),
            ..FormatOptions::default()
        },
    )
    .expect("create");
    let data = vec![1u8; 4 << 20];
    let err = f
        .add_file("big", &meta(), &mut data.as_slice())
        .expect_err("too small");
    assert!(err.to_string().contains("give a larger size"), "{err}");
    drop(f);
    assert_nothing_left(tmp.path(), &[]);
}

#[test]
fn a_size_too_small_for_the_tables_fails_at_finish_without_leftovers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("small.ext4");
    let mut f = Formatter::create(
        &out,
        FormatOptions {
            size: Some(1 << 20),
            ..FormatOptions::default()
        },
    )
    .expect("create");
    // 251 data blocks leave too few of the 256 for directories and tables.
    let data = vec![1u8; 251 * 4096];
    let result = f
        .add_file("big", &meta(), &mut data.as_slice())
        .and_then(|()| f.finish().map(|_| ()));
    let err = result.expect_err("too small");
    assert!(matches!(err, Error::OutOfSpace { .. }), "{err}");
    assert_nothing_left(tmp.path(), &[]);
}

#[test]
fn a_name_longer_than_255_bytes_is_refused() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_mode(0o644);
    let long = format!("dir/{}", "n".repeat(256));
    builder
        .append_data(&mut header, &long, &b"x"[..])
        .expect("append");
    let layer = builder.into_inner().expect("tar");
    let (err, tmp) = layer_error(&layer);
    assert!(matches!(err, Error::NameTooLong { len: 256, .. }), "{err}");
    assert!(err.to_string().contains("255 bytes at most"));
    assert_nothing_left(tmp.path(), &[]);
}

#[test]
fn truncated_layers_are_refused_plain_and_gzip() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "data.bin", data.as_slice())
        .expect("append");
    let tar = builder.into_inner().expect("tar");

    let (err, tmp) = layer_error(&tar[..tar.len() / 2]);
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_nothing_left(tmp.path(), &[]);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let (err, tmp) = layer_error(&gz[..gz.len() / 2]);
    assert!(
        matches!(err, Error::Tar { layer: 1, .. } | Error::Data { .. }),
        "{err}"
    );
    assert_nothing_left(tmp.path(), &[]);
}

#[test]
fn a_hard_link_to_nothing_is_refused() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Link);
    header.set_size(0);
    builder
        .append_link(&mut header, "link", "missing")
        .expect("append");
    let (err, _tmp) = layer_error(&builder.into_inner().expect("tar"));
    assert!(matches!(err, Error::DanglingHardLink { .. }), "{err}");
}

#[test]
fn block_sizes_other_than_1_2_and_4_kib_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for block_size in [512, 3000, 8192] {
        let options = FormatOptions {
            block_size,
            ..FormatOptions::default()
        };
        let err = Formatter::create(tmp.path().join("x.ext4"), options).expect_err("refused");
        assert!(err.to_string().contains("1024, 2048 or 4096"), "{err}");
    }
    assert_nothing_left(tmp.path(), &[]);
}

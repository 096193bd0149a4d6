//! Layers and files claiming more than the image can hold: refused from
//! their headers, or stopped at the image's size, never left to run. Each
//! test runs on a watched thread, so a writer that spins fails the test
//! instead of hanging it.

mod common;

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use common::e2fsck_clean;
use common::raw_tar::RawTar;
use containerization_ext4::{Error, FormatOptions, Formatter, Metadata, Timestamp};
use tar::{EntryType, Header};

/// 1 PiB.
const PIB: u64 = 1 << 50;

/// How long any of these may take before it counts as spinning.
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `work` on its own thread and gives its result, or panics when it
/// takes longer than [`PATIENCE`].
fn within_patience<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(PATIENCE)
        .expect("the writer is still running: it spins on input it should refuse")
}

/// A fixed-size image of 8 MiB.
fn eight_mib() -> FormatOptions {
    FormatOptions {
        size: Some(8 << 20),
        ..FormatOptions::default()
    }
}

/// Unpacks `layer` into a new image made with `options`; gives the error
/// and, when `finish_anyway`, checks the image finished after it.
fn refusal(layer: Vec<u8>, options: FormatOptions, finish_anyway: bool) -> Error {
    within_patience(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("image.ext4");
        let mut f = Formatter::create(&out, options).expect("create");
        let err = f
            .unpack_layer(layer.as_slice())
            .expect_err("the layer must be refused");
        if finish_anyway {
            f.finish().expect("finish after the refusal");
            e2fsck_clean(&out);
        }
        err
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

#[test]
fn a_header_claiming_a_1_pib_file_is_refused_before_its_data() {
    let mut tar = RawTar::new();
    tar.header_only(EntryType::Regular, b"huge", PIB);
    let err = refusal(tar.finish(), FormatOptions::default(), false);
    assert!(
        matches!(&err, Error::FileBeyondImage { layer: 1, size, .. } if *size == PIB),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("layer 1: huge is 1125899906842624 bytes"),
        "{message}"
    );
}

/// A GNU sparse header for a file of `size` bytes that are all a hole: one
/// sparse block at its end with no data, so the tar reader hands out
/// `size` zeros for it.
fn all_hole(name: &[u8], size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::GNUSparse);
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_mode(0o644);
    header.set_size(0);
    if let Some(gnu) = header.as_gnu_mut() {
        gnu.set_real_size(size);
        gnu.sparse[0].set_offset(size);
        gnu.sparse[0].set_length(0);
    }
    header.set_cksum();
    header
}

#[test]
fn a_gnu_sparse_entry_claiming_1_pib_is_refused_before_its_holes() {
    let mut tar = RawTar::new();
    tar.raw_header(&all_hole(b"sparse", PIB));
    let layer = gzip(&tar.finish());
    assert!(layer.len() < 200, "the layer is {} bytes", layer.len());
    let err = refusal(layer, FormatOptions::default(), false);
    assert!(
        matches!(&err, Error::FileBeyondImage { layer: 1, size, .. } if *size == PIB),
        "{err}"
    );
    assert!(err.to_string().contains("sparse"), "{err}");
}

#[test]
fn a_file_larger_than_a_fixed_size_image_is_refused_even_all_zeros() {
    let zeros = vec![0u8; 9 << 20];
    let mut tar = RawTar::new();
    tar.entry(EntryType::Regular, b"zeros", b"", &zeros);
    let err = refusal(gzip(&tar.finish()), eight_mib(), true);
    assert!(
        matches!(&err, Error::FileBeyondImage { capacity, .. } if *capacity == 8 << 20),
        "{err}"
    );
}

#[test]
fn sparse_files_adding_up_past_the_image_stop_the_layer() {
    // Each 3 MiB hole fits; three of them are more than the 8 MiB image
    // can hold, though the layer's stream is a few kilobytes.
    let mut tar = RawTar::new();
    for name in [&b"one"[..], b"two", b"three", b"four"] {
        tar.raw_header(&all_hole(name, 3 << 20));
    }
    let err = refusal(tar.finish(), eight_mib(), true);
    assert!(
        matches!(&err, Error::LayerBeyondImage { layer: 1, path, .. } if path.as_os_str() == "three"),
        "{err}"
    );
}

#[test]
fn a_stream_of_headers_past_the_image_is_stopped() {
    // 20,000 directories take 10 MiB of headers, more than 8 MiB.
    let mut tar = RawTar::new();
    for i in 0..20_000 {
        tar.entry(EntryType::Directory, format!("d{i}").as_bytes(), b"", b"");
    }
    let layer = zstd::encode_all(tar.finish().as_slice(), 19).expect("zstd");
    let err = refusal(layer, eight_mib(), false);
    assert!(
        matches!(err, Error::LayerBeyondImage { layer: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("damaged or hostile"), "{err}");
}

#[test]
fn an_endless_file_stops_at_the_image_size() {
    let err = within_patience(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("image.ext4");
        let mut f = Formatter::create(&out, eight_mib()).expect("create");
        let meta = Metadata::new(0o644, Timestamp::from_seconds(1_700_000_000));
        let err = f
            .add_file("endless", &meta, &mut std::io::repeat(1))
            .expect_err("an endless file cannot fit");
        f.finish().expect("finish after the refusal");
        e2fsck_clean(&out);
        err
    });
    assert!(
        matches!(
            err,
            Error::FileBeyondImage { layer: 0, .. } | Error::OutOfSpace { .. }
        ),
        "{err}"
    );
    let err = within_patience(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut f = Formatter::create(tmp.path().join("image.ext4"), eight_mib()).expect("create");
        let meta = Metadata::new(0o644, Timestamp::from_seconds(1_700_000_000));
        f.add_file("endless-zeros", &meta, &mut std::io::repeat(0))
            .expect_err("an endless file of zeros cannot fit")
    });
    assert!(
        matches!(&err, Error::FileBeyondImage { layer: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("endless-zeros is "), "{err}");
}

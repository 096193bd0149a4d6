//! Directory trees far deeper than any call stack could walk: a layer can
//! nest directories 100,000 levels deep in a few hundred kilobytes, and the
//! writer must build, remove and finish such a tree without recursing over
//! its depth. Each test runs on a thread with the default 2 MiB stack, so
//! a recursion over the depth shows up as a stack overflow.

mod common;

use std::path::Path;

use common::e2fsck_clean;
use containerization_ext4::{FormatOptions, Formatter, Image};

/// Levels of the deep tree.
const DEPTH: usize = 100_000;

/// The path `d/d/…/d` with `depth` names.
fn chain(depth: usize) -> String {
    vec!["d"; depth].join("/")
}

/// A layer holding one file at the bottom of a `DEPTH`-deep directory
/// chain; the tar crate's builder writes the name as a GNU long name, and
/// the directories on the way are made by the writer.
fn deep_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(6);
    builder
        .append_data(&mut header, format!("{}/f", chain(DEPTH)), &b"bottom"[..])
        .expect("append the deep file");
    builder.into_inner().expect("tar")
}

/// A layer whiting out `name` at the root.
fn whiteout_layer(name: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(0);
    builder
        .append_data(&mut header, format!(".wh.{name}"), &b""[..])
        .expect("append the whiteout");
    builder.into_inner().expect("tar")
}

/// 1 KiB blocks keep the 100,000 directory blocks at 100 MiB.
fn options() -> FormatOptions {
    FormatOptions {
        block_size: 1024,
        ..FormatOptions::default()
    }
}

/// Runs `work` on a thread with the default 2 MiB stack.
fn on_small_stack(work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(work)
        .expect("spawn")
        .join()
        .expect("the writer overflowed or panicked");
}

fn write_image(out: &Path, layers: &[Vec<u8>]) {
    let mut f = Formatter::create(out, options()).expect("create");
    for layer in layers {
        f.unpack_layer(layer.as_slice()).expect("layer");
    }
    f.finish().expect("finish");
}

#[test]
fn a_tree_100000_directories_deep_is_written_and_reads_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("deep.ext4");
    let image = out.clone();
    on_small_stack(move || write_image(&image, &[deep_layer()]));
    e2fsck_clean(&out);
    let image = Image::open(&out).expect("open");
    let bottom = format!("{}/f", chain(DEPTH));
    assert_eq!(
        image.read_file(&bottom).expect("read the bottom"),
        b"bottom"
    );
}

#[test]
fn whiting_out_the_top_of_a_100000_deep_tree_removes_all_of_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("whited-out.ext4");
    let image = out.clone();
    on_small_stack(move || write_image(&image, &[deep_layer(), whiteout_layer("d")]));
    e2fsck_clean(&out);
    let image = Image::open(&out).expect("open");
    let names: Vec<Vec<u8>> = image
        .read_dir("")
        .expect("list the root")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, [b"lost+found".to_vec()]);
    let root = image.stat("").expect("stat the root");
    assert_eq!(root.links, 3, "the root holds only lost+found");
}

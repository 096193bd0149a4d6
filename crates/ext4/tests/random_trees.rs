//! Property test: random trees (deep paths, 255-byte names, holes, long and
//! short symlinks, many hard links) come back the same through our reader
//! and through `ext4-view`, an independent one, and pass `e2fsck -fn`.

mod common;

use std::collections::BTreeMap;

use containerization_ext4::{FormatOptions, Formatter, Image, Metadata, Timestamp};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Tree {
    File(Vec<u8>),
    Symlink(String),
    Dir(BTreeMap<String, Tree>),
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9._-]{1,16}",
        1 => "[a-z]{255}",
    ]
    .prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..9000),
        (0usize..20_000, any::<u8>()).prop_map(|(zeros, tail)| {
            let mut v = vec![0u8; zeros];
            v.push(tail);
            v
        }),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        3 => content().prop_map(Tree::File),
        1 => "[a-z/.]{1,120}".prop_map(Tree::Symlink),
    ];
    leaf.prop_recursive(10, 80, 6, |inner| {
        prop::collection::btree_map(name(), inner, 0..6).prop_map(Tree::Dir)
    })
}

/// Adds `tree` at `path`; collects the files' paths.
fn add(f: &mut Formatter, path: &str, tree: &Tree, files: &mut Vec<String>) {
    let meta = Metadata::new(0o640, Timestamp::from_seconds(1_700_000_000));
    match tree {
        Tree::File(data) => {
            f.add_file(path, &meta, &mut data.as_slice()).expect("file");
            files.push(path.to_string());
        }
        Tree::Symlink(target) => f.add_symlink(path, &meta, target).expect("symlink"),
        Tree::Dir(children) => {
            f.create_dir(path, &Metadata::new(0o755, meta.mtime))
                .expect("dir");
            for (name, child) in children {
                add(f, &format!("{path}/{name}"), child, files);
            }
        }
    }
}

fn check(image: &Image, view: &ext4_view::Ext4, path: &str, tree: &Tree) {
    match tree {
        Tree::File(data) => {
            assert_eq!(&image.read_file(path).expect("read"), data, "{path}");
            assert_eq!(&view.read(path).expect("ext4-view read"), data, "{path}");
        }
        Tree::Symlink(target) => {
            assert_eq!(image.read_link(path).expect("readlink"), target.as_bytes());
            let got = view.read_link(path).expect("ext4-view readlink");
            assert_eq!(got.as_ref(), target.as_bytes());
        }
        Tree::Dir(children) => {
            let listed = image.read_dir(path).expect("list").len();
            // The root also holds lost+found and the hard links.
            assert!(listed >= children.len());
            if path != "/" {
                assert_eq!(listed, children.len(), "{path}");
            }
            for (name, child) in children {
                check(
                    image,
                    view,
                    &format!("{}/{name}", path.trim_end_matches('/')),
                    child,
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_trees_read_back_the_same(
        children in prop::collection::btree_map(name(), tree(), 1..8),
        links in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("random.ext4");
        let mut f = Formatter::create(&out, FormatOptions::default()).expect("create");
        let mut files = Vec::new();
        for (name, child) in &children {
            add(&mut f, &format!("/{name}"), child, &mut files);
        }
        let mut linked = BTreeMap::new();
        if !files.is_empty() {
            for (i, index) in links.iter().enumerate() {
                let target = index.get(&files).clone();
                f.add_hard_link(format!("/hard-link-{i}"), &target).expect("hard link");
                *linked.entry(target).or_insert(1u32) += 1;
            }
        }
        f.finish().expect("finish");
        common::e2fsck_clean(&out);
        let image = Image::open(&out).expect("open");
        let view = ext4_view::Ext4::load_from_path(&out).expect("ext4-view load");
        check(&image, &view, "/", &Tree::Dir(children.clone()));
        for (target, count) in linked {
            prop_assert_eq!(image.stat(&target).expect("stat").links, count);
        }
    }
}

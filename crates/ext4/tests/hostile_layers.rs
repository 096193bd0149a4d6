//! Layers built to trick an unpacker, one row per case: the entries, and
//! where each lands or what refuses them.
//!
//! The rule (shared with the host-side unpacker): an entry's parent path is
//! resolved as if the image root were `/` (chroot, `RESOLVE_IN_ROOT`):
//! symlinks on the way are followed, absolute targets start at the image
//! root, `..` in a symlink's target stops at the root; `..` in an entry's
//! own path is refused; missing directories are made; a
//! parent that is not a directory, or more than 40 symlinks, is an error.
//! The last name is never followed. A hard link's target is resolved the
//! same way and must exist and not be a directory.
//!
//! Every image that is written must pass `e2fsck -fn`, and is then read
//! back with the crate's reader to see where each entry landed.

mod common;

use common::e2fsck_clean;
use common::raw_tar::{Item, RawTar};
use containerization_ext4::{FileKind, FormatOptions, Formatter, Image};

use Item::{Dir, File, HardLink, Symlink};

/// What one path of the finished image holds.
#[derive(Debug)]
enum Holds {
    /// A regular file with this content and this many names.
    File(&'static str, u32),
    /// A directory.
    Dir,
    /// A symlink with this target.
    Symlink(&'static str),
    /// Nothing.
    Nothing,
}

/// How a case ends.
#[derive(Debug)]
enum Outcome {
    /// The image is written and holds, at each path, what is said.
    Lands(&'static [(&'static str, Holds)]),
    /// A layer is refused with an error whose message holds this text;
    /// the image, finished anyway, still holds what is listed.
    Refused(&'static str, &'static [(&'static str, Holds)]),
}

/// One case: a name, its layers (lowest first) and how it ends.
struct Case {
    name: &'static str,
    layers: &'static [&'static [Item]],
    outcome: Outcome,
}

use Outcome::{Lands, Refused};

const RESOLUTION: &[Case] = &[
    Case {
        name: "a symlink to / leads to the image root",
        layers: &[&[Symlink("root", "/"), File("root/etc/f", "1")]],
        outcome: Lands(&[
            ("etc/f", Holds::File("1", 1)),
            ("root", Holds::Symlink("/")),
        ]),
    },
    Case {
        name: "a symlink to ../.. stops at the image root",
        layers: &[&[Dir("a"), Symlink("a/up", "../.."), File("a/up/f", "2")]],
        outcome: Lands(&[("f", Holds::File("2", 1)), ("a/f", Holds::Nothing)]),
    },
    Case {
        name: "a symlink climbing out of a nested directory stops at the root",
        layers: &[&[
            Dir("a/b"),
            Symlink("a/b/out", "../../../../etc"),
            File("a/b/out/f", "3"),
        ]],
        outcome: Lands(&[("etc/f", Holds::File("3", 1))]),
    },
    Case {
        name: "an absolute symlink target starts at the image root",
        layers: &[&[
            Dir("usr/lib"),
            Symlink("lib", "/usr/lib"),
            File("lib/f", "4"),
        ]],
        outcome: Lands(&[("usr/lib/f", Holds::File("4", 1))]),
    },
    Case {
        name: "a chain of symlinks is followed to its end",
        layers: &[&[
            Dir("real"),
            Symlink("one", "two"),
            Symlink("two", "/three"),
            Symlink("three", "./real/"),
            File("one/f", "5"),
        ]],
        outcome: Lands(&[("real/f", Holds::File("5", 1))]),
    },
    Case {
        name: "a symlink loop is refused",
        layers: &[&[Symlink("a", "b"), Symlink("b", "a"), File("a/f", "x")]],
        outcome: Refused("more than 40 symbolic links", &[]),
    },
    Case {
        name: "a parent that is a regular file is refused",
        layers: &[&[File("file", "x"), File("file/f", "y")]],
        outcome: Refused("file is not a directory", &[]),
    },
    Case {
        name: "a parent that is a symlink to a regular file is refused",
        layers: &[&[
            File("file", "x"),
            Symlink("link", "file"),
            File("link/f", "y"),
        ]],
        outcome: Refused("link is not a directory", &[]),
    },
    Case {
        name: "a dangling symlink parent gets its target made inside the image",
        layers: &[&[Symlink("opt", "/missing/dir"), File("opt/f", "6")]],
        outcome: Lands(&[
            ("missing/dir/f", Holds::File("6", 1)),
            ("opt", Holds::Symlink("/missing/dir")),
        ]),
    },
    Case {
        name: "an entry path climbing with .. is refused",
        layers: &[&[File("../../escape", "7")]],
        outcome: Refused("'..'", &[("escape", Holds::Nothing)]),
    },
    Case {
        name: "an entry path with .. inside is refused",
        layers: &[&[File("a/../../b/f", "8")]],
        outcome: Refused("'..'", &[("b", Holds::Nothing)]),
    },
    Case {
        name: "an entry whose last name is .. is refused: it names no entry of its own",
        layers: &[&[Dir("a"), Dir("a/..")]],
        outcome: Refused("the entry a/.. is refused", &[]),
    },
    Case {
        name: "a hard link whose target's last name is .. is refused",
        layers: &[&[File("a/f", "x"), HardLink("h", "a/..")]],
        outcome: Refused("its link target has a '..' component", &[]),
    },
    Case {
        name: "an absolute entry path starts at the image root",
        layers: &[&[File("/abs/f", "9")]],
        outcome: Lands(&[("abs/f", Holds::File("9", 1))]),
    },
    Case {
        name: ".. in a symlink's target goes to the parent of where it points",
        layers: &[&[
            Dir("usr/lib"),
            Symlink("lib", "usr/lib"),
            Symlink("up", "lib/.."),
            File("up/f", "10"),
        ]],
        outcome: Lands(&[("usr/f", Holds::File("10", 1)), ("f", Holds::Nothing)]),
    },
    Case {
        name: "an entry replaces a symlink at its path, never writes through it",
        layers: &[&[Dir("target"), Symlink("link", "target"), File("link", "11")]],
        outcome: Lands(&[
            ("link", Holds::File("11", 1)),
            ("target", Holds::Dir),
            ("target/link", Holds::Nothing),
        ]),
    },
    Case {
        name: "a symlink in a later layer redirects entries of that layer",
        layers: &[
            &[Dir("usr/lib"), Dir("lib")],
            &[Symlink("lib", "usr/lib"), File("lib/f", "12")],
        ],
        outcome: Lands(&[
            ("usr/lib/f", Holds::File("12", 1)),
            ("lib", Holds::Symlink("usr/lib")),
        ]),
    },
    Case {
        name: "a hard link through a symlinked parent links the file it reaches",
        layers: &[&[
            File("usr/lib/real", "13"),
            Symlink("lib", "usr/lib"),
            HardLink("lib/alias", "lib/real"),
        ]],
        outcome: Lands(&[
            ("usr/lib/alias", Holds::File("13", 2)),
            ("usr/lib/real", Holds::File("13", 2)),
        ]),
    },
    Case {
        name: "a hard link target with a leading / starts at the image root",
        layers: &[&[File("x/f", "14"), HardLink("h", "/x/f")]],
        outcome: Lands(&[("h", Holds::File("14", 2))]),
    },
    Case {
        name: "a hard link target with .. is refused",
        layers: &[&[File("x/f", "14"), HardLink("h", "../x/f")]],
        outcome: Refused("'..'", &[("h", Holds::Nothing)]),
    },
    Case {
        name: "a hard link to a symlink links the symlink, not what it points at",
        layers: &[&[File("f", "15"), Symlink("s", "f"), HardLink("h", "s")]],
        outcome: Lands(&[("h", Holds::Symlink("f")), ("f", Holds::File("15", 1))]),
    },
    Case {
        name: "a hard link to a missing file is refused",
        layers: &[&[HardLink("link", "missing")]],
        outcome: Refused("not in the image", &[]),
    },
    Case {
        name: "a hard link to a directory is refused",
        layers: &[&[Dir("d"), HardLink("link", "d")]],
        outcome: Refused("to the directory d", &[]),
    },
];

/// A hard link whose own path holds its target: the target is resolved
/// first, and a link that would remove its own file is refused.
const HARD_LINKS_OVER_THEIR_TARGET: &[Case] = &[
    Case {
        name: "a hard link replacing the directory holding its target is refused",
        layers: &[&[Dir("a"), File("a/f", "x"), HardLink("a", "a/f")]],
        outcome: Refused("the hard link a points at a/f", KEEPS_A_F),
    },
    Case {
        name: "a hard link replacing a directory holding its target deeper down is refused",
        layers: &[&[File("a/b/f", "x"), HardLink("a", "a/b/f")]],
        outcome: Refused("would remove the file it links to", &[]),
    },
    Case {
        name: "a hard link through a symlink into the directory it replaces is refused",
        layers: &[&[File("a/f", "x"), Symlink("s", "a"), HardLink("a", "s/f")]],
        outcome: Refused("layer 1: the hard link a points at s/f", KEEPS_A_F),
    },
    Case {
        name: "a hard link replacing its target's directory keeps a file named elsewhere",
        layers: &[&[
            Dir("a"),
            File("a/f", "x"),
            HardLink("keep", "a/f"),
            HardLink("a", "a/f"),
        ]],
        outcome: Lands(&[
            ("a", Holds::File("x", 2)),
            ("keep", Holds::File("x", 2)),
            ("a/f", Holds::Nothing),
        ]),
    },
    Case {
        name: "a hard link from a later layer over its target's directory is refused",
        layers: &[&[File("a/f", "x")], &[HardLink("a", "a/f")]],
        outcome: Refused("layer 2: the hard link a", KEEPS_A_F),
    },
];

/// What the refused hard links must leave in place.
const KEEPS_A_F: &[(&str, Holds)] = &[("a", Holds::Dir), ("a/f", Holds::File("x", 1))];

/// Whiteouts that name no entry of their directory, or whiteout names used
/// as directories: refused before anything is removed.
const WHITEOUT_NAMES: &[Case] = &[
    Case {
        name: "an empty whiteout name is refused and keeps its directory",
        layers: &[&[File("dir/keep", "1")], &[File("dir/.wh.", "")]],
        outcome: Refused("the entry dir/.wh. is refused", KEEPS_DIR),
    },
    Case {
        name: "a whiteout of . is refused and keeps its directory",
        layers: &[&[File("dir/keep", "1")], &[File("dir/.wh..", "")]],
        outcome: Refused("the entry dir/.wh.. is refused", KEEPS_DIR),
    },
    Case {
        name: "a whiteout of .. is refused and keeps the parent",
        layers: &[&[File("dir/keep", "1")], &[File("dir/sub/.wh...", "")]],
        outcome: Refused("the entry dir/sub/.wh... is refused", KEEPS_DIR),
    },
    Case {
        name: "a whiteout of .. at the root is refused",
        layers: &[&[File("dir/keep", "1")], &[File(".wh...", "")]],
        outcome: Refused("the entry .wh... is refused", KEEPS_DIR),
    },
    Case {
        name: "a whiteout name used as a directory is refused",
        layers: &[&[File("dir/keep", "1")], &[File("dir/.wh.keep/x", "")]],
        outcome: Refused("the entry dir/.wh.keep/x is refused", KEEPS_DIR),
    },
    Case {
        name: "a whiteout of a name with a slash after it is refused",
        layers: &[&[File("dir/keep", "1")], &[File(".wh.dir/keep", "")]],
        outcome: Refused("the entry .wh.dir/keep is refused", KEEPS_DIR),
    },
    Case {
        name: "a whiteout written as a directory entry still removes only its name",
        layers: &[
            &[File("dir/keep", "1"), File("dir/gone", "2")],
            &[Dir("dir/.wh.gone/")],
        ],
        outcome: Lands(&[
            ("dir/keep", Holds::File("1", 1)),
            ("dir/gone", Holds::Nothing),
        ]),
    },
];

/// What the whiteout rows must leave in place.
const KEEPS_DIR: &[(&str, Holds)] = &[("dir", Holds::Dir), ("dir/keep", Holds::File("1", 1))];

/// Runs one case and panics with its name when it goes otherwise.
fn run(case: &Case) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("image.ext4");
    let mut f = Formatter::create(&out, FormatOptions::default()).expect("create");
    let mut result = Ok(());
    for layer in case.layers {
        result = f.unpack_layer(RawTar::layer(layer).as_slice());
        if result.is_err() {
            break;
        }
    }
    let expected = match (&case.outcome, result) {
        (Refused(text, keeps), Err(err)) => {
            let message = err.to_string();
            assert!(message.contains(text), "{}: {message}", case.name);
            if keeps.is_empty() {
                return;
            }
            keeps
        }
        (Refused(text, _), Ok(())) => panic!("{}: accepted, expected {text:?}", case.name),
        (Lands(_), Err(err)) => panic!("{}: refused: {err}", case.name),
        (Lands(expected), Ok(())) => expected,
    };
    f.finish().expect("finish");
    e2fsck_clean(&out);
    let image = Image::open(&out).expect("open");
    for (path, holds) in *expected {
        let what = format!("{}: {path}", case.name);
        match holds {
            Holds::File(content, links) => {
                let stat = image.stat(path).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(stat.kind, FileKind::Regular, "{what}");
                assert_eq!(stat.links, *links, "{what}");
                let data = image.read_file(path).expect("read");
                assert_eq!(data, content.as_bytes(), "{what}");
            }
            Holds::Dir => {
                let stat = image.stat(path).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(stat.kind, FileKind::Directory, "{what}");
            }
            Holds::Symlink(target) => {
                let link = image
                    .read_link(path)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(link, target.as_bytes(), "{what}");
            }
            Holds::Nothing => assert!(image.stat(path).is_err(), "{what}: exists"),
        }
    }
}

#[test]
fn entry_and_link_paths_resolve_inside_the_image_root() {
    for case in RESOLUTION {
        run(case);
    }
}

#[test]
fn whiteouts_naming_no_entry_of_their_directory_are_refused() {
    for case in WHITEOUT_NAMES {
        run(case);
    }
}

#[test]
fn a_hard_link_that_would_remove_its_own_target_is_refused() {
    for case in HARD_LINKS_OVER_THEIR_TARGET {
        run(case);
    }
}

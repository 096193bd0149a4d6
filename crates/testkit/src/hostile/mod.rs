//! Hostile images: layers written by Python's `tarfile` (never by the
//! project's own writer) that try to reach the host, and what each unpack
//! path must do with them.
//!
//! [`hostile_cases`] writes every case's layers, aimed at a sentinel folder
//! ([`Sentinels`]) outside the target, and returns one table that the host
//! unpack (`pull --unpack`, `image load`) and the ext4 writer (`rootfs
//! create`) are both checked against: the two must agree, and after any case
//! the sentinels must be exactly as they were.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::run;
use crate::fixtures::layout::Layout;
use crate::{Error, FixtureImage, Result};

const SCRIPT: &str = include_str!("cases.py");

/// What a case must end in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The unpack fails; the error message contains this text (for the host
    /// unpack; the ext4 writer words its own errors).
    Refused(&'static str),
    /// The unpack succeeds and leaves these paths inside the target.
    Unpacked(Vec<Expect>),
}

/// One path inside the target after a successful unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The path from the target's root, `{outside}` standing for the
    /// sentinel folder's absolute path without its leading `/`.
    pub path: String,
    /// What must be there.
    pub what: Found,
}

/// What an [`Expect`] wants at its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing.
    Nothing,
    /// A regular file with these bytes.
    File(&'static [u8]),
    /// A regular file with these bytes and this mode (set-user-id kept).
    FileWithMode(&'static [u8], u32),
    /// A directory.
    Directory,
    /// A symlink to this target.
    Symlink(String),
    /// A hard link to the file at this path (same inode).
    HardLinkOf(&'static str),
    /// A device node on an image; nothing on a host folder (devices are
    /// skipped there unless asked for).
    DeviceOnImageOnly,
}

/// One hostile case: its layers, lowest first, and the outcome.
#[derive(Debug, Clone)]
pub struct HostileCase {
    /// The case's name, for messages.
    pub name: String,
    /// Uncompressed layer tar files, lowest first.
    pub layers: Vec<PathBuf>,
    /// What every unpack path must do.
    pub outcome: Outcome,
}

/// A folder of sentinel files beside the target that no case may write,
/// change or remove: `secret` (a file), `dir/` (a directory, 0755, holding
/// `keep`).
#[derive(Debug)]
pub struct Sentinels {
    dir: PathBuf,
    before: BTreeMap<String, String>,
}

impl Sentinels {
    /// Creates the sentinel folder at `dir` (which must not exist).
    pub fn create(dir: &Path) -> Result<Self> {
        let io = |source, path: &Path| Error::Io {
            action: "cannot create",
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir.join("dir")).map_err(|e| io(e, dir))?;
        std::fs::write(dir.join("secret"), b"secret").map_err(|e| io(e, dir))?;
        std::fs::write(dir.join("dir/keep"), b"keep").map_err(|e| io(e, dir))?;
        let mut sentinels = Self {
            dir: dir.to_path_buf(),
            before: BTreeMap::new(),
        };
        sentinels.before = sentinels.describe();
        Ok(sentinels)
    }

    /// The sentinel folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every entry under the folder (and the folder itself) with its type,
    /// mode, times and contents.
    fn describe(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(path) = stack.pop() {
            let key = path.display().to_string();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                out.insert(key, "missing".into());
                continue;
            };
            let mut what = format!(
                "mode={:o} mtime={} uid={}",
                meta.mode(),
                meta.mtime(),
                meta.uid()
            );
            if meta.is_dir() {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
                    names.sort();
                    what += &format!(" entries={}", names.len());
                    stack.extend(names);
                }
            } else if meta.is_file() {
                what += &format!(" data={:?}", std::fs::read(&path).unwrap_or_default());
            }
            out.insert(key, what);
        }
        out
    }

    /// The differences since [`Sentinels::create`]; empty when untouched.
    pub fn changes(&self) -> Vec<String> {
        let now = self.describe();
        let mut changes = Vec::new();
        for key in self.before.keys().chain(now.keys()) {
            let (a, b) = (self.before.get(key), now.get(key));
            if a != b && !changes.iter().any(|c: &String| c.starts_with(key.as_str())) {
                changes.push(format!("{key}: {a:?} -> {b:?}"));
            }
        }
        changes
    }
}

/// Writes every hostile case's layers under `out`, aimed at `sentinels`,
/// and returns the table of cases.
pub fn hostile_cases(out: &Path, sentinels: &Sentinels) -> Result<Vec<HostileCase>> {
    let script = out.join("cases.py");
    std::fs::create_dir_all(out)
        .and_then(|()| std::fs::write(&script, SCRIPT))
        .map_err(|source| Error::Io {
            action: "cannot write",
            path: script.clone(),
            source,
        })?;
    run(Command::new("python3")
        .arg(&script)
        .arg(out)
        .arg(sentinels.dir()))?;
    let outside = sentinels
        .dir()
        .to_string_lossy()
        .trim_start_matches('/')
        .to_owned();
    let at = |path: &str| path.replace("{outside}", &outside);
    let expect = |path: &str, what: Found| Expect {
        path: at(path),
        what,
    };
    use Found::*;
    use Outcome::*;
    let table: Vec<(&str, Outcome)> = vec![
        ("whiteout-dotdot", Refused("whiteout that names no file")),
        ("whiteout-empty", Refused("whiteout that names no file")),
        (
            "whiteout-dotdot-in-dir",
            Refused("whiteout that names no file"),
        ),
        (
            "whiteout-dot-in-dir",
            Refused("whiteout that names no file"),
        ),
        (
            "whiteout-through-symlink",
            Unpacked(vec![expect(
                "s",
                Symlink(sentinels.dir().display().to_string()),
            )]),
        ),
        (
            "dir-metadata-through-later-symlink",
            Unpacked(vec![expect(
                "x",
                Symlink(sentinels.dir().display().to_string()),
            )]),
        ),
        (
            "dir-metadata-through-symlink-same-layer",
            Unpacked(vec![expect(
                "x",
                Symlink(sentinels.dir().display().to_string()),
            )]),
        ),
        (
            "write-through-absolute-symlink",
            Unpacked(vec![expect("{outside}/dir/evil", File(b"evil"))]),
        ),
        (
            "write-through-climbing-symlink-next-layer",
            Unpacked(vec![expect("{outside}/dir/evil", File(b"evil"))]),
        ),
        (
            "replace-symlink-to-outside-file",
            Unpacked(vec![expect("f", File(b"new"))]),
        ),
        ("dotdot-path", Refused("'..'")),
        ("dotdot-inside-path", Refused("'..'")),
        (
            "absolute-path",
            Unpacked(vec![expect("abs", File(b"inside"))]),
        ),
        ("hardlink-absolute-outside", Refused("does not exist")),
        ("hardlink-dotdot", Refused("'..'")),
        (
            "hardlink-through-symlink-outside",
            Refused("does not exist"),
        ),
        (
            "hardlink-through-symlink-inside",
            Unpacked(vec![
                expect("real/f", File(b"data")),
                expect("h", HardLinkOf("real/f")),
            ]),
        ),
        ("hardlink-to-directory", Refused("hard link to nothing")),
        ("hardlink-replacing-its-parent", Refused("does not exist")),
        ("symlink-loop", Refused("symlinks")),
        ("parent-is-a-file", Refused("not a directory")),
        (
            "dangling-symlink-parent",
            Unpacked(vec![expect("new/sub/f", File(b"made"))]),
        ),
        (
            "path-longer-than-path-max",
            Unpacked(vec![expect("d/d/d/d", Directory)]),
        ),
        ("deep-tree-whited-out", Unpacked(vec![expect("d", Nothing)])),
        (
            "device-node",
            Unpacked(vec![expect("dev/mem", DeviceOnImageOnly)]),
        ),
        (
            "setuid-file",
            Unpacked(vec![expect("bin/su", FileWithMode(b"#!/bin/sh\n", 0o4755))]),
        ),
        ("claimed-petabyte-file", Refused("bytes")),
        ("claimed-petabyte-sparse-file", Refused("bytes")),
    ];
    let mut cases = Vec::new();
    for (name, outcome) in table {
        let folder = out.join(name);
        let mut layers: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|source| Error::Io {
                action: "cannot list",
                path: folder.clone(),
                source,
            })?
            .flatten()
            .map(|e| e.path())
            .collect();
        layers.sort();
        if layers.is_empty() {
            return Err(Error::Unexpected(format!("case {name} has no layers")));
        }
        cases.push(HostileCase {
            name: name.to_owned(),
            layers,
            outcome,
        });
    }
    Ok(cases)
}

/// The case as an OCI image (its layers alone, gzip-compressed by `umoci`)
/// in a new layout under `dir`, to push to a registry.
pub fn hostile_image(case: &HostileCase, dir: &Path) -> Result<FixtureImage> {
    let layout = Layout::init(&dir.join(&case.name))?;
    layout.new_image("hostile")?;
    for layer in &case.layers {
        layout.add_tar_layer("hostile", layer, &case.name)?;
    }
    layout.configure("hostile", "amd64")?;
    Ok(FixtureImage::new(
        layout.dir().to_path_buf(),
        "hostile".to_owned(),
    ))
}

impl Expect {
    /// Checks the expectation in an unpacked host folder; the error says
    /// what differs.
    pub fn check_dir(&self, root: &Path) -> std::result::Result<(), String> {
        let path = root.join(&self.path);
        let meta = std::fs::symlink_metadata(&path);
        let shown = &self.path;
        match (&self.what, meta) {
            (Found::Nothing | Found::DeviceOnImageOnly, Err(_)) => Ok(()),
            (Found::Nothing | Found::DeviceOnImageOnly, Ok(m)) => Err(format!(
                "{shown} exists ({:?}), expected nothing",
                m.file_type()
            )),
            (_, Err(e)) => Err(format!("{shown} is missing: {e}")),
            (Found::File(data), Ok(m)) => check_file(&path, shown, m.is_file(), data),
            (Found::FileWithMode(data, mode), Ok(m)) => {
                check_file(&path, shown, m.is_file(), data)?;
                if m.mode() & 0o7777 != *mode {
                    return Err(format!(
                        "{shown} has mode {:o}, expected {mode:o}",
                        m.mode()
                    ));
                }
                Ok(())
            }
            (Found::Directory, Ok(m)) if m.is_dir() => Ok(()),
            (Found::Symlink(target), Ok(m)) if m.file_type().is_symlink() => {
                let actual = std::fs::read_link(&path).map_err(|e| e.to_string())?;
                if actual != Path::new(target) {
                    return Err(format!("{shown} links to {actual:?}, expected {target}"));
                }
                Ok(())
            }
            (Found::HardLinkOf(other), Ok(m)) => {
                let o = std::fs::symlink_metadata(root.join(other)).map_err(|e| e.to_string())?;
                if m.ino() != o.ino() {
                    return Err(format!("{shown} is not a hard link of {other}"));
                }
                Ok(())
            }
            (what, Ok(m)) => Err(format!(
                "{shown} is a {:?}, expected {what:?}",
                m.file_type()
            )),
        }
    }

    /// Checks the expectation in an ext4 image, read with e2fsprogs'
    /// `debugfs`; the error says what differs.
    pub fn check_image(&self, image: &Path) -> std::result::Result<(), String> {
        let shown = &self.path;
        let inside = format!("/{}", self.path);
        let stat = debugfs(image, &format!("stat \"{inside}\""))?;
        let field = |name: &str| -> Option<String> {
            let at = stat.find(name)? + name.len();
            stat[at..].split_whitespace().next().map(str::to_owned)
        };
        let kind = field("Type:");
        match (&self.what, kind.as_deref()) {
            (Found::Nothing, None) => Ok(()),
            (Found::Nothing, Some(k)) => Err(format!("{shown} exists ({k}), expected nothing")),
            (_, None) => Err(format!("{shown} is missing: {}", stat.trim())),
            (Found::File(data), Some("regular")) => check_image_file(image, &inside, data),
            (Found::FileWithMode(data, mode), Some("regular")) => {
                check_image_file(image, &inside, data)?;
                let actual = field("Mode:").and_then(|m| u32::from_str_radix(&m, 8).ok());
                if actual != Some(*mode) {
                    return Err(format!("{shown} has mode {actual:?}, expected {mode:o}"));
                }
                Ok(())
            }
            (Found::Directory, Some("directory")) => Ok(()),
            (Found::DeviceOnImageOnly, Some("character" | "block")) => Ok(()),
            (Found::Symlink(target), Some("symlink")) => {
                if stat.contains(&format!("\"{target}\"")) {
                    Ok(())
                } else {
                    Err(format!(
                        "{shown} does not link to {target}: {}",
                        stat.trim()
                    ))
                }
            }
            (Found::HardLinkOf(other), Some("regular")) => {
                let theirs = debugfs(image, &format!("stat \"/{other}\""))?;
                let inode = |s: &str| s.split_whitespace().nth(1).map(str::to_owned);
                if inode(&stat) != inode(&theirs) {
                    return Err(format!("{shown} is not a hard link of {other}"));
                }
                Ok(())
            }
            (what, Some(k)) => Err(format!("{shown} is a {k}, expected {what:?}")),
        }
    }
}

fn check_file(
    path: &Path,
    shown: &str,
    is_file: bool,
    data: &[u8],
) -> std::result::Result<(), String> {
    if !is_file {
        return Err(format!("{shown} is not a regular file"));
    }
    let actual = std::fs::read(path).map_err(|e| e.to_string())?;
    if actual != data {
        return Err(format!("{shown} holds {actual:?}, expected {data:?}"));
    }
    Ok(())
}

fn check_image_file(image: &Path, inside: &str, data: &[u8]) -> std::result::Result<(), String> {
    let output = Command::new("debugfs")
        .args(["-R", &format!("cat \"{inside}\"")])
        .arg(image)
        .output()
        .map_err(|e| format!("cannot run debugfs: {e}"))?;
    if output.stdout != data {
        return Err(format!(
            "{inside} holds {:?}, expected {data:?}",
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    Ok(())
}

/// Runs one `debugfs` request on `image`; its answer (stdout and stderr:
/// debugfs reports a missing path on stderr).
fn debugfs(image: &Path, request: &str) -> std::result::Result<String, String> {
    let output = Command::new("debugfs")
        .args(["-R", request])
        .arg(image)
        .output()
        .map_err(|e| format!("cannot run debugfs: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if stdout.contains("Type:") {
        Ok(stdout)
    } else {
        Ok(String::new())
    }
}

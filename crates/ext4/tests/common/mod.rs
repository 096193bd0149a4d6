//! Shared test helpers: real peers (`e2fsck`, `debugfs`, the kernel through a
//! loop mount) and a tree snapshot to compare a source with what an image
//! holds.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// What the tests compare about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    pub size: u64,
    pub sha256: String,
    pub link: Option<PathBuf>,
    pub rdev: u64,
    pub nlink: u64,
    pub xattrs: BTreeMap<OsString, Vec<u8>>,
}

/// Which fields a comparison looks at.
#[derive(Debug, Clone, Copy)]
pub struct Compare {
    pub owners: bool,
    pub times: bool,
    pub xattrs: bool,
    pub links: bool,
}

impl Compare {
    pub const ALL: Self = Self {
        owners: true,
        times: true,
        xattrs: true,
        links: true,
    };
}

fn xattrs(path: &Path) -> BTreeMap<OsString, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 65536];
    let Ok(len) = rustix::fs::llistxattr(path, &mut names) else {
        return out;
    };
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 65536];
        if let Ok(n) = rustix::fs::lgetxattr(path, name, &mut value) {
            value.truncate(n);
            out.insert(std::ffi::OsStr::from_bytes(name).to_os_string(), value);
        }
    }
    out
}

/// Every entry under `root`, by relative path (`lost+found` left out).
pub fn snapshot(root: &Path, cmp: Compare) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("list") {
            let path = e.expect("entry").path();
            let rel = path.strip_prefix(root).expect("prefix").to_path_buf();
            if rel == Path::new("lost+found") {
                continue;
            }
            let m = fs::symlink_metadata(&path).expect("lstat");
            let t = m.file_type();
            let kind = if t.is_dir() {
                stack.push(path.clone());
                "dir"
            } else if t.is_file() {
                "file"
            } else if t.is_symlink() {
                "symlink"
            } else if t.is_char_device() {
                "char"
            } else if t.is_block_device() {
                "block"
            } else if t.is_fifo() {
                "fifo"
            } else {
                "socket"
            };
            let sha256 = if t.is_file() {
                let mut h = Sha256::new();
                let mut f = fs::File::open(&path).expect("open");
                std::io::copy(&mut f, &mut h).expect("read");
                format!("{:x}", h.finalize())
            } else {
                String::new()
            };
            out.insert(
                rel,
                Entry {
                    kind,
                    mode: m.mode() & 0o7777,
                    uid: if cmp.owners { m.uid() } else { 0 },
                    gid: if cmp.owners { m.gid() } else { 0 },
                    mtime: if cmp.times && !t.is_symlink() {
                        (m.mtime(), m.mtime_nsec())
                    } else {
                        (0, 0)
                    },
                    size: if t.is_dir() { 0 } else { m.len() },
                    sha256,
                    link: t
                        .is_symlink()
                        .then(|| fs::read_link(&path).expect("readlink")),
                    rdev: m.rdev(),
                    nlink: if cmp.links && !t.is_dir() {
                        m.nlink()
                    } else {
                        0
                    },
                    xattrs: if cmp.xattrs {
                        xattrs(&path)
                    } else {
                        BTreeMap::new()
                    },
                },
            );
        }
    }
    out
}

/// Asserts two snapshots are equal, naming the first difference.
pub fn assert_same(expected: &BTreeMap<PathBuf, Entry>, actual: &BTreeMap<PathBuf, Entry>) {
    for (path, e) in expected {
        let a = actual
            .get(path)
            .unwrap_or_else(|| panic!("{} is missing from the image", path.display()));
        assert_eq!(e, a, "{} differs", path.display());
    }
    for path in actual.keys() {
        assert!(
            expected.contains_key(path),
            "{} is in the image but not in the source",
            path.display()
        );
    }
}

/// Runs `e2fsck -fn` and asserts it finds nothing.
pub fn e2fsck_clean(image: &Path) {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .expect("run e2fsck");
    assert!(
        out.status.success(),
        "e2fsck -fn {} exited {:?}:\n{}\n{}",
        image.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Dumps the image with `debugfs -R 'rdump / DIR'` into a new folder.
pub fn debugfs_rdump(image: &Path, into: &Path) -> PathBuf {
    let dir = into.join("rdump");
    fs::create_dir_all(&dir).expect("mkdir");
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("rdump / {}", dir.display()))
        .arg(image)
        .output()
        .expect("run debugfs");
    assert!(
        out.status.success(),
        "debugfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A read-only loop mount, unmounted on drop.
pub struct LoopMount {
    pub dir: tempfile::TempDir,
}

impl LoopMount {
    pub fn new(image: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "ext4", "-o", "loop,ro"])
            .arg(image)
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Allocated bytes of a host file.
pub fn allocated(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").blocks() * 512
}

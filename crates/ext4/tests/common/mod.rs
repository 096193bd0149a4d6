//! Shared test helpers: real peers (`e2fsck`, `debugfs`, the kernel through a
//! loop mount) and a tree snapshot to compare a source with what an image
//! holds.

#![allow(dead_code)]

pub mod raw_tar;

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

/// A digest of a file's content that reads only its data segments: every
/// 4 KiB chunk that is not all zeros, with its offset. Files with the same
/// content get the same digest however their holes are laid out.
pub fn content_digest(path: &Path, size: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    let mut f = fs::File::open(path).expect("open");
    let mut pos = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while pos < size {
        let data = match rustix::fs::seek(&f, rustix::fs::SeekFrom::Data(pos)) {
            Ok(at) => at,
            Err(_) => break,
        };
        let hole = rustix::fs::seek(&f, rustix::fs::SeekFrom::Hole(data)).expect("seek hole");
        f.seek(SeekFrom::Start(data)).expect("seek");
        let mut at = data;
        while at < hole {
            let want = ((hole - at) as usize).min(buf.len());
            f.read_exact(&mut buf[..want]).expect("read");
            for (i, chunk) in buf[..want].chunks(4096).enumerate() {
                if chunk.iter().any(|&b| b != 0) {
                    h.update((at + (i as u64) * 4096).to_le_bytes());
                    h.update(chunk);
                }
            }
            at += want as u64;
        }
        pos = hole;
    }
    format!("{:x}", h.finalize())
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
                content_digest(&path, m.len())
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

/// The layer blobs of the image `name` in the OCI layout `layout`, lowest
/// first (read from index.json and the manifest).
pub fn layer_blobs(layout: &Path, name: &str) -> Vec<PathBuf> {
    let read_json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&fs::read(&p).expect("read json")).expect("parse json")
    };
    let blob = |digest: &str| {
        let (alg, hex) = digest.split_once(':').expect("digest");
        layout.join("blobs").join(alg).join(hex)
    };
    let index = read_json(layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    let entry = manifests
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or(&manifests[0]);
    let manifest = read_json(blob(entry["digest"].as_str().expect("digest")));
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| blob(l["digest"].as_str().expect("digest")))
        .collect()
}

/// Builds an image from layer files.
pub fn image_from_layers(layers: &[PathBuf], out: &Path) -> containerization_ext4::Summary {
    let mut f = containerization_ext4::Formatter::create(
        out,
        containerization_ext4::FormatOptions::default(),
    )
    .expect("create");
    for layer in layers {
        f.unpack_layer(fs::File::open(layer).expect("open layer"))
            .expect("unpack");
    }
    f.finish().expect("finish")
}

/// `umoci raw unpack` of the first `layers` layers of a fixture into
/// `into/umoci-rootfs` (umoci reads no GNU sparse entries, so the tests stop
/// it before such a layer and extract the rest with GNU tar).
pub fn umoci_unpack(
    image: &containerization_testkit::FixtureImage,
    layers: usize,
    into: &Path,
) -> PathBuf {
    let src = image.layout();
    let layout = into.join("umoci-layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("mkdir");
    fs::copy(src.join("oci-layout"), layout.join("oci-layout")).expect("copy");
    for e in fs::read_dir(src.join("blobs/sha256")).expect("list") {
        let e = e.expect("entry");
        fs::hard_link(e.path(), blobs.join(e.file_name())).expect("link blob");
    }
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(src.join("index.json")).expect("read")).expect("json");
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let manifest_path = src
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(manifest_path).expect("read")).expect("json");
    manifest["layers"]
        .as_array_mut()
        .expect("layers")
        .truncate(layers);
    let bytes = serde_json::to_vec(&manifest).expect("json");
    let hex = format!("{:x}", Sha256::digest(&bytes));
    fs::write(blobs.join(&hex), &bytes).expect("write manifest");
    let new_index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "cut"}
        }]
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&new_index).expect("json"),
    )
    .expect("write index");
    let dir = into.join("umoci-rootfs");
    let out = Command::new("umoci")
        .args(["raw", "unpack", "--image"])
        .arg(format!("{}:cut", layout.display()))
        .arg(&dir)
        .output()
        .expect("run umoci");
    assert!(
        out.status.success(),
        "umoci failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Extracts a tar layer over `dir` with GNU tar (owners, modes, sparse
/// files kept).
pub fn gnu_tar_extract(layer: &Path, dir: &Path) {
    let status = Command::new("tar")
        .args(["--same-owner", "-xpf"])
        .arg(layer)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -x failed");
}

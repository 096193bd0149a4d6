//! Fault injection for reliability tests: the damage a crash, a bad disk or
//! a stranger does to a state root, made on purpose.
//!
//! - [`corrupt_blob`] and [`truncate_half`]: a stored blob or a record file
//!   cut short, as a crash in the middle of a write or a bad sector leaves it;
//! - [`edit_json`]: a record rewritten to say something that is not so (a
//!   stale owner, a forged status);
//! - [`Stranger`]: an unrelated live process whose PID a record can claim,
//!   as after a reboot or PID reuse;
//! - [`SmallDisk`]: a small ext4 file system to fill (root only), for a
//!   state root on a full disk.
//!
//! ```no_run
//! # fn main() -> containerization_testkit::Result<()> {
//! let disk = containerization_testkit::SmallDisk::mount(64 << 20)?;
//! containerization_testkit::fill(disk.path())?;
//! # Ok(())
//! # }
//! ```

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::command::run;
use crate::{Error, Result};

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// The file of blob `digest` (`sha256:<hex>`) in state root `root`'s store.
pub fn blob_path(root: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    root.join("content/blobs").join(algorithm).join(hex)
}

/// Cuts blob `digest` of state root `root` to half its length, though the
/// store made it read-only: its bytes no longer match its digest, and JSON
/// in it no longer parses.
pub fn corrupt_blob(root: &Path, digest: &str) -> Result<()> {
    let path = blob_path(root, digest);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .map_err(io("make writable", &path))?;
    truncate_half(&path)
}

/// Cuts the file at `path` to half its length.
pub fn truncate_half(path: &Path) -> Result<()> {
    let len = std::fs::metadata(path).map_err(io("stat", path))?.len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io("open", path))?;
    file.set_len(len / 2).map_err(io("truncate", path))
}

/// Rewrites the JSON file at `path` through `change`.
pub fn edit_json(path: &Path, change: impl FnOnce(&mut serde_json::Value)) -> Result<()> {
    let text = std::fs::read(path).map_err(io("read", path))?;
    let mut value: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::Unexpected(format!("{} is not JSON: {e}", path.display())))?;
    change(&mut value);
    let text = serde_json::to_vec(&value)
        .map_err(|e| Error::Unexpected(format!("cannot write JSON: {e}")))?;
    std::fs::write(path, text).map_err(io("write", path))
}

/// A live process that has nothing to do with the project (a `sleep`),
/// killed when dropped: its PID is what a stale record might name.
#[derive(Debug)]
pub struct Stranger {
    child: Child,
}

impl Stranger {
    /// Starts one.
    pub fn start() -> Result<Self> {
        let child =
            Command::new("sleep")
                .arg("600")
                .spawn()
                .map_err(|source| Error::MissingProgram {
                    program: "sleep".to_owned(),
                    source,
                })?;
        Ok(Self { child })
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs (no one signalled it).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small ext4 file system of its own, on a loop device over a sparse
/// image file (root only), unmounted and removed when dropped: a disk to
/// fill. ext4, not tmpfs: on tmpfs even a read of a hole in a mapped file
/// takes space, which a real disk does not (a VM's memory file is one).
#[derive(Debug)]
pub struct SmallDisk {
    dir: tempfile::TempDir,
    image: tempfile::TempPath,
}

impl SmallDisk {
    /// Makes and mounts a file system of `bytes` bytes.
    pub fn mount(bytes: u64) -> Result<Self> {
        let image = tempfile::Builder::new()
            .prefix("cz-small-disk-")
            .suffix(".ext4")
            .tempfile_in("/var/tmp")
            .map_err(io("create an image in", Path::new("/var/tmp")))?
            .into_temp_path();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .map_err(io("open", &image))?;
        file.set_len(bytes).map_err(io("size", &image))?;
        drop(file);
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&image))?;
        let dir = tempfile::Builder::new()
            .prefix("cz-small-disk-")
            .tempdir()
            .map_err(io("create a folder in", &std::env::temp_dir()))?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(dir.path()))?;
        Ok(Self { dir, image })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Fills the file system holding `dir` until a write fails with "no space
/// left", with a file `dir/filler`; returns its path (remove it to free the
/// space again).
pub fn fill(dir: &Path) -> Result<PathBuf> {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).map_err(io("create", &path))?;
    let chunk = vec![0xa5u8; 1 << 20];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => return Err(io("fill", &path)(e)),
        }
    }
    // The last partial blocks too.
    for size in [4096usize, 512, 1] {
        while file.write(&chunk[..size]).is_ok_and(|n| n > 0) {}
    }
    let _ = file.sync_all();
    Ok(path)
}

//! Bases for root file systems that arrive as folders rather than layers:
//! containerd's snapshots, which a shim is handed as an overlay of
//! read-only lower folders and an empty upper one.
//!
//! A committed snapshot never changes, so the ext4 image made from a stack
//! of them can be built once and cloned for each container, as an image's
//! base is. A [`SnapshotKey`] names a stack by what each folder is on the
//! host (device, inode and change time, with its path), so a folder
//! removed and made again under the same path is a new key. The base is
//! cached beside the image bases under the key's digest, with the key
//! itself in a `.snapshot` file beside it: collection keeps such a base
//! while every folder of its key is still there as it was, or while a
//! container uses it (see [`collect_unused`](super::collect_unused)).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use containerization_ext4::{FormatOptions, Formatter};
use containerization_oci::Digest;

use crate::Error;

/// What a key's file beside its base ends with.
pub(crate) const KEY_EXTENSION: &str = "snapshot";

/// The smallest disk: what a container can count on writing.
const MIN_DISK: u64 = 4 << 30;

/// The identity of a stack of read-only folders, in a fixed order (an
/// overlay's `lowerdir`s as it lists them, say).
///
/// ```no_run
/// use containerization::rootfs::SnapshotKey;
/// # fn main() -> Result<(), containerization::Error> {
/// let key = SnapshotKey::new(&[
///     "/var/lib/containerd/snapshots/1/fs".into(),
///     "/var/lib/containerd/snapshots/2/fs".into(),
/// ])?;
/// println!("{}", key.digest());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotKey {
    text: String,
}

impl SnapshotKey {
    /// The key of `folders`, in their order; each must be a folder.
    pub fn new(folders: &[PathBuf]) -> Result<Self, Error> {
        if folders.is_empty() {
            return Err(Error::InvalidOption {
                option: "root file system".to_owned(),
                detail: "a snapshot key needs at least one folder".to_owned(),
            });
        }
        let mut text = String::new();
        for folder in folders {
            let line = identity(folder).map_err(|source| Error::Io {
                path: folder.clone(),
                source,
            })?;
            let Some(line) = line else {
                return Err(Error::InvalidOption {
                    option: "root file system".to_owned(),
                    detail: format!("{} is not a folder", folder.display()),
                });
            };
            text.push_str(&line);
            text.push('\n');
        }
        Ok(Self { text })
    }

    /// The key's digest, which names its base.
    pub fn digest(&self) -> Digest {
        Digest::sha256(self.text.as_bytes())
    }

    /// The key as written beside its base.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Whether every folder the key `text` names is still there as it was.
    pub(crate) fn still_present(text: &str) -> bool {
        !text.is_empty()
            && text.lines().all(|line| {
                let path = line.splitn(4, ' ').nth(3).unwrap_or_default();
                !path.is_empty()
                    && identity(Path::new(path)).ok().flatten().as_deref() == Some(line)
            })
    }
}

/// `dev ino ctime.nsec path` of folder `path`, `None` if it is not one.
fn identity(path: &Path) -> std::io::Result<Option<String>> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(None);
    }
    Ok(Some(format!(
        "{} {} {}.{:09} {}",
        meta.dev(),
        meta.ino(),
        meta.ctime(),
        meta.ctime_nsec(),
        path.display()
    )))
}

/// Writes the tree at `tree` into a new ext4 image at `disk`, with a
/// journal and twice its size (at least 4 GiB, virtual) to write into.
pub(crate) fn build_from_tree(tree: &Path, disk: &Path) -> Result<(), Error> {
    let used = tree_bytes(tree);
    let size = (used.saturating_mul(2) + (1 << 30)).max(MIN_DISK);
    let size = size.div_ceil(1 << 30) << 30;
    let options = FormatOptions {
        size: Some(size),
        journal: true,
        label: "rootfs".to_owned(),
        ..FormatOptions::default()
    };
    let failed = |error: containerization_ext4::Error| Error::Rootfs {
        image: tree.display().to_string(),
        detail: format!("cannot copy it into a disk: {error}"),
    };
    let mut image = Formatter::create(disk, options).map_err(failed)?;
    image.add_dir_tree(tree).map_err(failed)?;
    image.finish().map_err(failed)?;
    Ok(())
}

/// Bytes the files under `dir` take (not following symlinks).
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(entry.path()),
                Ok(_) => total += entry.metadata().map_or(0, |m| m.len()),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::SnapshotKey;

    #[test]
    fn a_key_holds_while_its_folders_do_and_not_after_one_is_made_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (lower, upper) = (dir.path().join("1"), dir.path().join("2"));
        std::fs::create_dir(&lower).expect("mkdir");
        std::fs::create_dir(&upper).expect("mkdir");
        let key = SnapshotKey::new(&[lower.clone(), upper.clone()]).expect("key");
        assert_eq!(
            key,
            SnapshotKey::new(&[lower.clone(), upper.clone()]).expect("key")
        );
        assert_ne!(
            key.digest(),
            SnapshotKey::new(&[upper.clone(), lower.clone()])
                .expect("key")
                .digest()
        );
        assert!(SnapshotKey::still_present(key.text()));
        std::fs::remove_dir(&upper).expect("rmdir");
        assert!(!SnapshotKey::still_present(key.text()));
        std::fs::create_dir(&upper).expect("mkdir");
        // A folder made again under the same path is not the same folder.
        let again = SnapshotKey::new(&[lower.clone(), upper.clone()]).expect("key");
        assert_ne!(again.digest(), key.digest());
        assert!(!SnapshotKey::still_present(key.text()));
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        assert!(SnapshotKey::new(&[file]).is_err());
        assert!(SnapshotKey::new(&[]).is_err());
        assert!(!SnapshotKey::still_present(""));
    }
}

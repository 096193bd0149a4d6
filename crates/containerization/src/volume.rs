//! Named volumes: data that outlives containers, as ext4 disk images.
//!
//! A volume is `volumes/<name>/disk.ext4` in the state root: an empty ext4
//! file system with a journal, made by our ext4 writer, [`VOLUME_BYTES`]
//! large and sparse (it takes room on the host only as it is written). A
//! container's VM gets it as one more virtio-blk disk; the guest mounts it
//! and the container's spec binds it where the user asked. Every volume has
//! the same size, so the VM template key (which covers each disk's size)
//! depends on the number of volumes only, and containers with volumes start
//! from templates too.
//!
//! ext4 is not a cluster file system: a volume is mounted read-write by at
//! most one running VM, read-only by any number, enforced with a lock on
//! `volumes/<name>/lock` (exclusive for read-write, shared for read-only)
//! held while the VM runs.
//!
//! ```no_run
//! use containerization::volume::VolumeStore;
//!
//! # fn main() -> Result<(), containerization::Error> {
//! let volumes = VolumeStore::new("/var/lib/containerization/volumes");
//! let data = volumes.create("data")?;
//! assert_eq!(data.name, "data");
//! assert!(volumes.list()?.iter().any(|v| v.name == "data"));
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use containerization_ext4::{FormatOptions, Formatter};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The size every volume's file system has (sparse on the host).
pub const VOLUME_BYTES: u64 = 16 << 30;

/// What is known of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// Its disk image.
    pub disk: PathBuf,
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Labels given when it was made (Docker's; Compose names its project
    /// in them).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A held volume: its lock, kept while the VM using it runs.
#[derive(Debug)]
pub struct VolumeLease {
    _lock: File,
}

/// The state root's named volumes.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
}

fn invalid(detail: String) -> Error {
    Error::InvalidOption {
        option: "volume".to_owned(),
        detail,
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks a volume name as Docker does: a letter or digit, then letters,
/// digits, `_`, `.` and `-`.
pub fn check_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && name.len() <= 128 {
        return Ok(());
    }
    Err(invalid(format!(
        "{name:?} is not a valid volume name: use letters, digits, `_`, `.` and `-`, \
         starting with a letter or digit"
    )))
}

impl VolumeStore {
    /// The volumes in `dir` (`<state root>/volumes`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn folder(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Volume `name`, if it exists.
    pub fn get(&self, name: &str) -> Result<Option<Volume>, Error> {
        check_name(name)?;
        let record = self.folder(name).join("volume.json");
        match std::fs::read(&record) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| Error::CorruptState {
                        path: record.clone(),
                        detail: e.to_string(),
                    })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io(&record)(err)),
        }
    }

    /// Makes volume `name` (an empty file system), or returns it when it
    /// exists, as `docker volume create` does.
    pub fn create(&self, name: &str) -> Result<Volume, Error> {
        self.create_with_labels(name, std::collections::BTreeMap::new())
    }

    /// [`Self::create`], a new volume keeping `labels` (an existing one
    /// keeps its own).
    pub fn create_with_labels(
        &self,
        name: &str,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<Volume, Error> {
        if let Some(volume) = self.get(name)? {
            return Ok(volume);
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io(&self.dir))?;
        // Made beside, then renamed into place: a half-made volume is never
        // seen, and two creators race harmlessly.
        let made = self.dir.join(format!(
            ".{name}.{}.{}",
            std::process::id(),
            crate::container::now_ms()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&made)
            .map_err(io(&made))?;
        let disk = made.join("disk.ext4");
        let options = FormatOptions {
            size: Some(VOLUME_BYTES),
            journal: true,
            label: name.chars().take(16).collect(),
            ..FormatOptions::default()
        };
        let formatted = Formatter::create(&disk, options).and_then(Formatter::finish);
        if let Err(e) = formatted {
            let _ = std::fs::remove_dir_all(&made);
            return Err(invalid(format!("cannot make volume {name}: {e}")));
        }
        let volume = Volume {
            name: name.to_owned(),
            disk: self.folder(name).join("disk.ext4"),
            created_ms: crate::container::now_ms(),
            labels,
        };
        let record = made.join("volume.json");
        let json = serde_json::to_vec_pretty(&volume).map_err(|e| invalid(e.to_string()))?;
        if let Err(err) = std::fs::write(&record, json) {
            let _ = std::fs::remove_dir_all(&made);
            return Err(io(&record)(err));
        }
        match std::fs::rename(&made, self.folder(name)) {
            Ok(()) => Ok(volume),
            Err(_) if self.folder(name).join("volume.json").is_file() => {
                let _ = std::fs::remove_dir_all(&made);
                self.get(name)?
                    .ok_or_else(|| invalid(format!("volume {name} vanished")))
            }
            Err(err) => {
                let _ = std::fs::remove_dir_all(&made);
                Err(io(&self.folder(name))(err))
            }
        }
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io(&self.dir)(err)),
        };
        let mut volumes = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(Some(volume)) = self.get(&name) {
                volumes.push(volume);
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// Removes volume `name` and its data. The caller checks that no
    /// container uses it; a running VM holding it refuses the removal.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        if self.get(name)?.is_none() {
            return Err(invalid(format!("no such volume: {name}")));
        }
        let lock = self.lock_file(name)?;
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(invalid(format!(
                "volume {name} is in use by a running container"
            )));
        }
        let folder = self.folder(name);
        std::fs::remove_dir_all(&folder).map_err(io(&folder))
    }

    fn lock_file(&self, name: &str) -> Result<File, Error> {
        let path = self.folder(name).join("lock");
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))
    }

    /// Holds volume `name` for a VM: shared for `read_only`, else
    /// exclusive; a clear error when another running container holds it.
    pub fn lease(&self, name: &str, read_only: bool) -> Result<VolumeLease, Error> {
        let lock = self.lock_file(name)?;
        let operation = match read_only {
            true => rustix::fs::FlockOperation::NonBlockingLockShared,
            false => rustix::fs::FlockOperation::NonBlockingLockExclusive,
        };
        rustix::fs::flock(&lock, operation).map_err(|_| {
            invalid(format!(
                "volume {name} is in use by another running container{}; ext4 volumes are \
                 mounted read-write by one container at a time (read-only by any number)",
                if read_only { " read-write" } else { "" }
            ))
        })?;
        Ok(VolumeLease { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_a_sparse_checked_ext4_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::new(dir.path().join("volumes"));
        let made = store.create("data").unwrap();
        assert_eq!(store.create("data").unwrap(), made, "create is idempotent");
        let meta = std::fs::metadata(&made.disk).unwrap();
        assert_eq!(meta.len(), VOLUME_BYTES);
        let used = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
        assert!(used < 64 << 20, "not sparse: {used} bytes used");
        let fsck = std::process::Command::new("e2fsck")
            .args(["-fn"])
            .arg(&made.disk)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        assert_eq!(store.list().unwrap(), vec![made]);
        store.remove("data").unwrap();
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn leases_allow_one_writer_or_many_readers() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::new(dir.path());
        store.create("v").unwrap();
        let writer = store.lease("v", false).unwrap();
        let err = store.lease("v", true).unwrap_err().to_string();
        assert!(err.contains("in use"), "{err}");
        assert!(store.remove("v").is_err(), "removed while in use");
        drop(writer);
        let a = store.lease("v", true).unwrap();
        let _b = store.lease("v", true).unwrap();
        assert!(store.lease("v", false).is_err());
        drop(a);
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "a/b", "..", ".hidden", "-x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("my_data-1.0").unwrap();
    }
}

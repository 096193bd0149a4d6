//! Collecting what `rootfs/` holds for no one: bases of images that are
//! gone and that no container's disk uses, and half-built files that a
//! killed build left behind.
//!
//! A base is kept while an image in the store reaches its manifest, while a
//! container's configuration names that manifest, or while a container's
//! disk is backed by it (a qcow2 overlay's backing file, or the symlink of a
//! read-only container), whatever state the container's records are in.
//! A base built from containerd's snapshots is kept while they are all
//! still there (see [`SnapshotKey`](super::SnapshotKey)).
//! When a manifest in the store cannot be read, every base is kept: it might
//! be that image's. The collection holds the image store's writers off (its
//! GC lock, exclusively), so no container is being made meanwhile, and each
//! removal holds the base's build lock.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use containerization_oci::Digest;
use containerization_oci::store::ImageStore;
use rustix::fs::FlockOperation;

use super::RootfsCache;
use super::qcow2::backing_file;
use crate::{ContainerStore, Error, StateRoot};

/// What [`collect_unused`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootfsCollection {
    /// The manifests whose bases were removed.
    pub removed: Vec<Digest>,
    /// Half-built files removed (left by builds that were killed).
    pub temporaries: Vec<PathBuf>,
    /// Bytes of disk freed.
    pub freed_bytes: u64,
}

/// Removes from `root`'s `rootfs/` the bases no image and no container uses,
/// and the files of builds that died. With `wait` false, returns `None` at
/// once when images are being pulled or containers made (after a container's
/// removal, say, which must not wait for a pull).
pub fn collect_unused(root: &StateRoot, wait: bool) -> Result<Option<RootfsCollection>, Error> {
    let cache = RootfsCache::new(root.path().join("rootfs"));
    if !cache.dir().exists() {
        return Ok(Some(RootfsCollection::default()));
    }
    let images = ImageStore::open(root.path())?;
    let _writers = if wait {
        images.content().exclude_writers()?
    } else {
        match images.content().try_exclude_writers()? {
            Some(lock) => lock,
            None => return Ok(None),
        }
    };
    let mut collection = RootfsCollection::default();
    for (base, user) in classify(root, &cache, &images)? {
        if user != BaseUser::Nobody {
            continue;
        }
        if cache.remove(&base.manifest)? {
            tracing::debug!(manifest = %base.manifest, "removed an unused base");
            collection.freed_bytes += base.allocated;
            collection.removed.push(base.manifest);
        }
    }
    collect_temporaries(cache.dir(), &mut collection)?;
    Ok(Some(collection))
}

/// Who keeps a base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BaseUser {
    /// A container (its configuration or its disk).
    Container,
    /// Only an image in the store (or a store that cannot be read whole).
    Image,
    /// No one: collection removes it.
    Nobody,
}

/// What `rootfs/` holds, for `cctl system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootfsUsage {
    /// Finished bases.
    pub bases: usize,
    /// Bases containers use.
    pub active: usize,
    /// Bytes bases and half-built files take on disk.
    pub bytes: u64,
    /// Bytes collection would free: unused bases and half-built files.
    pub reclaimable: u64,
}

/// Counts what `root`'s `rootfs/` holds and what collection would free.
pub fn usage(root: &StateRoot) -> Result<RootfsUsage, Error> {
    let cache = RootfsCache::new(root.path().join("rootfs"));
    if !cache.dir().exists() {
        return Ok(RootfsUsage::default());
    }
    let images = ImageStore::open(root.path())?;
    let mut usage = RootfsUsage::default();
    for (base, user) in classify(root, &cache, &images)? {
        usage.bases += 1;
        usage.bytes += base.allocated;
        match user {
            BaseUser::Container => usage.active += 1,
            BaseUser::Image => {}
            BaseUser::Nobody => usage.reclaimable += base.allocated,
        }
    }
    for entry in std::fs::read_dir(cache.dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        if is_temporary(&name.to_string_lossy()) {
            let allocated = entry.metadata().map_or(0, |m| m.blocks() * 512);
            usage.bytes += allocated;
            usage.reclaimable += allocated;
        }
    }
    Ok(usage)
}

/// A base and who keeps it.
type Classified = (super::CachedBase, BaseUser);

/// Every base with who keeps it (an image the store cannot read keeps every
/// base: the store's collection reports it).
fn classify(
    root: &StateRoot,
    cache: &RootfsCache,
    images: &ImageStore,
) -> Result<Vec<Classified>, Error> {
    let reachable = images.reachable()?;
    let containers = ContainerStore::new(root.path().join("containers"), root.run_dir());
    let mut used_paths = HashSet::new();
    for disk in containers.all_disks()? {
        if let Some(base) = base_of(&disk) {
            used_paths.insert(base);
        }
    }
    let used_manifests: HashSet<String> = containers.manifests_in_use()?.into_iter().collect();
    let bases = cache
        .list()?
        .into_iter()
        .map(|base| {
            let by_container = used_manifests.contains(&base.manifest.to_string())
                || used_paths.contains(&base.path)
                || std::fs::canonicalize(&base.path).is_ok_and(|p| used_paths.contains(&p));
            let user = if by_container {
                BaseUser::Container
            } else if reachable.keeps(&base.manifest) || cache.snapshot_present(&base.manifest) {
                BaseUser::Image
            } else {
                BaseUser::Nobody
            };
            (base, user)
        })
        .collect();
    Ok(bases)
}

/// A half-built base or an ext4 writer's temporary file.
fn is_temporary(name: &str) -> bool {
    name.starts_with(".ext4-") || name.ends_with(".partial")
}

/// The base a container's disk reads: a read-only container's symlink, or
/// a qcow2 overlay's backing file. A reflinked copy reads none.
fn base_of(disk: &Path) -> Option<PathBuf> {
    if let Ok(target) = std::fs::read_link(disk) {
        return Some(target);
    }
    let mut file = std::fs::File::open(disk).ok()?;
    backing_file(&mut file)
}

/// Removes half-built bases (`*.partial`) and the ext4 writer's temporary
/// files (`.ext4-*`), unless a build is running: one holds a build lock.
/// The files are listed before the locks are tried, so a build that starts
/// in between makes files of new names, which are not touched.
fn collect_temporaries(dir: &Path, collection: &mut RootfsCollection) -> Result<(), Error> {
    let io_error = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut temporaries = Vec::new();
    let mut locks = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_temporary(name) {
            temporaries.push(entry.path());
        } else if name.ends_with(".lock") {
            locks.push(entry.path());
        }
    }
    if temporaries.is_empty() {
        return Ok(());
    }
    for lock in &locks {
        let Ok(file) = std::fs::File::open(lock) else {
            continue;
        };
        if rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared).is_err() {
            tracing::debug!(lock = %lock.display(), "a build is running: its files are kept");
            return Ok(());
        }
    }
    for path in temporaries {
        let allocated = std::fs::symlink_metadata(&path).map_or(0, |m| m.blocks() * 512);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                collection.freed_bytes += allocated;
                collection.temporaries.push(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    Ok(())
}

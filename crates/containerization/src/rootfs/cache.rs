//! The cache of base images, one per image manifest, in the state root's
//! `rootfs/` folder.
//!
//! A base is named after its manifest digest (`sha256-<hex>.ext4`), built
//! once under a lock, and never changed afterwards: containers get writable
//! clones of it (see [`writable_clone`](super::writable_clone)).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use containerization_oci::Digest;
use containerization_oci::layer::StoredLayer;
use containerization_oci::store::{BlobFollower, ContentStore};

use super::build::{self, Layers};
use super::lock::BuildLock;
use super::snapshot::{KEY_EXTENSION, SnapshotKey, build_from_tree};
use crate::Error;

/// What a finished base's file name ends with.
const EXTENSION: &str = "ext4";

/// Read-only ext4 base images, one per image manifest.
#[derive(Debug, Clone)]
pub struct RootfsCache {
    dir: PathBuf,
}

/// One base image in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedBase {
    /// The manifest it was built for.
    pub manifest: Digest,
    /// The image file.
    pub path: PathBuf,
    /// Its virtual size in bytes (what the guest sees).
    pub size: u64,
    /// Bytes it takes on disk: the file is sparse, so far less than `size`.
    pub allocated: u64,
}

impl RootfsCache {
    /// The cache in `dir` (the state root's `rootfs/` folder); the folder
    /// is created when the first base is built.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the base for `manifest` is (or will be).
    pub fn path(&self, manifest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.{EXTENSION}", stem(manifest)))
    }

    /// The base for `manifest`, built from its `layers` (lowest first) in
    /// `content` if it is not cached yet. Each layer is checked as it is
    /// read (blob digest and `diff_id`, see
    /// [`ContentStore::open_layer`]); a layer that fails fails the build,
    /// naming it, and nothing is cached.
    ///
    /// Processes asking for the same manifest at once build it once: the
    /// others wait for it. The base is read-only (mode 0444) and holds a
    /// journal and at least 1 GiB of free space; its size is virtual, the
    /// file is sparse.
    pub fn base(
        &self,
        manifest: &Digest,
        content: &ContentStore,
        layers: &[StoredLayer],
    ) -> Result<PathBuf, Error> {
        self.base_from(manifest, content, layers, None)
    }

    /// [`RootfsCache::base`] for an image a pull is still downloading: each
    /// layer is read as it arrives, through `follower` (see
    /// [`ContentStore::open_layer_following`]), so the base is written
    /// while the download runs instead of after it. Every byte gets the
    /// same checks, and a base is kept only if every layer passes them; if
    /// the pull fails, [`BlobFollower::stop`] makes this fail too, leaving
    /// nothing.
    ///
    /// ```no_run
    /// # async fn demo(
    /// #     client: containerization_oci::registry::RegistryClient,
    /// #     store: containerization_oci::store::ImageStore,
    /// #     reference: containerization_oci::Reference,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// use containerization::rootfs::RootfsCache;
    /// use containerization_oci::Platform;
    /// use containerization_oci::store::BlobFollower;
    ///
    /// let cache = RootfsCache::new("/srv/cz/rootfs");
    /// let follower = BlobFollower::new();
    /// let (sender, plan) = tokio::sync::oneshot::channel();
    /// let content = store.content().clone();
    /// let pull = async {
    ///     let pulled = client.pull_planned(&store, &reference, &Platform::host(), sender).await;
    ///     if pulled.is_err() {
    ///         follower.stop(); // no more bytes will come: the build fails now
    ///     }
    ///     pulled
    /// };
    /// let (pulled, built) = tokio::join!(
    ///     pull,
    ///     async {
    ///         let plan = plan.await.ok()?;
    ///         let follower = follower.clone();
    ///         tokio::task::spawn_blocking(move || {
    ///             cache.base_following(&plan.manifest, &content, &plan.layers, &follower)
    ///         })
    ///         .await
    ///         .ok()
    ///     },
    /// );
    /// pulled?;
    /// println!("base: {:?}", built);
    /// # Ok(())
    /// # }
    /// ```
    pub fn base_following(
        &self,
        manifest: &Digest,
        content: &ContentStore,
        layers: &[StoredLayer],
        follower: &BlobFollower,
    ) -> Result<PathBuf, Error> {
        self.base_from(manifest, content, layers, Some(follower))
    }

    /// [`RootfsCache::base`], reading the layers through `follow` if given.
    fn base_from(
        &self,
        manifest: &Digest,
        content: &ContentStore,
        layers: &[StoredLayer],
        follow: Option<&BlobFollower>,
    ) -> Result<PathBuf, Error> {
        self.build_once(manifest, |path, partial| {
            let layers = Layers {
                content,
                layers,
                follow,
            };
            build::build(path, partial, layers, &manifest.to_string()).map(drop)
        })
    }

    /// The base named `digest`: there already, or built by `build` (into
    /// the partial file it is given, then put in place), under the build
    /// lock, so processes asking at once build it once.
    fn build_once(
        &self,
        digest: &Digest,
        build: impl FnOnce(&Path, &Path) -> Result<(), Error>,
    ) -> Result<PathBuf, Error> {
        let path = self.path(digest);
        if exists(&path)? {
            return Ok(path);
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })?;
        let _lock = BuildLock::acquire(&self.sibling(digest, "lock"))?;
        if exists(&path)? {
            tracing::debug!(%digest, "another process built the base while this one waited");
            return Ok(path);
        }
        build(&path, &self.sibling(digest, "partial"))?;
        Ok(path)
    }

    /// The base for the snapshot stack `key`, built from `tree` (the
    /// stack, mounted) if it is not cached yet, under the key's digest,
    /// with the key written beside it (see [`SnapshotKey`]). Processes
    /// asking for the same key at once build it once.
    pub fn snapshot_base(&self, key: &SnapshotKey, tree: &Path) -> Result<PathBuf, Error> {
        let digest = key.digest();
        self.build_once(&digest, |path, partial| {
            let name = tree.display().to_string();
            let started = std::time::Instant::now();
            let built =
                build_from_tree(tree, partial).and_then(|()| build::publish(partial, path, &name));
            if let Err(error) = built {
                let _ = std::fs::remove_file(partial);
                return Err(error);
            }
            // Written after the base: a base without its key is only kept
            // while a container uses it, never kept for a key it lacks.
            let key_path = self.sibling(&digest, KEY_EXTENSION);
            let key_partial = self.sibling(&digest, "snapshot.partial");
            std::fs::write(&key_partial, key.text())
                .and_then(|()| std::fs::rename(&key_partial, &key_path))
                .map_err(|source| Error::Io {
                    path: key_path,
                    source,
                })?;
            tracing::info!(
                tree = %name,
                elapsed_ms = started.elapsed().as_millis(),
                "built a base from a snapshot"
            );
            Ok(())
        })
    }

    /// Whether the base for `manifest` was built from snapshots that are
    /// all still there (so it is kept for the next container of theirs).
    pub(crate) fn snapshot_present(&self, manifest: &Digest) -> bool {
        std::fs::read_to_string(self.sibling(manifest, KEY_EXTENSION))
            .is_ok_and(|text| SnapshotKey::still_present(&text))
    }

    /// Removes the base for `manifest`, if cached; returns whether it was.
    ///
    /// Overlays made from a base read it for as long as they live: remove
    /// a base only when no container uses it.
    pub fn remove(&self, manifest: &Digest) -> Result<bool, Error> {
        let path = self.path(manifest);
        if !exists(&self.dir)? {
            return Ok(false);
        }
        let _lock = BuildLock::acquire(&self.sibling(manifest, "lock"))?;
        // The key first: a base left without it is collected later.
        let key = self.sibling(manifest, KEY_EXTENSION);
        if let Err(source) = std::fs::remove_file(&key)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            return Err(Error::Io { path: key, source });
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Every finished base, sorted by manifest digest. Files that are not
    /// bases (half-built ones, locks) are left out.
    pub fn list(&self) -> Result<Vec<CachedBase>, Error> {
        let io_error = |source| Error::Io {
            path: self.dir.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(e)),
        };
        let mut bases = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error)?;
            let name = entry.file_name();
            let Some(manifest) = name.to_str().and_then(parse_name) else {
                continue;
            };
            let path = entry.path();
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                // Removed since the folder was read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::Io { path, source }),
            };
            bases.push(CachedBase {
                manifest,
                path,
                size: meta.len(),
                allocated: meta.blocks() * 512,
            });
        }
        bases.sort_by(|a, b| a.manifest.cmp(&b.manifest));
        Ok(bases)
    }

    /// `<dir>/<algorithm>-<hex>.<extension>`.
    fn sibling(&self, manifest: &Digest, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", stem(manifest)))
    }
}

/// `sha256-<hex>`: a digest as a file name (`:` is awkward in paths, and
/// QEMU reads it as a protocol prefix in a backing file name).
fn stem(manifest: &Digest) -> String {
    format!("{}-{}", manifest.algorithm().name(), manifest.hex())
}

/// The manifest of a finished base's file name.
fn parse_name(name: &str) -> Option<Digest> {
    let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    let (algorithm, hex) = stem.split_once('-')?;
    format!("{algorithm}:{hex}").parse().ok()
}

fn exists(path: &Path) -> Result<bool, Error> {
    path.try_exists().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::{RootfsCache, parse_name};

    #[test]
    fn bases_are_named_after_their_manifest_and_named_back() {
        let digest = containerization_oci::Digest::sha256(b"manifest");
        let cache = RootfsCache::new("/srv/cz/rootfs");
        let path = cache.path(&digest);
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name, format!("sha256-{}.ext4", digest.hex()));
        assert_eq!(parse_name(name), Some(digest.clone()));
        assert_eq!(
            parse_name(&format!("sha256-{}.partial", digest.hex())),
            None
        );
        assert_eq!(parse_name("sha256-nothex.ext4"), None);
    }
}

//! Garbage collection and the usage report.
//!
//! Every blob reachable from an `index.json` entry (through indexes to
//! manifests, and from manifests to configs and layers) is kept; the rest is
//! removed. Collection holds the GC lock exclusively, and every ingest holds it
//! shared, so a blob that a running pull has just written but not yet named is
//! never collected; so does a container being made from an image
//! ([`ImageStore::hold`]), until its root file system is built.
//!
//! A manifest or index that cannot be read (damaged, missing) might reference
//! any blob: while one is named, collection removes no blob at all and says
//! which image to repair, instead of guessing.

use std::collections::BTreeSet;

use rustix::fs::FlockOperation;

use crate::error::IoContext;
use crate::manifest::{Document, parse_document};
use crate::store::ImageStore;
use crate::store::lock::open_lock_file;
use crate::{Digest, Result};

/// What garbage collection may not remove: the blobs named images reach
/// (indexes, manifests, configs, layers).
#[derive(Debug, Clone, Default)]
pub struct Reachable {
    /// The blobs images reach.
    seen: BTreeSet<Digest>,
    /// The documents that could not be read: they might reach any blob.
    unreadable: Vec<String>,
}

impl Reachable {
    /// Whether `digest` must be kept: an image reaches it, or a document
    /// that cannot be read might.
    pub fn keeps(&self, digest: &Digest) -> bool {
        !self.unreadable.is_empty() || self.seen.contains(digest)
    }
}

/// What [`ImageStore::prune`] removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// The blobs removed.
    pub removed: Vec<Digest>,
    /// Bytes freed (blobs and abandoned ingest files).
    pub freed_bytes: u64,
    /// Why blobs were kept although no readable image reaches them: the
    /// documents that could not be read, each naming its image and the cause.
    pub kept_because: Vec<String>,
}

/// How much the store holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Usage {
    /// Named images.
    pub images: usize,
    /// Blobs in the store.
    pub blobs: usize,
    /// Their total size.
    pub bytes: u64,
    /// Blobs no image reaches (what `prune` would remove).
    pub unreachable_blobs: usize,
    /// Their total size.
    pub unreachable_bytes: u64,
}

impl ImageStore {
    /// Removes every blob no image reaches, and abandoned ingest files.
    pub fn prune(&self) -> Result<PruneReport> {
        let _gc = self.content().exclude_writers()?;
        let _index = self.content().index_lock()?;
        let reachable = self.reachable()?;
        let mut report = PruneReport {
            kept_because: reachable.unreadable.clone(),
            ..PruneReport::default()
        };
        for (digest, size) in self.all_blobs()? {
            if !reachable.keeps(&digest) {
                let path = self.content().blob_path(&digest);
                std::fs::remove_file(&path).at("remove", &path)?;
                self.content().forget_sources(&digest);
                self.content().forget_checked(&digest);
                report.freed_bytes += size;
                report.removed.push(digest);
            }
        }
        // Damaged blobs were kept aside only to be looked at.
        for (path, size) in self.content().damaged() {
            if std::fs::remove_file(&path).is_ok() {
                report.freed_bytes += size;
            }
        }
        // Ingest files nobody holds a lock on were left by killed processes.
        let dir = self.content().ingest_dir();
        for entry in std::fs::read_dir(dir).at("list", dir)?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("sha256-") || name.starts_with("sha512-")) {
                continue;
            }
            let path = entry.path();
            let Ok(file) = open_lock_file(&path) else {
                continue;
            };
            if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                report.freed_bytes += file.metadata().map(|m| m.len()).unwrap_or(0);
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(report)
    }

    /// Counts images and blobs, reachable or not.
    pub fn usage(&self) -> Result<Usage> {
        let reachable = self.reachable()?;
        let mut usage = Usage {
            images: self.list()?.len(),
            ..Usage::default()
        };
        for (digest, size) in self.all_blobs()? {
            usage.blobs += 1;
            usage.bytes += size;
            if !reachable.keeps(&digest) {
                usage.unreachable_blobs += 1;
                usage.unreachable_bytes += size;
            }
        }
        Ok(usage)
    }

    /// Every blob some `index.json` entry reaches, and the documents on the
    /// way that could not be read.
    pub fn reachable(&self) -> Result<Reachable> {
        let index = self.read_index()?;
        let mut seen = BTreeSet::new();
        let mut unreadable = Vec::new();
        // (digest, media type, the image's name)
        let mut todo: Vec<(Digest, String, String)> = Vec::new();
        for entry in index["manifests"].as_array().into_iter().flatten() {
            let name = entry["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or("an unnamed image");
            let digest = entry["digest"]
                .as_str()
                .and_then(|d| d.parse::<Digest>().ok());
            match (digest, entry["mediaType"].as_str()) {
                (Some(d), Some(m)) => todo.push((d, m.to_owned(), name.to_owned())),
                _ => unreadable.push(format!(
                    "the index.json entry of {name} has no valid digest or media type"
                )),
            }
        }
        while let Some((digest, media_type, name)) = todo.pop() {
            if !seen.insert(digest.clone()) {
                continue;
            }
            let bytes = match self.content().read_blob(&digest) {
                Ok(bytes) => bytes,
                Err(error) => {
                    unreadable.push(format!("{name}: {digest} cannot be read ({error})"));
                    continue;
                }
            };
            match parse_document(&bytes, &media_type, &digest.to_string()) {
                Ok(Document::Index(index)) => {
                    for m in index.manifests() {
                        match Digest::try_from(m.digest()) {
                            Ok(d) => todo.push((d, m.media_type().to_string(), name.clone())),
                            Err(error) => unreadable.push(format!("{name}: {error}")),
                        }
                    }
                }
                Ok(Document::Manifest(manifest)) => {
                    for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
                        match Digest::try_from(d.digest()) {
                            Ok(d) => {
                                seen.insert(d);
                            }
                            Err(error) => unreadable.push(format!("{name}: {error}")),
                        }
                    }
                }
                Err(error) => unreadable.push(format!("{name}: {digest} is damaged ({error})")),
            }
        }
        Ok(Reachable { seen, unreadable })
    }

    /// Every blob in `blobs/`, with its size.
    pub(crate) fn all_blobs(&self) -> Result<Vec<(Digest, u64)>> {
        let mut blobs = Vec::new();
        let root = self.content().root().join("blobs");
        for algorithm in std::fs::read_dir(&root).at("list", &root)?.flatten() {
            let alg = algorithm.file_name().to_string_lossy().into_owned();
            for blob in std::fs::read_dir(algorithm.path())
                .at("list", algorithm.path())?
                .flatten()
            {
                let name = blob.file_name().to_string_lossy().into_owned();
                if let Ok(digest) = format!("{alg}:{name}").parse::<Digest>() {
                    let size = blob.metadata().map(|m| m.len()).unwrap_or(0);
                    blobs.push((digest, size));
                }
            }
        }
        Ok(blobs)
    }
}

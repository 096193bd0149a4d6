//! Garbage collection and the usage report.
//!
//! Every blob reachable from an `index.json` entry (through indexes to
//! manifests, and from manifests to configs and layers) is kept; the rest is
//! removed. Collection holds the GC lock exclusively, and every ingest holds it
//! shared, so a blob that a running pull has just written but not yet named is
//! never collected.

use std::collections::BTreeSet;

use rustix::fs::FlockOperation;

use crate::error::IoContext;
use crate::manifest::{Document, parse_document};
use crate::store::ImageStore;
use crate::store::lock::{FileLock, open_lock_file};
use crate::{Digest, Result};

/// What [`ImageStore::prune`] removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// The blobs removed.
    pub removed: Vec<Digest>,
    /// Bytes freed (blobs and abandoned ingest files).
    pub freed_bytes: u64,
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
        let _gc = FileLock::exclusive(&self.content().gc_lock_path())?;
        let _index = self.content().index_lock()?;
        let reachable = self.reachable()?;
        let mut report = PruneReport::default();
        for (digest, size) in self.all_blobs()? {
            if !reachable.contains(&digest) {
                let path = self.content().blob_path(&digest);
                std::fs::remove_file(&path).at("remove", &path)?;
                self.content().forget_sources(&digest);
                report.freed_bytes += size;
                report.removed.push(digest);
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
            if !reachable.contains(&digest) {
                usage.unreachable_blobs += 1;
                usage.unreachable_bytes += size;
            }
        }
        Ok(usage)
    }

    /// Every blob some `index.json` entry reaches.
    fn reachable(&self) -> Result<BTreeSet<Digest>> {
        let index = self.read_index()?;
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(Digest, String)> = Vec::new();
        for entry in index["manifests"].as_array().into_iter().flatten() {
            if let (Some(d), Some(m)) = (entry["digest"].as_str(), entry["mediaType"].as_str())
                && let Ok(d) = d.parse()
            {
                todo.push((d, m.to_owned()));
            }
        }
        while let Some((digest, media_type)) = todo.pop() {
            if !seen.insert(digest.clone()) || !self.content().contains(&digest) {
                continue;
            }
            let bytes = self.content().read_blob(&digest)?;
            match parse_document(&bytes, &media_type, &digest.to_string()) {
                Ok(Document::Index(index)) => {
                    for m in index.manifests() {
                        if let Ok(d) = Digest::try_from(m.digest()) {
                            todo.push((d, m.media_type().to_string()));
                        }
                    }
                }
                Ok(Document::Manifest(manifest)) => {
                    for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
                        if let Ok(d) = Digest::try_from(d.digest()) {
                            seen.insert(d);
                        }
                    }
                }
                // An entry we cannot read keeps only itself.
                Err(_) => {}
            }
        }
        Ok(seen)
    }

    /// Every blob in `blobs/`, with its size.
    fn all_blobs(&self) -> Result<Vec<(Digest, u64)>> {
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

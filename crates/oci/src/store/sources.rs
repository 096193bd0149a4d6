//! Where blobs came from: the registry repositories known to hold each blob.
//!
//! Pull records the repository it fetched (or found) each blob in, and push
//! records where it put each one. A later push to another repository of the
//! same registry then asks the registry to mount the blob from there instead
//! of uploading it again. The records live beside the layout (not in it, so
//! other tools never see them) in `<ingest>/sources/<algorithm>-<hex>`, one
//! `registry/repository` a line. They are hints: a registry that no longer
//! has the blob answers the mount with an upload session, and the blob goes
//! up as usual. Lines are appended with one `write` each (`O_APPEND`), so two
//! processes recording at once do not interleave.

use std::io::Write;
use std::path::PathBuf;

use crate::error::IoContext;
use crate::store::ContentStore;
use crate::{Digest, Result};

/// A repository known to hold a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSource {
    /// The registry (`127.0.0.1:5000`, `docker.io`).
    pub registry: String,
    /// The repository in it (`library/alpine`).
    pub repository: String,
}

impl ContentStore {
    fn sources_path(&self, digest: &Digest) -> PathBuf {
        self.ingest_dir().join("sources").join(format!(
            "{}-{}",
            digest.algorithm().name(),
            digest.hex()
        ))
    }

    /// Records that `repository` of `registry` holds blob `digest`.
    pub fn record_source(&self, digest: &Digest, registry: &str, repository: &str) -> Result<()> {
        let source = BlobSource {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
        };
        if self.sources(digest)?.contains(&source) {
            return Ok(());
        }
        let path = self.sources_path(digest);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at("create", dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .at("open", &path)?;
        file.write_all(format!("{registry}/{repository}\n").as_bytes())
            .at("write", &path)
    }

    /// The repositories known to hold `digest`, in the order they were recorded.
    pub fn sources(&self, digest: &Digest) -> Result<Vec<BlobSource>> {
        let path = self.sources_path(digest);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at("read", path),
        };
        Ok(text
            .lines()
            .filter_map(|line| line.split_once('/'))
            .map(|(registry, repository)| BlobSource {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
            })
            .collect())
    }

    /// Forgets where `digest` came from (it left the store).
    pub(crate) fn forget_sources(&self, digest: &Digest) {
        // A missing record is the same as an empty one.
        let _ = std::fs::remove_file(self.sources_path(digest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_repository_once_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ContentStore::open(&dir.path().join("c"), &dir.path().join("i")).expect("open");
        let digest = Digest::sha256(b"blob");
        assert!(store.sources(&digest).expect("read").is_empty());
        store
            .record_source(&digest, "127.0.0.1:5000", "demo/a")
            .expect("record");
        store
            .record_source(&digest, "docker.io", "library/alpine")
            .expect("record");
        store
            .record_source(&digest, "127.0.0.1:5000", "demo/a")
            .expect("record again");
        let sources = store.sources(&digest).expect("read");
        assert_eq!(
            sources
                .iter()
                .map(|s| format!("{} {}", s.registry, s.repository))
                .collect::<Vec<_>>(),
            ["127.0.0.1:5000 demo/a", "docker.io library/alpine"]
        );
        store.forget_sources(&digest);
        assert!(store.sources(&digest).expect("read").is_empty());
    }
}

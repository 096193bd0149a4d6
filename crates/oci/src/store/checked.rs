//! What the store learned about its blobs after they were stored: which
//! layers were decompressed and found to match a `diff_id`, and which blobs
//! were found damaged and set aside.
//!
//! A blob is checked against its digest when it is stored. A layer's
//! `diff_id` (the digest of its uncompressed tar) is checked later, by
//! whatever decompresses it first (a root file system build, an unpack):
//! that is [`crate::layer::CheckedLayer`]. Once checked, the fact "blob D
//! uncompresses to X" holds for as long as the blob's bytes hash to D, which
//! every later read checks anyway; so it is recorded, in
//! `<ingest>/checked/<algorithm>-<hex>`, and later reads hash only the
//! compressed bytes.
//!
//! A stored blob found damaged (its bytes no longer hash to its name) is
//! moved to `<ingest>/damaged/<algorithm>-<hex>`, out of the layout: the
//! store then no longer holds it, so the next pull of an image that needs it
//! fetches it again instead of reporting it present.

use std::path::PathBuf;

use crate::error::IoContext;
use crate::store::ContentStore;
use crate::{Digest, Result};

impl ContentStore {
    fn record_path(&self, folder: &str, digest: &Digest) -> PathBuf {
        self.ingest_dir().join(folder).join(format!(
            "{}-{}",
            digest.algorithm().name(),
            digest.hex()
        ))
    }

    /// The `diff_id` blob `digest` was found to uncompress to, if it was
    /// checked before.
    pub fn checked_diff_id(&self, digest: &Digest) -> Option<Digest> {
        let text = std::fs::read_to_string(self.record_path("checked", digest)).ok()?;
        // A record cut short by a crash does not parse, and counts as none.
        text.trim().parse().ok()
    }

    /// Records that blob `digest` uncompresses to `diff_id`.
    pub fn record_checked(&self, digest: &Digest, diff_id: &Digest) -> Result<()> {
        let path = self.record_path("checked", digest);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at("create", dir)?;
        }
        std::fs::write(&path, format!("{diff_id}\n")).at("write", &path)
    }

    /// Forgets what was checked about `digest` (it left the store).
    pub(crate) fn forget_checked(&self, digest: &Digest) {
        // A missing record is the same as none.
        let _ = std::fs::remove_file(self.record_path("checked", digest));
    }

    /// Moves the damaged blob `digest` out of the layout (replacing a blob
    /// set aside before under that name), so that the store no longer holds
    /// it and the next pull fetches it again. Failing to move it is logged:
    /// the caller reports the damage either way.
    pub fn set_aside(&self, digest: &Digest) {
        let from = self.blob_path(digest);
        let to = self.record_path("damaged", digest);
        let moved = to
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::rename(&from, &to));
        match moved {
            Ok(()) => {
                tracing::warn!(%digest, kept = %to.display(), "set a damaged blob aside");
                self.forget_checked(digest);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(%digest, "cannot set a damaged blob aside: {e}"),
        }
    }

    /// The blobs set aside as damaged, and the bytes they take.
    pub fn damaged(&self) -> Vec<(PathBuf, u64)> {
        let dir = self.ingest_dir().join("damaged");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IngestStart;

    #[test]
    fn a_damaged_blob_leaves_the_store_and_can_be_stored_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ContentStore::open(&dir.path().join("c"), &dir.path().join("i")).expect("open");
        let digest = store.put_new_blob(b"layer bytes").expect("put");
        store
            .record_checked(&digest, &Digest::sha256(b"tar"))
            .expect("record");
        std::fs::write(store.blob_path(&digest), b"layer byteZ").expect("damage");
        store.set_aside(&digest);
        assert!(!store.contains(&digest));
        assert_eq!(store.checked_diff_id(&digest), None);
        assert_eq!(store.damaged().len(), 1);
        assert!(matches!(
            store.begin_ingest(&digest, 11).expect("begin"),
            IngestStart::Writer(_)
        ));
        store
            .put_blob(&digest, b"layer bytes")
            .expect("stored again");
        assert_eq!(store.read_blob(&digest).expect("read"), b"layer bytes");
    }

    #[test]
    fn a_record_cut_short_counts_as_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ContentStore::open(&dir.path().join("c"), &dir.path().join("i")).expect("open");
        let digest = Digest::sha256(b"blob");
        let diff_id = Digest::sha256(b"tar");
        store.record_checked(&digest, &diff_id).expect("record");
        assert_eq!(store.checked_diff_id(&digest), Some(diff_id));
        std::fs::write(store.record_path("checked", &digest), "sha256:12").expect("cut");
        assert_eq!(store.checked_diff_id(&digest), None);
    }
}

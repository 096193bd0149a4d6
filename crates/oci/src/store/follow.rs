//! Reading a blob while a pull is still writing it.
//!
//! A pull writes each blob to its ingest file (`ingest/<alg>-<hex>`) and
//! renames that file into `blobs/` once its size and digest check (see
//! [`Ingest`](super::Ingest)). A [`FollowedBlob`] reads the same bytes as
//! they land: from the blob when it is stored, else from the ingest file,
//! waiting at its end for more, until it has read the blob's size. The
//! rename keeps the file, so a reader that opened the ingest file goes on
//! reading the stored blob.
//!
//! Nothing here vouches for the bytes: they are the download's, before its
//! digest check. A reader must check them itself, as
//! [`ContentStore::open_layer_following`] does (digest and `diff_id`, with
//! the same verdict as for a stored layer), and throw away what it built
//! from them unless they pass.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Digest;
use crate::store::ContentStore;

/// How long a reader at the end of what has arrived sleeps before it looks
/// again.
const POLL: Duration = Duration::from_millis(5);
/// How long a reader waits without a new byte before it gives up, by default.
const STALL: Duration = Duration::from_secs(120);

/// What readers following one pull share: a way to stop them all (the pull
/// failed), and a count of the bytes they read before their blob was stored.
///
/// ```
/// use containerization_oci::store::BlobFollower;
///
/// let follower = BlobFollower::new();
/// assert!(!follower.stopped());
/// follower.stop(); // the pull failed: every reader fails at its next read
/// assert!(follower.stopped());
/// assert_eq!(follower.bytes_before_stored(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct BlobFollower {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    stopped: AtomicBool,
    stall: Duration,
    early: AtomicU64,
}

impl Default for BlobFollower {
    fn default() -> Self {
        Self::new()
    }
}

impl BlobFollower {
    /// Readers that wait up to two minutes for a byte.
    pub fn new() -> Self {
        Self::with_stall(STALL)
    }

    /// Readers that give up after `stall` without a new byte.
    pub fn with_stall(stall: Duration) -> Self {
        Self {
            inner: Arc::new(Shared {
                stopped: AtomicBool::new(false),
                stall,
                early: AtomicU64::new(0),
            }),
        }
    }

    /// Makes every reader fail at its next read: no more bytes will come.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether [`BlobFollower::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// Bytes the readers read from ingest files before their blobs were
    /// stored: the work done while the download ran.
    pub fn bytes_before_stored(&self) -> u64 {
        self.inner.early.load(Ordering::Relaxed)
    }
}

/// A blob read as it arrives: see the module's documentation.
#[derive(Debug)]
pub struct FollowedBlob {
    store: ContentStore,
    digest: Digest,
    size: u64,
    follower: BlobFollower,
    /// The open file, and whether it was opened as the ingest file.
    file: Option<(File, bool)>,
    read: u64,
    last_byte: Instant,
}

impl ContentStore {
    /// Reads blob `digest` of `size` bytes as a pull writes it, or from the
    /// store once it is there: see [`FollowedBlob`].
    pub fn follow_blob(&self, digest: &Digest, size: u64, follower: &BlobFollower) -> FollowedBlob {
        FollowedBlob {
            store: self.clone(),
            digest: digest.clone(),
            size,
            follower: follower.clone(),
            file: None,
            read: 0,
            last_byte: Instant::now(),
        }
    }
}

impl FollowedBlob {
    /// Opens the stored blob, else the ingest file; `None` when neither is
    /// there yet.
    fn open(&self) -> std::io::Result<Option<(File, bool)>> {
        for (path, ingest) in [
            (self.store.blob_path(&self.digest), false),
            (self.store.ingest_path(&self.digest), true),
        ] {
            match File::open(&path) {
                Ok(file) => return Ok(Some((file, ingest))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// At the end of what the open file holds: whether to look again at
    /// once (it grew; or the download started over in a new file, or the
    /// blob is stored under another file: then it is closed, to be opened
    /// again), or to wait (`false`).
    fn at_end(&mut self) -> std::io::Result<bool> {
        let Some((file, _)) = &self.file else {
            return Ok(false);
        };
        let meta = file.metadata()?;
        if meta.len() > self.read {
            return Ok(true);
        }
        let same = |path: &std::path::Path| {
            std::fs::metadata(path).is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev())
        };
        if same(&self.store.blob_path(&self.digest)) {
            // Stored, and whole: it cannot be shorter than its size.
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the stored blob {} has {} bytes, not {}",
                    self.digest,
                    meta.len(),
                    self.size
                ),
            ));
        }
        if !same(&self.store.ingest_path(&self.digest)) {
            // Discarded, or stored from another file: look again.
            self.file = None;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Read for FollowedBlob {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (self.size - self.read).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        loop {
            if self.follower.stopped() {
                return Err(std::io::Error::other(format!(
                    "the pull stopped before blob {} arrived",
                    self.digest
                )));
            }
            if self.file.is_none() {
                self.file = self.open()?;
            }
            if let Some((file, ingest)) = &self.file {
                let n = file.read_at(&mut buf[..want], self.read)?;
                if n > 0 {
                    let early = *ingest && !self.store.contains(&self.digest);
                    self.read += n as u64;
                    self.last_byte = Instant::now();
                    if early {
                        self.follower
                            .inner
                            .early
                            .fetch_add(n as u64, Ordering::Relaxed);
                    }
                    return Ok(n);
                }
                if self.at_end()? {
                    continue;
                }
            }
            if self.last_byte.elapsed() > self.follower.inner.stall {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no byte of blob {} arrived for {} s (at {} of {} bytes)",
                        self.digest,
                        self.follower.inner.stall.as_secs(),
                        self.read,
                        self.size
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IngestStart;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&dir.path().join("content"), &dir.path().join("ingest"))
            .expect("store");
        (dir, store)
    }

    fn writer(store: &ContentStore, digest: &Digest, size: u64) -> crate::store::Ingest {
        match store.begin_ingest(digest, size).expect("ingest") {
            IngestStart::Writer(w) => *w,
            IngestStart::Present => panic!("already stored"),
        }
    }

    #[test]
    fn a_blob_is_read_as_it_arrives_and_after_it_is_stored() {
        let (_dir, store) = store();
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let digest = Digest::sha256(&bytes);
        let follower = BlobFollower::new();
        let mut reader = store.follow_blob(&digest, bytes.len() as u64, &follower);
        let reading = std::thread::spawn(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).map(|_| got)
        });
        // The reader starts before the ingest file exists.
        std::thread::sleep(Duration::from_millis(20));
        let mut ingest = writer(&store, &digest, bytes.len() as u64);
        for chunk in bytes.chunks(64 << 10) {
            ingest.write(chunk).expect("write");
            std::thread::sleep(Duration::from_millis(20));
        }
        ingest.commit().expect("commit");
        let got = reading.join().unwrap().expect("read");
        assert_eq!(got, bytes);
        let early = follower.bytes_before_stored();
        assert!(early > 0 && early <= bytes.len() as u64, "{early}");
        // A stored blob reads whole, none of it early.
        let again = BlobFollower::new();
        let mut stored = Vec::new();
        store
            .follow_blob(&digest, bytes.len() as u64, &again)
            .read_to_end(&mut stored)
            .expect("read stored");
        assert_eq!(stored, bytes);
        assert_eq!(again.bytes_before_stored(), 0);
    }

    #[test]
    fn a_stopped_pull_or_a_stalled_one_fails_the_reader() {
        let (_dir, store) = store();
        let digest = Digest::sha256(b"never");
        let follower = BlobFollower::new();
        let mut reader = store.follow_blob(&digest, 5, &follower);
        let stopper = follower.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            stopper.stop();
        });
        let error = reader.read(&mut [0u8; 8]).expect_err("stopped");
        assert!(error.to_string().contains("the pull stopped"), "{error}");
        let mut ingest = writer(&store, &digest, 5);
        ingest.write(b"nev").expect("write");
        let slow = BlobFollower::with_stall(Duration::from_millis(50));
        let mut reader = store.follow_blob(&digest, 5, &slow);
        let mut got = vec![0u8; 8];
        assert_eq!(reader.read(&mut got).expect("what is there"), 3);
        let error = reader.read(&mut got).expect_err("stalled");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
        drop(ingest);
    }
}

//! The content store: an OCI image layout on disk, plus a staging folder.
//!
//! Blobs live in `content/blobs/<algorithm>/<hex>`, exactly where `skopeo` and
//! `umoci` look. A blob is written to `ingest/<algorithm>-<hex>` first, under a
//! lock on that file; it is renamed into `blobs/` only after its size and
//! digest check and the data is synced, so a blob in `blobs/` is always whole
//! and correct. A partial ingest file left by a killed process is picked up
//! where it stopped by the next writer of the same blob.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use crate::error::IoContext;
use crate::store::lock::{FileLock, open_lock_file};
use crate::{Algorithm, Digest, Error, Hasher, Result};

/// The `oci-layout` file's content.
const OCI_LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";
/// Bytes an ingest writes before it asks the kernel to start writing them
/// back, so that the sync at commit waits only for the last of them.
const WRITEBACK_STEP: u64 = 8 << 20;

/// An OCI image layout holding blobs, with a staging folder for writes.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    ingest: PathBuf,
}

/// What [`ContentStore::begin_ingest`] found.
#[derive(Debug)]
pub enum IngestStart {
    /// The blob is already in the store.
    Present,
    /// A writer for the blob, possibly holding bytes from an earlier attempt.
    Writer(Box<Ingest>),
}

impl ContentStore {
    /// Opens the layout at `root` with staging folder `ingest` (on the same
    /// file system), creating both and the layout files when missing.
    pub fn open(root: &Path, ingest: &Path) -> Result<Self> {
        for dir in [root.join("blobs").join("sha256"), ingest.to_path_buf()] {
            std::fs::create_dir_all(&dir).at("create", &dir)?;
        }
        let store = Self {
            root: root.to_path_buf(),
            ingest: ingest.to_path_buf(),
        };
        let layout = root.join("oci-layout");
        if !layout.exists() {
            store.write_atomically(&layout, OCI_LAYOUT.as_bytes())?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let _lock = store.index_lock()?;
            if !index.exists() {
                let empty = serde_json::json!({"schemaVersion": 2, "manifests": []});
                store.write_atomically(&index, empty.to_string().as_bytes())?;
            }
        }
        Ok(store)
    }

    /// The layout folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The staging folder.
    pub fn ingest_dir(&self) -> &Path {
        &self.ingest
    }

    /// Where a blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// Where blob `digest` is written while it arrives (see [`Ingest`]).
    pub fn ingest_path(&self, digest: &Digest) -> PathBuf {
        self.ingest
            .join(format!("{}-{}", digest.algorithm().name(), digest.hex()))
    }

    /// Whether the store holds `digest`.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a stored blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.to_string()))
            }
            Err(e) => Err(e).at("read", path),
        }
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::BlobNotFound(digest.to_string()),
            _ => Error::Io {
                action: "open",
                path,
                source: e,
            },
        })
    }

    /// Reads a whole stored blob (for manifests and configs), refusing one
    /// larger than [`MAX_CONFIG_BYTES`](crate::limits::MAX_CONFIG_BYTES):
    /// layers are opened with [`ContentStore::open_blob`] and streamed.
    ///
    /// The bytes are checked against the digest where they are read: a
    /// damaged blob is [`Error::DamagedBlob`], never a puzzling parse error,
    /// and is set aside ([`ContentStore::set_aside`]) so a pull fetches it again.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = crate::limits::read_limited(
            self.open_blob(digest)?,
            crate::limits::MAX_CONFIG_BYTES,
            &format!("the stored blob {digest} (read as a manifest or config)"),
        )?
        .at("read", path)?;
        let actual = digest.same_algorithm_of(&bytes);
        if &actual != digest {
            self.set_aside(digest);
            return Err(Error::DamagedBlob {
                digest: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes`, checking them against `digest`.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        digest.verify(bytes)?;
        match self.begin_ingest(digest, bytes.len() as u64)? {
            IngestStart::Present => Ok(()),
            IngestStart::Writer(mut writer) => {
                writer.reset()?;
                writer.write(bytes)?;
                writer.commit()
            }
        }
    }

    /// Stores bytes whose digest is not known yet (SHA-256), returning it.
    pub fn put_new_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256(bytes);
        self.put_blob(&digest, bytes)?;
        Ok(digest)
    }

    /// Starts writing blob `digest` of `size` bytes. Waits while another
    /// process writes the same blob, and returns [`IngestStart::Present`] if
    /// that process completed it.
    pub fn begin_ingest(&self, digest: &Digest, size: u64) -> Result<IngestStart> {
        if self.contains(digest) {
            return Ok(IngestStart::Present);
        }
        let gc = FileLock::shared(&self.gc_lock_path())?;
        let path = self.ingest_path(digest);
        loop {
            let file = open_lock_file(&path)?;
            rustix::fs::flock(&file, FlockOperation::LockExclusive).at("lock", &path)?;
            // The writer before us may have renamed this file into the store;
            // then our handle points at the blob, not at an ingest file.
            let still_ours = std::fs::metadata(&path)
                .is_ok_and(|m| m.ino() == file.metadata().map(|f| f.ino()).unwrap_or(0));
            if self.contains(digest) {
                if still_ours {
                    let _ = std::fs::remove_file(&path);
                }
                return Ok(IngestStart::Present);
            }
            if !still_ours {
                continue;
            }
            return Ingest::resume(self.clone(), file, path, digest.clone(), size, gc)
                .map(|w| IngestStart::Writer(Box::new(w)));
        }
    }

    /// Keeps garbage collection away until the returned lock is dropped:
    /// hold it from the first blob of an image until its name is set.
    pub fn hold_off_gc(&self) -> Result<FileLock> {
        FileLock::shared(&self.gc_lock_path())
    }

    /// Waits until no one writes to the store or holds it off garbage
    /// collection ([`Self::hold_off_gc`]), and keeps them waiting until the
    /// returned lock is dropped: for collections outside the store, such as
    /// the root file systems built from its images.
    pub fn exclude_writers(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.gc_lock_path())
    }

    /// [`Self::exclude_writers`] if no one writes now, else `None` at once.
    pub fn try_exclude_writers(&self) -> Result<Option<FileLock>> {
        FileLock::try_exclusive(&self.gc_lock_path())
    }

    /// The lock garbage collection takes exclusively and writers take shared.
    pub(crate) fn gc_lock_path(&self) -> PathBuf {
        self.ingest.join("gc.lock")
    }

    /// Takes the lock that guards `index.json`.
    pub(crate) fn index_lock(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.ingest.join("index.lock"))
    }

    /// Writes a file inside the layout through a synced temporary file and a rename.
    pub(crate) fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        let mut temp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .at("create a temporary file in", dir)?;
        temp.write_all(bytes)
            .at("write", temp.path().to_path_buf())?;
        temp.as_file().sync_all().at("sync", path)?;
        temp.persist(path).map_err(|e| Error::Io {
            action: "replace",
            path: path.to_path_buf(),
            source: e.error,
        })?;
        sync_dir(dir)
    }
}

/// Asks the kernel to start writing `from..to` of `file` back to disk,
/// without waiting: the download goes on while the disk catches up, and the
/// sync at commit finds little left to do (measured: a 90 MiB pull spent
/// about 40 ms of its 170 in that sync). A failure only loses the head start.
fn start_writeback(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(length)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the
    // descriptor is open for as long as `file` is borrowed.
    let _ = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            length,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

/// Syncs a folder so a rename in it survives a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at("sync", dir)
}

/// A blob being written: hashes as it goes, checks on commit.
#[derive(Debug)]
pub struct Ingest {
    store: ContentStore,
    file: File,
    path: PathBuf,
    digest: Digest,
    size: u64,
    written: u64,
    /// Bytes before this offset have been handed to writeback.
    written_back: u64,
    hasher: Hasher,
    /// Committed or discarded: the file is no longer this writer's.
    finished: bool,
    _gc: FileLock,
}

impl Ingest {
    fn resume(
        store: ContentStore,
        mut file: File,
        path: PathBuf,
        digest: Digest,
        size: u64,
        gc: FileLock,
    ) -> Result<Self> {
        let mut hasher = Hasher::new(digest.algorithm());
        let mut written = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).at("read", &path)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            written += n as u64;
        }
        let mut ingest = Self {
            store,
            file,
            path,
            digest,
            size,
            written,
            written_back: 0,
            hasher,
            finished: false,
            _gc: gc,
        };
        if written > size {
            ingest.reset()?;
        }
        ingest.written_back = ingest.written;
        Ok(ingest)
    }

    /// How many bytes are already written (from an earlier attempt too): the
    /// offset to resume the download from.
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// The blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Discards what was written, to start over.
    pub fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).at("truncate", &self.path)?;
        self.file.seek(SeekFrom::Start(0)).at("seek", &self.path)?;
        self.written = 0;
        self.written_back = 0;
        self.hasher = Hasher::new(self.digest.algorithm());
        Ok(())
    }

    /// Appends bytes; refuses more than the descriptor's size.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let after = self.written + bytes.len() as u64;
        if after > self.size {
            return Err(Error::SizeMismatch {
                digest: self.digest.to_string(),
                expected: self.size,
                actual: after,
            });
        }
        self.file.write_all(bytes).at("write", &self.path)?;
        self.hasher.update(bytes);
        self.written = after;
        if self.written - self.written_back >= WRITEBACK_STEP {
            start_writeback(&self.file, self.written_back, self.written);
            self.written_back = self.written;
        }
        Ok(())
    }

    /// The partial file (its first [`Ingest::offset`] bytes are written).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks size and digest without committing.
    pub fn check(&self) -> Result<()> {
        if self.written != self.size {
            return Err(Error::SizeMismatch {
                digest: self.digest.to_string(),
                expected: self.size,
                actual: self.written,
            });
        }
        self.hasher.clone().verify(&self.digest)
    }

    /// Checks size and digest, syncs, and moves the blob into the store. On a
    /// mismatch the partial file is removed so the next attempt starts clean.
    pub fn commit(mut self) -> Result<()> {
        if let Err(e) = self.check() {
            self.discard();
            return Err(e);
        }
        self.file.sync_all().at("sync", &self.path)?;
        let target = self.store.blob_path(&self.digest);
        let dir = target.parent().unwrap_or(self.store.root());
        std::fs::create_dir_all(dir).at("create", dir)?;
        std::fs::rename(&self.path, &target).at("move into the store", &target)?;
        self.finished = true;
        sync_dir(dir)
    }

    /// Gives up, removing the partial file (a later writer starts over).
    pub fn discard(mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.finished = true;
    }
}

impl Drop for Ingest {
    /// A writer dropped unfinished (an error, or a pull cancelled because
    /// another blob of it failed) keeps the bytes it has for the next writer
    /// to resume from; an empty file helps nobody and is removed. The lock is
    /// still held here, so no other writer is using the file.
    fn drop(&mut self) {
        if !self.finished && self.written == 0 {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Hashes `reader` fully with `algorithm` (used to check blobs at rest).
pub fn digest_of(reader: &mut impl Read, algorithm: Algorithm) -> std::io::Result<Digest> {
    let mut hasher = Hasher::new(algorithm);
    std::io::copy(reader, &mut hasher)?;
    Ok(hasher.finish())
}

//! Reading a stored layer with every byte checked where it is read.
//!
//! A [`CheckedLayer`] is the uncompressed tar of one stored layer. A thread
//! of its own reads the blob, hashes the compressed bytes (they must still
//! hash to the blob's name: disks rot), inflates them and, unless the store
//! already recorded that this blob uncompresses to the expected `diff_id`,
//! hashes the inflated bytes too. So the reader (an unpacker, the ext4
//! writer) works on one core while the checks run on another, and the next
//! layer can start inflating while this one is written. Memory stays
//! bounded: at most [`DEPTH`] chunks wait between the two.
//!
//! The verdict comes at the end, from [`CheckedLayer::finish`]: whatever was
//! built from the bytes must be thrown away unless it says yes. A blob whose
//! bytes no longer match its digest is set aside, so the next pull fetches
//! it again; a `diff_id` that does not match is the image's fault, and the
//! blob stays.

use std::io::{BufReader, Read};
use std::sync::mpsc;
use std::thread::JoinHandle;

use oci_spec::image::Descriptor;

use crate::layer::decoder_buffered;
use crate::manifest::descriptor_digest;
use crate::media_type::{self, Compression, Kind};
use crate::store::{BlobFollower, ContentStore, ResolvedImage};
use crate::{Digest, Error, Hasher, Result};

/// Size of each chunk handed over.
const CHUNK: usize = 256 << 10;
/// Chunks that may wait in the channel.
const DEPTH: usize = 16;

/// One layer of an image as the store holds it, with what to check it against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLayer {
    /// The blob's digest (of the compressed bytes).
    pub digest: Digest,
    /// The blob's size, from its descriptor.
    pub size: u64,
    /// How the blob is compressed.
    pub compression: Compression,
    /// The digest of the uncompressed tar, from the image config, if known.
    pub diff_id: Option<Digest>,
}

impl StoredLayer {
    /// The layer a manifest's `descriptor` names, expected to uncompress
    /// to `diff_id`.
    pub fn new(descriptor: &Descriptor, diff_id: Option<Digest>) -> Result<Self> {
        let digest = descriptor_digest(descriptor)?;
        let compression = match media_type::kind(descriptor.media_type().as_ref()) {
            Kind::Layer(c) => c,
            _ => {
                return Err(Error::UnsupportedMediaType {
                    media_type: descriptor.media_type().to_string(),
                    what: format!("layer {digest}"),
                });
            }
        };
        Ok(Self {
            digest,
            size: descriptor.size(),
            compression,
            diff_id,
        })
    }

    /// Every layer of `image`, lowest first, each with its config's `diff_id`.
    pub fn of_image(image: &ResolvedImage) -> Result<Vec<Self>> {
        let diff_ids = image.config.rootfs().diff_ids();
        let layers = image.manifest.layers();
        if diff_ids.len() != layers.len() {
            return Err(Error::InvalidDocument {
                what: image.image.name.clone(),
                kind: "image config",
                reason: format!(
                    "it lists {} diff_ids for {} layers",
                    diff_ids.len(),
                    layers.len()
                ),
            });
        }
        layers
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| Self::new(layer, Some(diff_id.parse()?)))
            .collect()
    }
}

/// What the reading thread found.
struct Outcome {
    /// The compressed bytes' digest and count, if they were read to the end.
    compressed: Option<(Digest, u64)>,
    /// The inflated bytes' digest (when hashed), or why they did not inflate.
    inflated: std::io::Result<Option<Digest>>,
}

/// The uncompressed stream of a stored layer, checked as it is read.
pub struct CheckedLayer {
    store: ContentStore,
    layer: StoredLayer,
    /// Whether the bytes are the stored blob's (a damaged one is set aside),
    /// not a download's.
    stored: bool,
    /// Whether the store already knew that the blob uncompresses to the
    /// layer's `diff_id` (then the inflated bytes are not hashed again).
    known: bool,
    receiver: Option<mpsc::Receiver<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
    thread: Option<JoinHandle<Outcome>>,
    /// What the thread returned, once it has ended.
    outcome: Option<Outcome>,
}

impl std::fmt::Debug for CheckedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedLayer")
            .field("layer", &self.layer)
            .field("known", &self.known)
            .finish_non_exhaustive()
    }
}

impl ContentStore {
    /// Opens a stored layer for reading, uncompressed, with its blob digest
    /// and `diff_id` checked as it is read: see [`CheckedLayer`].
    ///
    /// ```no_run
    /// # fn demo(store: &containerization_oci::store::ImageStore) -> containerization_oci::Result<()> {
    /// use containerization_oci::layer::StoredLayer;
    /// use containerization_oci::Platform;
    ///
    /// let image = store.resolve("docker.io/library/busybox:latest", &Platform::host())?;
    /// for layer in StoredLayer::of_image(&image)? {
    ///     let mut tar = store.content().open_layer(&layer)?;
    ///     let entries = tar::Archive::new(&mut tar).entries().map(|e| e.count()).unwrap_or(0);
    ///     tar.finish()?; // only now are the entries known to be the layer's
    ///     println!("{}: {entries} entries", layer.digest);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_layer(&self, layer: &StoredLayer) -> Result<CheckedLayer> {
        let file = self.open_blob(&layer.digest)?;
        Ok(self.open_layer_from(layer, Box::new(file), true))
    }

    /// Opens a layer that a pull is still downloading, reading its bytes as
    /// they arrive ([`ContentStore::follow_blob`]), with the same checks
    /// and verdict as [`ContentStore::open_layer`]. A blob found damaged is
    /// not set aside: the bytes were the download's, which checks them
    /// again before it stores them.
    pub fn open_layer_following(
        &self,
        layer: &StoredLayer,
        follower: &BlobFollower,
    ) -> CheckedLayer {
        let blob = self.follow_blob(&layer.digest, layer.size, follower);
        self.open_layer_from(layer, Box::new(blob), false)
    }

    /// A [`CheckedLayer`] reading the blob's bytes from `blob`; a damaged
    /// one is set aside when `stored`.
    fn open_layer_from(
        &self,
        layer: &StoredLayer,
        blob: Box<dyn Read + Send>,
        stored: bool,
    ) -> CheckedLayer {
        // An uncompressed layer's diff_id is its digest, checked anyway.
        let known = layer.diff_id.is_some()
            && (self.checked_diff_id(&layer.digest) == layer.diff_id
                || (layer.compression == Compression::None
                    && layer.diff_id.as_ref() == Some(&layer.digest)));
        let hash_inflated = match &layer.diff_id {
            Some(d) if !known => Some(d.algorithm()),
            _ => None,
        };
        let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let compression = layer.compression;
        let mut source = HashingReader {
            inner: blob,
            hasher: Hasher::new(layer.digest.algorithm()),
            count: 0,
        };
        let thread = std::thread::spawn(move || {
            let inflated = inflate(&mut source, compression, hash_inflated, &sender);
            drop(sender);
            // The blob's digest needs all of it, however far it inflated
            // (bounded work: the blob's size was checked when it was stored).
            let compressed = std::io::copy(&mut source, &mut std::io::sink())
                .ok()
                .map(|_| (source.hasher.finish(), source.count));
            Outcome {
                compressed,
                inflated,
            }
        });
        CheckedLayer {
            store: self.clone(),
            layer: layer.clone(),
            stored,
            known,
            receiver: Some(receiver),
            current: Vec::new(),
            position: 0,
            thread: Some(thread),
            outcome: None,
        }
    }
}

impl CheckedLayer {
    /// The layer being read.
    pub fn layer(&self) -> &StoredLayer {
        &self.layer
    }

    /// Whether the inflated bytes were checked before, so only the
    /// compressed ones are hashed this time.
    pub fn known(&self) -> bool {
        self.known
    }

    /// Reads what is left (a tar reader stops before the padding), then
    /// gives the verdict: [`Error::DamagedBlob`] (and the blob set aside) or
    /// [`Error::SizeMismatch`] if the blob is not what its digest names,
    /// [`Error::LayerUnreadable`] if it does not decompress, and
    /// [`Error::DiffIdMismatch`] if it decompresses to something else than
    /// the config says. Anything built from the bytes must be thrown away
    /// unless this is `Ok`. A `diff_id` checked now is recorded in the store.
    pub fn finish(mut self) -> Result<()> {
        // A read error here is the thread's, which the outcome reports.
        let _ = std::io::copy(&mut self, &mut std::io::sink());
        self.join();
        let Some(outcome) = self.outcome.take() else {
            return Err(self.unreadable("its reading thread ended early".to_owned()));
        };
        self.check_compressed(outcome.compressed)?;
        let layer = &self.layer;
        let inflated = outcome
            .inflated
            .map_err(|e| self.unreadable(format!("it does not decompress: {e}")))?;
        if let (Some(expected), Some(actual)) = (&layer.diff_id, inflated) {
            if &actual != expected {
                return Err(Error::DiffIdMismatch {
                    layer: layer.digest.to_string(),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
            if let Err(e) = self.store.record_checked(&layer.digest, &actual) {
                // Only a saving for next time is lost.
                tracing::warn!(layer = %layer.digest, "cannot record a checked layer: {e}");
            }
            tracing::debug!(layer = %layer.digest, "decompressed and checked a layer's diff_id");
        }
        Ok(())
    }

    /// The verdict on the blob's bytes alone, for a reader that gave up on
    /// the layer (its content was refused): stops inflating, and says
    /// whether the blob is damaged. `Ok` means only that the blob is whole,
    /// never that the layer is good.
    pub fn check_blob(mut self) -> Result<()> {
        self.join();
        let compressed = self.outcome.take().and_then(|o| o.compressed);
        self.check_compressed(compressed)
    }

    /// Checks what the thread found of the compressed bytes.
    fn check_compressed(&self, compressed: Option<(Digest, u64)>) -> Result<()> {
        let layer = &self.layer;
        match compressed {
            None => Err(self.unreadable("the blob could not be read".to_owned())),
            Some((_, count)) if count != layer.size => {
                self.set_aside();
                Err(Error::SizeMismatch {
                    digest: layer.digest.to_string(),
                    expected: layer.size,
                    actual: count,
                })
            }
            Some((actual, _)) if actual != layer.digest => {
                self.set_aside();
                Err(Error::DamagedBlob {
                    digest: layer.digest.to_string(),
                    actual: actual.to_string(),
                })
            }
            Some(_) => Ok(()),
        }
    }

    /// Sets a damaged stored blob aside, so the next pull fetches it again.
    fn set_aside(&self) {
        if self.stored {
            self.store.set_aside(&self.layer.digest);
        }
    }

    fn unreadable(&self, reason: String) -> Error {
        Error::LayerUnreadable {
            layer: self.layer.digest.to_string(),
            reason,
        }
    }

    /// Waits for the thread (its channel closed) and keeps what it returned.
    fn join(&mut self) {
        self.receiver = None;
        if let Some(thread) = self.thread.take() {
            self.outcome = thread.join().ok();
        }
    }
}

impl Read for CheckedLayer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position == self.current.len() {
            let Some(receiver) = &self.receiver else {
                return Ok(0);
            };
            match receiver.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.position = 0;
                }
                Err(_) => {
                    // The thread ended: report its error, if it had one.
                    self.join();
                    if let Some(Outcome {
                        inflated: Err(e), ..
                    }) = &self.outcome
                    {
                        return Err(std::io::Error::new(e.kind(), e.to_string()));
                    }
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Inflates `source` into chunks sent to `sender`, hashing them with
/// `algorithm` when given. A reader that went away is `BrokenPipe`.
fn inflate(
    source: &mut HashingReader,
    compression: Compression,
    algorithm: Option<crate::Algorithm>,
    sender: &mpsc::SyncSender<Vec<u8>>,
) -> std::io::Result<Option<Digest>> {
    let buffered = BufReader::with_capacity(1 << 17, source);
    let mut reader = decoder_buffered(compression, buffered).map_err(std::io::Error::other)?;
    let mut hasher = algorithm.map(Hasher::new);
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        chunk.truncate(filled);
        if let Some(h) = &mut hasher {
            h.update(&chunk);
        }
        if sender.send(chunk).is_err() {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        if filled < CHUNK {
            break;
        }
    }
    Ok(hasher.map(Hasher::finish))
}

/// Hashes and counts every byte read through it.
struct HashingReader {
    inner: Box<dyn Read + Send>,
    hasher: Hasher,
    count: u64,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tests::gzip;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: ContentStore,
        layer: StoredLayer,
        content: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ContentStore::open(&dir.path().join("c"), &dir.path().join("i")).expect("open");
        // Several chunks' worth, so the thread turns over.
        let content: Vec<u8> = (0..400_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let blob = gzip(&content);
        let digest = store.put_new_blob(&blob).expect("put");
        let layer = StoredLayer {
            digest,
            size: blob.len() as u64,
            compression: Compression::Gzip,
            diff_id: Some(Digest::sha256(&content)),
        };
        Fixture {
            _dir: dir,
            store,
            layer,
            content,
        }
    }

    fn read(store: &ContentStore, layer: &StoredLayer) -> (Vec<u8>, bool, Result<()>) {
        let mut reader = store.open_layer(layer).expect("open");
        let known = reader.known();
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out);
        (out, known, reader.finish())
    }

    #[test]
    fn a_good_layer_reads_whole_and_is_decompressed_for_its_check_once() {
        let f = fixture();
        let (out, known, verdict) = read(&f.store, &f.layer);
        verdict.expect("good");
        assert_eq!(out, f.content);
        assert!(!known);
        assert_eq!(f.store.checked_diff_id(&f.layer.digest), f.layer.diff_id);
        let (out, known, verdict) = read(&f.store, &f.layer);
        verdict.expect("still good");
        assert_eq!(out, f.content);
        assert!(known, "the second read trusts the record");
    }

    #[test]
    fn a_wrong_diff_id_is_refused_and_the_blob_stays() {
        let mut f = fixture();
        f.layer.diff_id = Some(Digest::sha256(b"something else"));
        let (_, _, verdict) = read(&f.store, &f.layer);
        let error = verdict.expect_err("refused");
        assert!(matches!(error, Error::DiffIdMismatch { .. }), "{error}");
        assert!(f.store.contains(&f.layer.digest));
        assert_eq!(f.store.checked_diff_id(&f.layer.digest), None);
    }

    #[test]
    fn a_flipped_byte_is_refused_even_when_the_diff_id_was_checked_before() {
        let f = fixture();
        read(&f.store, &f.layer).2.expect("good");
        let path = f.store.blob_path(&f.layer.digest);
        let mut bytes = std::fs::read(&path).expect("read");
        // In the middle of the deflate stream, and then in the gzip trailer.
        for at in [bytes.len() / 2, bytes.len() - 6] {
            bytes[at] ^= 0x01;
            std::fs::write(&path, &bytes).expect("damage");
            let (_, _, verdict) = read(&f.store, &f.layer);
            let error = verdict.expect_err("refused");
            assert!(matches!(error, Error::DamagedBlob { .. }), "{error}");
            assert!(!f.store.contains(&f.layer.digest), "set aside");
            bytes[at] ^= 0x01;
            std::fs::write(&path, &bytes).expect("repair");
        }
    }

    #[test]
    fn a_reader_that_stops_early_leaves_the_blob_alone() {
        let f = fixture();
        let mut reader = f.store.open_layer(&f.layer).expect("open");
        let mut first = [0u8; 10];
        reader.read_exact(&mut first).expect("read");
        drop(reader);
        assert!(f.store.contains(&f.layer.digest));
        assert_eq!(f.store.checked_diff_id(&f.layer.digest), None);
    }
}

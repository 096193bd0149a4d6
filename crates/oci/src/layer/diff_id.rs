//! Checking a layer's `diff_id` while it downloads.
//!
//! The download task hands each compressed chunk to [`DiffIdChecker::feed`],
//! which queues it (bounded, so memory stays small and a slow decoder slows
//! the download instead of piling up bytes). Two threads then work in a
//! pipeline: one inflates, reading the queued chunks in place; the other
//! hashes what was inflated, in buffers that go back and forth between them.
//! So a layer costs about max(download, inflate, hash) in wall time, not the
//! sum, and the biggest layer, which finishes last, uses both cores.
//!
//! The expected digest is needed only at the end, so a layer can download
//! while its image's config is still on the way; hashing starts with the
//! algorithm the caller guesses (SHA-256 for configs not yet read), and a
//! `diff_id` of another algorithm is checked from the downloaded file.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use bytes::Bytes;

use crate::layer::{decoder, decoder_buffered};
use crate::media_type::Compression;
use crate::{Algorithm, Digest, Error, Hasher, Result};

/// Compressed chunks that may wait for the decoder.
const QUEUED_CHUNKS: usize = 64;
/// Size of each inflated buffer handed to the hashing thread.
const INFLATED_BUFFER: usize = 256 << 10;
/// Inflated buffers in flight between the two threads.
const INFLATED_BUFFERS: usize = 4;

/// Hashes the uncompressed content of a layer on threads of its own, fed
/// with the compressed bytes as they arrive.
#[derive(Debug)]
pub struct DiffIdChecker {
    sender: Option<tokio::sync::mpsc::Sender<Bytes>>,
    thread: Option<JoinHandle<std::io::Result<Digest>>>,
    layer: Digest,
    compression: Compression,
    algorithm: Algorithm,
}

impl DiffIdChecker {
    /// Starts hashing with `algorithm` what `layer`, compressed with
    /// `compression`, uncompresses to. `prefix` names a file whose first
    /// bytes (a download resumed from an earlier attempt) come before what is
    /// fed.
    pub fn start(
        layer: Digest,
        compression: Compression,
        algorithm: Algorithm,
        prefix: Option<(PathBuf, u64)>,
    ) -> Self {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_CHUNKS);
        let thread = std::thread::spawn(move || {
            let queued = QueuedChunks {
                receiver,
                current: Bytes::new(),
            };
            let inflated = match prefix {
                Some((path, length)) => decoder(
                    compression,
                    std::fs::File::open(path)?.take(length).chain(queued),
                ),
                None => decoder_buffered(compression, queued),
            }
            .map_err(std::io::Error::other)?;
            hash_in_pipeline(inflated, algorithm)
        });
        Self {
            sender: Some(sender),
            thread: Some(thread),
            layer,
            compression,
            algorithm,
        }
    }

    /// Feeds compressed bytes (waits, without blocking the runtime, while
    /// the decoder is far behind).
    pub async fn feed(&self, bytes: Bytes) {
        if let Some(sender) = &self.sender {
            // A send fails only when the thread ended early; `finish` reports why.
            let _ = sender.send(bytes).await;
        }
    }

    /// Waits for the end of the stream and checks that it uncompressed to
    /// `expected`. `whole` is the whole layer's file, read again only when
    /// `expected` uses another algorithm than the one hashed.
    pub fn finish(mut self, expected: &Digest, whole: &Path) -> Result<()> {
        drop(self.sender.take());
        let outcome = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(std::io::Error::other("the decompression thread panicked")),
        };
        let outcome = match outcome {
            Ok(_) if expected.algorithm() != self.algorithm => {
                inflated_digest(whole, self.compression, expected.algorithm())
            }
            other => other,
        };
        match outcome {
            Ok(actual) if &actual == expected => Ok(()),
            Ok(actual) => Err(Error::DiffIdMismatch {
                layer: self.layer.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            }),
            Err(e) => Err(Error::DiffIdMismatch {
                layer: self.layer.to_string(),
                expected: expected.to_string(),
                actual: format!("nothing: it does not decompress ({e})"),
            }),
        }
    }
}

impl Drop for DiffIdChecker {
    fn drop(&mut self) {
        drop(self.sender.take());
        // The threads end once the queue closes; no need to wait for them.
    }
}

/// The digest with `algorithm` of what the layer file at `path` uncompresses to.
fn inflated_digest(
    path: &Path,
    compression: Compression,
    algorithm: Algorithm,
) -> std::io::Result<Digest> {
    let file = std::io::BufReader::with_capacity(1 << 17, std::fs::File::open(path)?);
    let mut inflated = decoder_buffered(compression, file).map_err(std::io::Error::other)?;
    let mut hasher = Hasher::new(algorithm);
    std::io::copy(&mut inflated, &mut hasher)?;
    Ok(hasher.finish())
}

/// Reads `inflated` to its end on this thread while another thread hashes
/// it, then drains what follows the compressed stream (padding).
fn hash_in_pipeline(
    mut inflated: Box<dyn Read + Send>,
    algorithm: Algorithm,
) -> std::io::Result<Digest> {
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(INFLATED_BUFFERS);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(INFLATED_BUFFERS);
    for _ in 0..INFLATED_BUFFERS {
        // The channel has room for exactly these buffers.
        let _ = empty_tx.send(vec![0u8; INFLATED_BUFFER]);
    }
    let hasher = std::thread::spawn(move || {
        let mut hasher = Hasher::new(algorithm);
        while let Ok((buffer, filled)) = full_rx.recv() {
            hasher.update(&buffer[..filled]);
            // The inflating side may have stopped; then nobody needs it back.
            let _ = empty_tx.send(buffer);
        }
        hasher.finish()
    });
    let mut read_error = None;
    while let Ok(mut buffer) = empty_rx.recv() {
        let filled = match fill(&mut inflated, &mut buffer) {
            Ok(n) => n,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        if filled == 0 || full_tx.send((buffer, filled)).is_err() {
            break;
        }
    }
    drop(full_tx);
    let digest = hasher
        .join()
        .map_err(|_| std::io::Error::other("the hashing thread panicked"))?;
    if let Some(e) = read_error {
        return Err(e);
    }
    let _ = std::io::copy(&mut inflated, &mut std::io::sink());
    Ok(digest)
}

/// Reads until `buffer` is full or the stream ends; returns how much it read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The compressed chunks queued by [`DiffIdChecker::feed`], read in place.
struct QueuedChunks {
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for QueuedChunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for QueuedChunks {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(next) => self.current = next,
                None => break,
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.current.len());
        self.current = self.current.slice(amount..);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tests::gzip;

    async fn check(compressed: &[u8], expected: Digest) -> Result<()> {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), compressed).expect("write");
        let checker = DiffIdChecker::start(
            Digest::sha256(compressed),
            Compression::Gzip,
            Algorithm::Sha256,
            None,
        );
        for chunk in compressed.chunks(1000) {
            checker.feed(Bytes::copy_from_slice(chunk)).await;
        }
        tokio::task::spawn_blocking(move || checker.finish(&expected, file.path()))
            .await
            .expect("join")
    }

    #[tokio::test]
    async fn accepts_a_layer_whose_content_matches_and_refuses_one_that_does_not() {
        // Several inflated buffers' worth, so the pipeline turns over.
        let content: Vec<u8> = (0..1_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let compressed = gzip(&content);
        check(&compressed, Digest::sha256(&content))
            .await
            .expect("matches");
        let error = check(&compressed, Digest::sha256(b"other"))
            .await
            .expect_err("mismatch");
        assert!(matches!(error, Error::DiffIdMismatch { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_diff_id_of_another_algorithm_is_checked_from_the_file() {
        let content = b"layer content".repeat(1000);
        let compressed = gzip(&content);
        let mut sha512 = Hasher::new(Algorithm::Sha512);
        sha512.update(&content);
        check(&compressed, sha512.finish())
            .await
            .expect("matches with SHA-512");
        let mut other = Hasher::new(Algorithm::Sha512);
        other.update(b"other");
        check(&compressed, other.finish())
            .await
            .expect_err("mismatch with SHA-512");
    }

    #[tokio::test]
    async fn a_layer_that_does_not_decompress_is_named_as_such() {
        let error = check(b"not gzip at all", Digest::sha256(b""))
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("does not decompress"), "{error}");
    }
}

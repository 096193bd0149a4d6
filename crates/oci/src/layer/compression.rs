//! Layer streams: gzip (flate2 on zlib-rs), zstd and plain tar, and a
//! checker that hashes a layer's uncompressed bytes while it downloads.

use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;

use crate::media_type::Compression;
use crate::{Digest, Error, Hasher, Result};

/// Wraps `reader` (compressed bytes) in the decoder for `compression`.
pub fn decoder<'a, R: Read + Send + 'a>(
    compression: Compression,
    reader: R,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(1 << 16, reader),
        )),
        Compression::Zstd => {
            Box::new(
                zstd::stream::read::Decoder::new(reader).map_err(|e| Error::Io {
                    action: "start zstd decoding of",
                    path: "layer".into(),
                    source: e,
                })?,
            )
        }
    })
}

/// Guesses the compression from the first bytes (for archives whose layers
/// carry no media type, such as `docker save`).
pub fn sniff(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Hashes the uncompressed content of a layer on a thread of its own, fed
/// with the compressed bytes as they arrive.
#[derive(Debug)]
pub struct DiffIdChecker {
    sender: Option<tokio::sync::mpsc::Sender<Bytes>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<Digest>>>,
    layer: Digest,
    expected: Digest,
}

impl DiffIdChecker {
    /// Starts checking that `layer`, compressed with `compression`,
    /// uncompresses to `expected`. `prefix` names a file whose first bytes
    /// (a download resumed from an earlier attempt) come before what is fed.
    pub fn start(
        layer: Digest,
        compression: Compression,
        expected: Digest,
        prefix: Option<(PathBuf, u64)>,
    ) -> Self {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(64);
        let algorithm = expected.algorithm();
        let thread = std::thread::spawn(move || {
            let channel = ChannelReader {
                receiver,
                current: Bytes::new(),
            };
            let reader: Box<dyn Read + Send> = match prefix {
                Some((path, length)) => {
                    Box::new(std::fs::File::open(path)?.take(length).chain(channel))
                }
                None => Box::new(channel),
            };
            let mut hasher = Hasher::new(algorithm);
            let mut decoded = decoder(compression, reader).map_err(std::io::Error::other)?;
            std::io::copy(&mut decoded, &mut hasher)?;
            // Drain what follows the compressed stream (padding).
            let mut rest = decoded;
            let _ = std::io::copy(&mut rest, &mut std::io::sink());
            Ok(hasher.finish())
        });
        Self {
            sender: Some(sender),
            thread: Some(thread),
            layer,
            expected,
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

    /// Waits for the end of the stream and compares the digests.
    pub fn finish(mut self) -> Result<()> {
        drop(self.sender.take());
        let outcome = match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(std::io::Error::other("the decompression thread panicked")),
        };
        match outcome {
            Ok(actual) if actual == self.expected => Ok(()),
            Ok(actual) => Err(Error::DiffIdMismatch {
                layer: self.layer.to_string(),
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            }),
            Err(e) => Err(Error::DiffIdMismatch {
                layer: self.layer.to_string(),
                expected: self.expected.to_string(),
                actual: format!("nothing: it does not decompress ({e})"),
            }),
        }
    }
}

impl Drop for DiffIdChecker {
    fn drop(&mut self) {
        drop(self.sender.take());
        // The thread ends once its channel closes; no need to wait for it.
    }
}

struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(next) => self.current = next,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

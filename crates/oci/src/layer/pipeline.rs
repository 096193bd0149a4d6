//! Decompression on a thread of its own, so that unpacking a layer overlaps
//! with inflating it (and the next layer starts inflating while this one is
//! written). The thread also hashes the uncompressed bytes for the `diff_id`
//! check. Memory stays bounded: at most [`DEPTH`] chunks wait in the channel.

use std::fs::File;
use std::io::Read;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::layer::decoder;
use crate::media_type::Compression;
use crate::{Algorithm, Digest, Hasher};

/// Size of each chunk handed over.
const CHUNK: usize = 256 << 10;
/// Chunks that may wait in the channel.
const DEPTH: usize = 16;

/// The uncompressed stream of one layer, inflated by a background thread.
pub(crate) struct DecodedStream {
    receiver: Option<mpsc::Receiver<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
    thread: Option<JoinHandle<std::io::Result<Option<Digest>>>>,
    /// What the thread returned, once it has ended.
    outcome: Option<std::io::Result<Option<Digest>>>,
}

impl DecodedStream {
    /// Starts inflating `file`; hashes the output with `algorithm` if given.
    pub(crate) fn start(
        file: File,
        compression: Compression,
        algorithm: Option<Algorithm>,
    ) -> Self {
        let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let thread = std::thread::spawn(move || {
            let mut reader = decoder(
                compression,
                std::io::BufReader::with_capacity(1 << 17, file),
            )
            .map_err(std::io::Error::other)?;
            let mut hasher = algorithm.map(Hasher::new);
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let mut filled = 0;
                while filled < CHUNK {
                    match reader.read(&mut chunk[filled..])? {
                        0 => break,
                        n => filled += n,
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
                    // The reader gave up (an error while unpacking).
                    return Ok(None);
                }
                if filled < CHUNK {
                    break;
                }
            }
            Ok(hasher.map(Hasher::finish))
        });
        Self {
            receiver: Some(receiver),
            current: Vec::new(),
            position: 0,
            thread: Some(thread),
            outcome: None,
        }
    }

    /// Reads to the end (the tar reader may stop before the zero padding)
    /// and returns the digest of everything inflated, if one was asked for.
    pub(crate) fn finish(mut self) -> std::io::Result<Option<Digest>> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        self.join();
        self.outcome.take().unwrap_or(Ok(None))
    }

    /// Waits for the thread (its channel closed) and keeps what it returned.
    fn join(&mut self) {
        self.receiver = None;
        if let Some(thread) = self.thread.take() {
            self.outcome = Some(match thread.join() {
                Ok(result) => result,
                Err(_) => Err(std::io::Error::other("the decompression thread panicked")),
            });
        }
    }
}

impl Read for DecodedStream {
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
                    if let Some(Err(e)) = &self.outcome {
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

//! Docker's detach keys (`ctrl-p ctrl-q`): typed into an attached
//! terminal, they leave the container running and end the attachment. The
//! keys themselves never reach the container; a `ctrl-p` not followed by
//! `ctrl-q` does, late by one read.

/// `ctrl-p`, then `ctrl-q`.
const KEYS: [u8; 2] = [0x10, 0x11];

/// Watches a terminal's input for the detach keys.
#[derive(Debug, Default, Clone)]
pub struct DetachKeys {
    /// How many of the keys the last read ended with.
    matched: usize,
}

impl DetachKeys {
    /// The bytes of `chunk` to pass on, and whether the keys were typed
    /// (then nothing after them is passed on).
    pub fn scan(&mut self, chunk: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(chunk.len() + self.matched);
        for &byte in chunk {
            if byte == KEYS[self.matched] {
                self.matched += 1;
                if self.matched == KEYS.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // A partial match that went no further is passed on.
            out.extend_from_slice(&KEYS[..self.matched]);
            self.matched = 0;
            if byte == KEYS[0] {
                self.matched = 1;
            } else {
                out.push(byte);
            }
        }
        (out, false)
    }
}

/// Copies `input` to `output` until `input` ends (then `output` is shut
/// down: the end of the process's input) or, when `keys` is set (a
/// terminal), the detach keys are typed: then returns true with `output`
/// still open, for its owner to drop (a detach, not an end of input).
pub async fn copy_until_detached(
    mut input: impl tokio::io::AsyncRead + Unpin,
    mut output: impl tokio::io::AsyncWrite + Unpin,
    keys: bool,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut watch = DetachKeys::default();
    let mut buffer = vec![0u8; 8192];
    loop {
        let n = match input.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (passed, detached) = match keys {
            true => watch.scan(&buffer[..n]),
            false => (buffer[..n].to_vec(), false),
        };
        if output.write_all(&passed).await.is_err() {
            break;
        }
        if detached {
            return true;
        }
    }
    let _ = output.shutdown().await;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_detach_and_other_bytes_pass() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.scan(b"ls\n"), (b"ls\n".to_vec(), false));
        assert_eq!(keys.scan(b"a\x10\x11b"), (b"a".to_vec(), true));
        let mut split = DetachKeys::default();
        assert_eq!(split.scan(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(split.scan(b"\x11"), (Vec::new(), true));
        let mut alone = DetachKeys::default();
        assert_eq!(alone.scan(b"\x10"), (Vec::new(), false));
        assert_eq!(alone.scan(b"y"), (b"\x10y".to_vec(), false));
        assert_eq!(alone.scan(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
    }
}

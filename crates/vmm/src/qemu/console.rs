//! The serial console's file, kept under a size cap.
//!
//! QEMU appends the guest's console to a file in the VM's run folder, which
//! lies in RAM (`/run`); a guest that writes without end would grow it
//! without end. So a watcher thread of the VM's owner looks at its size a
//! few times a second and, past its cap (`VmConfig::console_max_bytes`),
//! cuts out the middle, as Docker's `json-file` driver bounds a log with
//! `max-size`: the first quarter of the cap stays (the boot, which start
//! errors quote), then a line saying how much was cut, then the last half
//! of the cap (what a panic or a stop leaves, which `console_tail` reads).
//!
//! QEMU opens the file with `O_APPEND` (`append=on`), so after a cut its next
//! write lands at the new end; the guest never waits on the watcher. Bytes
//! the guest writes during the cut itself (microseconds) may be lost or land
//! just before the kept tail. Between two looks the file can outgrow the cap
//! by what the guest writes in [`INTERVAL`].

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How often the file's size is looked at.
const INTERVAL: Duration = Duration::from_millis(100);

/// Keeps a console file under its cap while it lives; dropping it stops
/// the watcher.
#[derive(Debug)]
pub(crate) struct ConsoleCap {
    _stop: mpsc::Sender<()>,
}

impl ConsoleCap {
    /// Starts watching `path` (a watcher that cannot start is logged; the
    /// VM runs on without the cap).
    pub(crate) fn watch(path: PathBuf, max_bytes: u64) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("console-cap".to_owned())
            .spawn(move || {
                let mut warned = false;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    match cut(&path, max_bytes) {
                        Ok(_) => warned = false,
                        // Moved away (a template's folder renamed): nothing to cap.
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                        Err(err) if !warned => {
                            warned = true;
                            tracing::warn!("cannot cap the console log {}: {err}", path.display());
                        }
                        Err(_) => {}
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::warn!("the console log is not capped: no thread: {err}");
        }
        Self { _stop: stop }
    }
}

/// Cuts the middle out of `path` when it is over `max_bytes`, keeping the
/// first quarter and the last half; returns whether it did.
pub(crate) fn cut(path: &Path, max_bytes: u64) -> std::io::Result<bool> {
    let head_bytes = max_bytes / 4;
    let tail_bytes = max_bytes / 2;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let size = file.metadata()?.len();
    if size <= max_bytes {
        return Ok(false);
    }
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(size - tail_bytes))?;
    (&file).take(tail_bytes).read_to_end(&mut tail)?;
    // Start the kept tail on a whole line when there is one.
    let skip = tail
        .iter()
        .position(|b| *b == b'\n')
        .filter(|at| *at < tail.len() / 2)
        .map_or(0, |at| at + 1);
    let cut = size - head_bytes - (tail.len() - skip) as u64;
    let mut rest = format!("\n[... {cut} bytes of console output cut ...]\n").into_bytes();
    rest.extend_from_slice(&tail[skip..]);
    file.set_len(head_bytes)?;
    // Appended, as QEMU writes: its writes since the truncation stay whole.
    let mut append = std::fs::OpenOptions::new().append(true).open(path)?;
    append.write_all(&rest)?;
    Ok(true)
}

/// `path` as one value of a QEMU option (commas doubled).
pub(crate) fn option_value(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_cap_keeps_its_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut text = String::new();
        let mut n = 0;
        let max = 64 * 1024;
        while (text.len() as u64) < 3 * max {
            text.push_str(&format!("line {n}\n"));
            n += 1;
        }
        std::fs::write(&path, &text).unwrap();
        assert!(cut(&path, max).unwrap());
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.len() as u64 <= max, "{}", after.len());
        assert!(after.starts_with("line 0\nline 1\n"));
        assert!(after.ends_with(&format!("line {}\n", n - 1)));
        assert!(after.contains("bytes of console output cut ...]\nline "));
        assert!(!cut(&path, max).unwrap(), "under the cap, left alone");
    }

    #[test]
    fn commas_in_a_path_are_doubled() {
        assert_eq!(option_value(Path::new("/run/a,b")), "/run/a,,b");
    }
}

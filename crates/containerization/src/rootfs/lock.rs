//! An exclusive lock held while one base image is built, so that processes
//! asking for the same image build it once: the others wait, then find it.
//!
//! The lock is `flock(2)` on a small file beside the image. The holder
//! removes the file before it lets go, so the folder keeps only images; a
//! waiter that wakes up holding a removed file starts over with the file
//! now at the path. Only the holder ever removes the path, so two processes
//! never hold "the" lock at once.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::Error;

/// A held build lock; dropping it removes the lock file and unlocks.
#[derive(Debug)]
pub(crate) struct BuildLock {
    path: PathBuf,
    /// Keeps the `flock` until dropped.
    _file: File,
}

impl BuildLock {
    /// Waits for the lock at `path`, creating the file if needed.
    pub(crate) fn acquire(path: &Path) -> Result<Self, Error> {
        let io_error = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(io_error)?;
            loop {
                match rustix::fs::flock(&file, FlockOperation::LockExclusive) {
                    Ok(()) => break,
                    Err(Errno::INTR) => continue,
                    Err(errno) => return Err(io_error(errno.into())),
                }
            }
            let held = file.metadata().map_err(io_error)?;
            match std::fs::metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Self {
                        path: path.to_path_buf(),
                        _file: file,
                    });
                }
                // The previous holder removed the file while this process
                // waited on it: lock the one at the path now.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(e)),
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a build lock");
        }
    }
}

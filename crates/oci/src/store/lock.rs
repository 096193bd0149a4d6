//! Advisory file locks (`flock`) that keep several processes from corrupting
//! the store: one for `index.json`, one that garbage collection takes
//! exclusively and every writer takes shared, and one per blob being ingested.

use std::fs::File;
use std::path::Path;

use rustix::fs::FlockOperation;

use crate::Result;
use crate::error::IoContext;

/// A held lock; released when dropped (the file closes).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits for an exclusive lock on `path`, creating the file.
    pub fn exclusive(path: &Path) -> Result<Self> {
        Self::take(path, FlockOperation::LockExclusive)
    }

    /// An exclusive lock on `path` if no one holds it now, creating the file.
    pub fn try_exclusive(path: &Path) -> Result<Option<Self>> {
        let file = open_lock_file(path)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(errno) => Err(errno).at("lock", path),
        }
    }

    /// Waits for a shared lock on `path`, creating the file.
    pub fn shared(path: &Path) -> Result<Self> {
        Self::take(path, FlockOperation::LockShared)
    }

    fn take(path: &Path, operation: FlockOperation) -> Result<Self> {
        let file = open_lock_file(path)?;
        rustix::fs::flock(&file, operation).at("lock", path)?;
        Ok(Self { _file: file })
    }
}

/// Opens (creating) a lock file.
pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at("open", path)
}

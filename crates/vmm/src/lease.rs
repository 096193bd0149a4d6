//! Numbered leases shared by every process on the host: an exclusive
//! `flock` on `<dir>/<number>.lock`, held as long as the lease lives (or a
//! process that inherited its descriptor does), so concurrent VMs, even of
//! different processes, never get the same number. Guest CIDs and QEMU's
//! unprivileged uids are handed out this way.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use crate::VmmError;
use crate::error::io_at;

/// An exclusive claim on one number of a range.
#[derive(Debug)]
pub(crate) struct NumberLease {
    number: u32,
    lock: File,
}

impl NumberLease {
    /// Claims the lowest free number of `range` in `dir` (made 0700 when
    /// missing); `what` names the numbers in the error when all are taken.
    pub(crate) fn acquire(dir: &Path, range: Range<u32>, what: &str) -> Result<Self, VmmError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_at(dir))?;
        for number in range {
            let path = dir.join(format!("{number}.lock"));
            let lock = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io_at(&path))?;
            match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Self { number, lock }),
                Err(rustix::io::Errno::WOULDBLOCK) => continue,
                Err(err) => return Err(io_at(&path)(err.into())),
            }
        }
        Err(VmmError::InvalidConfig {
            message: format!("no free {what}: every lock in {} is held", dir.display()),
        })
    }

    /// The claimed number.
    pub(crate) fn number(&self) -> u32 {
        self.number
    }

    /// The lock's descriptor: a process that inherits it holds the lease
    /// as long as it keeps it open.
    pub(crate) fn lock(&self) -> &File {
        &self.lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_leases_get_distinct_numbers_and_reuse_freed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = NumberLease::acquire(dir.path(), 10..12, "slot").unwrap();
        let b = NumberLease::acquire(dir.path(), 10..12, "slot").unwrap();
        assert_eq!((a.number(), b.number()), (10, 11));
        let full = NumberLease::acquire(dir.path(), 10..12, "slot").unwrap_err();
        assert!(full.to_string().contains("no free slot"), "{full}");
        drop(a);
        let c = NumberLease::acquire(dir.path(), 10..12, "slot").unwrap();
        assert_eq!(c.number(), 10, "a freed number is handed out again");
    }
}

//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong packing or unpacking inside a root.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The path is not there (inside the root).
    #[error("{0}: no such file or directory")]
    NotFound(PathBuf),
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("create", "read", …).
        action: &'static str,
        /// The path inside the root.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The archive itself cannot be read or written.
    #[error("the archive is unreadable or cut short: {0}")]
    Stream(#[source] std::io::Error),
    /// An entry names a place it may not go (`..`, outside the rebased
    /// folder), or is of a kind that cannot be made there.
    #[error("archive entry {entry}: {detail}")]
    Refused {
        /// The entry's name as the archive gives it.
        entry: String,
        /// Why it is refused.
        detail: String,
    },
    /// An entry would replace a directory with a non-directory, or the
    /// reverse (Docker refuses both).
    #[error("cannot overwrite {existing} {path} with {new}")]
    Overwrite {
        /// The path inside the root.
        path: PathBuf,
        /// What is there ("directory", "non-directory").
        existing: &'static str,
        /// What the archive has.
        new: &'static str,
    },
    /// A tree deeper than [`crate::MAX_DEPTH`] directories.
    #[error("{0} is nested too deeply to archive")]
    TooDeep(PathBuf),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, ArchiveError>;

/// Adds the action and path to an I/O error.
pub(crate) trait At<T> {
    /// The error as [`ArchiveError::Io`] (or [`ArchiveError::NotFound`]).
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> At<T> for std::result::Result<T, rustix::io::Errno> {
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|errno| io_error(action, path, errno.into()))
    }
}

impl<T> At<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| io_error(action, path, source))
    }
}

fn io_error(action: &'static str, path: &std::path::Path, source: std::io::Error) -> ArchiveError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ArchiveError::NotFound(path.to_path_buf())
    } else {
        ArchiveError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

//! The one error type of the test kit.

use std::path::PathBuf;

/// A test kit result.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while preparing a test peer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program the kit needs is not installed.
    #[error("{program} is not installed ({source}); run scripts/setup")]
    MissingProgram {
        /// The program's name.
        program: String,
        /// The error from starting it.
        #[source]
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        /// The command line, as a shell would show it.
        command: String,
        /// How it ended.
        status: String,
        /// The end of what it printed.
        output: String,
    },
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A peer did not become ready in time.
    #[error("{what} was not ready after {seconds} s: {detail}")]
    NotReady {
        /// The peer.
        what: String,
        /// How long the kit waited.
        seconds: u64,
        /// What the peer said, such as the end of its log.
        detail: String,
    },
    /// An HTTP request to a peer failed.
    #[error("HTTP request to {url} failed: {source}")]
    Http {
        /// The request's address.
        url: String,
        /// Why it failed.
        #[source]
        source: reqwest::Error,
    },
    /// A peer answered something the kit did not expect.
    #[error("{0}")]
    Unexpected(String),
    /// Generating the test CA or a certificate failed.
    #[error("cannot generate a test certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Something `scripts/setup` provides is missing.
    #[error("{what} is missing at {path}; run scripts/setup")]
    NotSetUp {
        /// What is missing.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
}

/// Attaches the action and path to an I/O error.
pub(crate) trait IoContext<T> {
    /// Converts the error into [`Error::Io`].
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.into(),
            source,
        })
    }
}

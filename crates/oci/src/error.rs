//! The crate's one error type: every variant says what went wrong in words a
//! user can act on, and names the image, blob, host or path involved.

use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with references, stores, registries and layers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A string that is not a valid digest.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// What was given.
        input: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A string that is not a valid image reference.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference {
        /// What was given.
        input: String,
        /// Why it is refused.
        reason: String,
    },
    /// A string that is not a valid platform.
    #[error("invalid platform {input:?}: expected os/arch[/variant], such as linux/arm64/v8")]
    InvalidPlatform {
        /// What was given.
        input: String,
    },
    /// A blob whose bytes do not hash to its digest.
    #[error("blob {expected} has the wrong content: its bytes hash to {actual}")]
    DigestMismatch {
        /// The digest the descriptor promised.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A stored blob whose bytes no longer hash to its name: the disk or
    /// someone changed it after it was checked and stored.
    #[error(
        "the stored blob {digest} is damaged: its bytes hash to {actual}; it was set aside, \
         so pulling (or loading) the image again fetches it anew"
    )]
    DamagedBlob {
        /// The blob.
        digest: String,
        /// The digest of its bytes now.
        actual: String,
    },
    /// A blob whose length differs from its descriptor.
    #[error("blob {digest} is {actual} bytes long but its descriptor says {expected}")]
    SizeMismatch {
        /// The blob.
        digest: String,
        /// The size promised.
        expected: u64,
        /// The size received.
        actual: u64,
    },
    /// A layer whose uncompressed content does not match the config's `diff_ids`.
    #[error("layer {layer} uncompresses to {actual}, but the image config expects {expected}")]
    DiffIdMismatch {
        /// The compressed layer's digest.
        layer: String,
        /// The diff id from the config.
        expected: String,
        /// The digest of the uncompressed bytes.
        actual: String,
    },
    /// A stored layer whose bytes are right but do not decompress.
    #[error("layer {layer} cannot be read: {reason}")]
    LayerUnreadable {
        /// The compressed layer's digest.
        layer: String,
        /// What went wrong.
        reason: String,
    },
    /// A media type this crate does not handle in this place.
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
        /// What it was found on.
        what: String,
    },
    /// A manifest, index or config that is not valid JSON of its kind.
    #[error("{what} is not a valid {kind}: {reason}")]
    InvalidDocument {
        /// Which document (a digest or reference).
        what: String,
        /// What it should have been.
        kind: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// No manifest in an index for the platform asked for.
    #[error("no {wanted} image in this index; it has {available}")]
    PlatformNotFound {
        /// The platform asked for.
        wanted: String,
        /// The platforms the index lists, comma-separated.
        available: String,
    },
    /// The registry refused the credentials, or wants some.
    #[error("unauthorized: login to {host} failed: {reason}")]
    Unauthorized {
        /// The registry.
        host: String,
        /// Why, such as "wrong user name or password".
        reason: String,
    },
    /// The registry does not know this tag or digest.
    #[error("manifest unknown: no {what} in {repository}")]
    ManifestUnknown {
        /// "tag 'x'" or "manifest sha256:…".
        what: String,
        /// `host/repository`.
        repository: String,
    },
    /// The registry does not have a blob.
    #[error("blob unknown: {digest} is not in {repository}")]
    BlobUnknown {
        /// The blob.
        digest: String,
        /// `host/repository`.
        repository: String,
    },
    /// Any other error answer from a registry.
    #[error("{method} {url} answered {status}: {body}")]
    Registry {
        /// The HTTP method.
        method: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The network failed (after retries, where retrying made sense).
    #[error("cannot reach {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// Plain HTTP to a host that is neither loopback nor marked insecure.
    #[error("{host} does not speak HTTPS; mark it insecure (--insecure) to use plain HTTP")]
    InsecureRefused {
        /// The registry.
        host: String,
    },
    /// An image name the image store does not have.
    #[error("no image named {0} in the store")]
    ImageNotFound(String),
    /// A blob the content store does not have.
    #[error("blob {0} is not in the content store")]
    BlobNotFound(String),
    /// A layer entry that would write outside the unpack target.
    #[error("layer {layer}: entry {entry:?} {reason}; refusing to unpack it")]
    UnsafeLayerEntry {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the tar.
        entry: String,
        /// What makes it unsafe.
        reason: String,
    },
    /// A document larger than this crate reads whole ([`crate::limits`]).
    #[error("{what} is larger than {limit} bytes, the most read for it; refusing it")]
    TooLarge {
        /// What it is and where it came from.
        what: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A layer that would write more than the unpack may.
    #[error(
        "layer {layer}: entry {entry:?} would take the data written past {limit} bytes (the target's free space or the configured limit); refusing to unpack it"
    )]
    LayerTooLarge {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the tar.
        entry: String,
        /// The bytes that were still allowed.
        limit: u64,
    },
    /// A credential helper that failed.
    #[error("credential helper docker-credential-{helper} failed: {reason}")]
    CredentialHelper {
        /// The helper's name.
        helper: String,
        /// Its output or exit status.
        reason: String,
    },
    /// An archive (`save`/`load`) that is neither an OCI layout nor a `docker save`.
    #[error("{path}: {reason}")]
    InvalidArchive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file system operation that failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("create", "read", …).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
}

/// Attaches an action and a path to I/O errors.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`Error::Io`].
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

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            action,
            path: path.into(),
            source: e.into(),
        })
    }
}

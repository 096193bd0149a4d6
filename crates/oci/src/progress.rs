//! Per-blob progress events for pull and push; the CLI draws them.

use std::sync::Arc;

use crate::Digest;

/// One step in moving one blob.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// A transfer starts; `offset` is non-zero when it resumes.
    Started {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// Bytes already there.
        offset: u64,
    },
    /// Bytes moved: `done` of the blob's size so far.
    Advanced {
        /// The blob.
        digest: Digest,
        /// Bytes done.
        done: u64,
    },
    /// The blob was already where it needed to be (in the store, in the
    /// registry, or mounted from another repository).
    Skipped {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// Why: "exists", "mounted".
        why: &'static str,
    },
    /// The blob is done and verified.
    Finished {
        /// The blob.
        digest: Digest,
    },
}

/// Where progress events go.
pub type ProgressSink = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

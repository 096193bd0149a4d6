//! How a [`crate::registry::RegistryClient`] behaves: trust, credentials,
//! concurrency, retries, upload sizes, checks and progress.

use std::time::Duration;

use crate::progress::ProgressSink;
use crate::registry::credentials::CredentialStore;

/// How the client behaves.
#[derive(Clone)]
pub struct ClientConfig {
    /// Hosts (`host[:port]`) the user marked insecure, as Docker's insecure
    /// registries: they may be reached over plain HTTP, and their TLS
    /// certificates are not verified.
    pub insecure_hosts: Vec<String>,
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub extra_ca_pems: Vec<Vec<u8>>,
    /// Where credentials come from.
    pub credentials: CredentialStore,
    /// Blobs moved at the same time (default 4).
    pub concurrency: usize,
    /// Attempts per request before giving up (default 5).
    pub max_attempts: u32,
    /// The first retry delay; it doubles each time (default 200 ms).
    pub retry_delay: Duration,
    /// Blobs up to this size are uploaded in one PUT (default 16 MiB).
    pub monolithic_limit: u64,
    /// The size of each PATCH of a chunked upload (default 16 MiB).
    pub chunk_size: usize,
    /// Whether pull also decompresses each layer to check it against the
    /// config's `diff_ids` (default false). The compressed digest and size
    /// are always checked as the bytes stream in; `diff_ids` are checked by
    /// whatever decompresses a layer first anyway ([`crate::layer::CheckedLayer`]:
    /// a root file system build, an unpack), as containerd does, so a pull
    /// costs no CPU on decompression. Turn this on to learn of a wrong
    /// `diff_id` at pull time.
    pub verify_diff_ids: bool,
    /// Where per-blob progress goes.
    pub progress: Option<ProgressSink>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("insecure_hosts", &self.insecure_hosts)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            insecure_hosts: Vec::new(),
            extra_ca_pems: Vec::new(),
            credentials: CredentialStore::none(),
            concurrency: 4,
            max_attempts: 5,
            retry_delay: Duration::from_millis(200),
            monolithic_limit: 16 << 20,
            chunk_size: 16 << 20,
            verify_diff_ids: false,
            progress: None,
        }
    }
}

//! Downloading one blob into the content store: streamed, digest-checked,
//! resumed with `Range` after a broken connection, and (for layers) checked
//! against the config's `diff_ids` on a decompression thread as it arrives.

use std::sync::Arc;

use futures::StreamExt;
use oci_spec::image::Descriptor;
use reqwest::header::RANGE;
use reqwest::{Method, StatusCode};

use crate::layer::DiffIdChecker;
use crate::manifest::descriptor_digest;
use crate::media_type::{self, Kind};
use crate::progress::ProgressEvent;
use crate::registry::client::{RegistryClient, header, status_error};
use crate::registry::pull::target;
use crate::store::{ImageStore, Ingest, IngestStart};
use crate::{Algorithm, Digest, Error, Reference, Result};

/// The `diff_id` a layer must have: known, or coming with its image's config.
pub(crate) enum ExpectedDiffId {
    /// Known before the download starts.
    Known(Digest),
    /// The `index`-th of the config's `diff_ids`, sent once the config has
    /// arrived (the layer downloads meanwhile).
    FromConfig {
        /// Where the config's `diff_ids` come.
        diff_ids: tokio::sync::watch::Receiver<Option<Arc<Vec<Digest>>>>,
        /// This layer's place in the manifest.
        index: usize,
    },
}

impl ExpectedDiffId {
    /// The algorithm to hash with before the digest is known.
    fn algorithm(&self) -> Algorithm {
        match self {
            Self::Known(d) => d.algorithm(),
            Self::FromConfig { .. } => Algorithm::Sha256,
        }
    }

    /// The digest, waiting for the config if need be.
    async fn get(self, layer: &Digest) -> Result<Digest> {
        match self {
            Self::Known(d) => Ok(d),
            Self::FromConfig {
                mut diff_ids,
                index,
            } => {
                let unknown = |reason: &str| Error::InvalidDocument {
                    what: layer.to_string(),
                    kind: "layer",
                    reason: reason.to_owned(),
                };
                let all = diff_ids
                    .wait_for(Option::is_some)
                    .await
                    .map_err(|_| unknown("its image config never arrived"))?
                    .clone();
                all.and_then(|all| all.get(index).cloned())
                    .ok_or_else(|| unknown("the image config has no diff_id for it"))
            }
        }
    }
}

impl RegistryClient {
    /// Streams one blob into the content store, resuming with `Range` after a
    /// dropped connection, and checking its uncompressed digest when given.
    pub async fn fetch_blob(
        &self,
        store: &ImageStore,
        reference: &Reference,
        descriptor: &Descriptor,
        diff_id: Option<Digest>,
    ) -> Result<()> {
        self.fetch_blob_checked(
            store,
            reference,
            descriptor,
            diff_id.map(ExpectedDiffId::Known),
        )
        .await
    }

    /// [`RegistryClient::fetch_blob`], with a `diff_id` that may come later.
    pub(crate) async fn fetch_blob_checked(
        &self,
        store: &ImageStore,
        reference: &Reference,
        descriptor: &Descriptor,
        diff_id: Option<ExpectedDiffId>,
    ) -> Result<()> {
        let digest = descriptor_digest(descriptor)?;
        let size = descriptor.size();
        let content = store.content().clone();
        let start = {
            let digest = digest.clone();
            tokio::task::spawn_blocking(move || content.begin_ingest(&digest, size))
                .await
                .map_err(|e| Error::Io {
                    action: "wait for",
                    path: "the ingest lock".into(),
                    source: std::io::Error::other(e),
                })??
        };
        let mut ingest = match start {
            IngestStart::Present => {
                note_source(store, reference, &digest);
                self.emit(ProgressEvent::Skipped {
                    digest,
                    size,
                    why: "exists",
                });
                return Ok(());
            }
            IngestStart::Writer(w) => w,
        };
        let compression = match media_type::kind(descriptor.media_type().as_ref()) {
            Kind::Layer(c) => Some(c),
            _ => None,
        };
        let diff_id = diff_id.filter(|_| self.config.verify_diff_ids);
        let algorithm = diff_id.as_ref().map(ExpectedDiffId::algorithm);
        let new_checker = |ingest: &crate::store::Ingest| -> Result<Option<DiffIdChecker>> {
            let (Some(c), Some(algorithm)) = (compression, algorithm) else {
                return Ok(None);
            };
            let prefix =
                (ingest.offset() > 0).then(|| (ingest.path().to_path_buf(), ingest.offset()));
            Ok(Some(DiffIdChecker::start(
                digest.clone(),
                c,
                algorithm,
                prefix,
            )))
        };
        let mut checker = new_checker(&ingest)?;
        self.emit(ProgressEvent::Started {
            digest: digest.clone(),
            size,
            offset: ingest.offset(),
        });
        let downloaded = self
            .download(
                reference,
                &digest,
                size,
                &mut ingest,
                &mut checker,
                &new_checker,
            )
            .await;
        // On an error, bytes already here stay for the next attempt to resume
        // from (dropping an empty ingest removes its file).
        downloaded?;
        if let Err(e) = ingest.check() {
            ingest.discard();
            return Err(e);
        }
        if let (Some(checker), Some(expected)) = (checker, diff_id) {
            let expected = expected.get(&digest).await?;
            let whole = ingest.path().to_path_buf();
            let checked = tokio::task::spawn_blocking(move || checker.finish(&expected, &whole))
                .await
                .unwrap_or_else(|e| {
                    Err(Error::Io {
                        action: "wait for",
                        path: "the decompression check".into(),
                        source: std::io::Error::other(e),
                    })
                });
            if let Err(e) = checked {
                ingest.discard();
                return Err(e);
            }
        }
        tokio::task::spawn_blocking(move || ingest.commit())
            .await
            .map_err(|e| Error::Io {
                action: "wait for",
                path: "the blob commit".into(),
                source: std::io::Error::other(e),
            })??;
        note_source(store, reference, &digest);
        self.emit(ProgressEvent::Finished { digest });
        Ok(())
    }

    /// Downloads what `ingest` lacks of blob `digest`, resuming with `Range`
    /// after a dropped connection; `checker` sees every byte.
    async fn download(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        ingest: &mut Ingest,
        checker: &mut Option<DiffIdChecker>,
        new_checker: &(dyn Fn(&Ingest) -> Result<Option<DiffIdChecker>> + Sync),
    ) -> Result<()> {
        let base = self.base(reference.api_host()).await?;
        let url = format!("{base}/v2/{}/blobs/{digest}", reference.repository());
        let target = target(reference, "pull");
        let mut attempt = 0u32;
        loop {
            let offset = ingest.offset();
            if offset == size {
                break;
            }
            let headers = if offset > 0 {
                header(RANGE, &format!("bytes={offset}-"))
            } else {
                reqwest::header::HeaderMap::new()
            };
            let response = self
                .request(&target, Method::GET, &url, headers, None)
                .await?;
            match response.status() {
                StatusCode::OK if offset > 0 => {
                    // No range support: start over.
                    ingest.reset()?;
                    *checker = new_checker(ingest)?;
                }
                StatusCode::OK | StatusCode::PARTIAL_CONTENT => {}
                StatusCode::NOT_FOUND => {
                    return Err(Error::BlobUnknown {
                        digest: digest.to_string(),
                        repository: reference.name(),
                    });
                }
                _ => return Err(status_error("GET", &url, response).await),
            }
            let mut body = response.bytes_stream();
            let mut broken = None;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(chunk) => {
                        if let Err(e) = ingest.write(&chunk) {
                            // Wrong bytes are no start for a resume.
                            let _ = ingest.reset();
                            return Err(e);
                        }
                        if let Some(c) = checker.as_ref() {
                            c.feed(chunk).await;
                        }
                        self.emit(ProgressEvent::Advanced {
                            digest: digest.clone(),
                            done: ingest.offset(),
                        });
                    }
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
            }
            match broken {
                None if ingest.offset() == size => break,
                None => {
                    return Err(Error::SizeMismatch {
                        digest: digest.to_string(),
                        expected: size,
                        actual: ingest.offset(),
                    });
                }
                // Any error inside a body stream is the connection failing.
                Some(e) if attempt + 1 < self.config.max_attempts => {
                    tracing::debug!(%digest, offset = ingest.offset(), "download broke, resuming: {e}");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Some(source) => return Err(Error::Http { url, source }),
            }
        }
        Ok(())
    }
}

/// Records that `reference`'s repository holds `digest`, so that a push to
/// another repository of its registry can mount the blob from there. Only a
/// hint for later: failing to record it does not fail the transfer.
pub(crate) fn note_source(store: &ImageStore, reference: &Reference, digest: &Digest) {
    if let Err(e) =
        store
            .content()
            .record_source(digest, reference.registry(), reference.repository())
    {
        tracing::warn!(%digest, "cannot record where the blob is: {e}");
    }
}

//! Downloading one blob into the content store: streamed, digest-checked,
//! resumed with `Range` after a broken connection, and (for layers) checked
//! against the config's `diff_ids` on a decompression thread as it arrives.

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
use crate::{Digest, Error, Reference, Result};

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
        let new_checker = |ingest: &crate::store::Ingest| -> Result<Option<DiffIdChecker>> {
            let (Some(c), Some(expected), true) =
                (compression, diff_id.clone(), self.config.verify_diff_ids)
            else {
                return Ok(None);
            };
            let prefix =
                (ingest.offset() > 0).then(|| (ingest.path().to_path_buf(), ingest.offset()));
            Ok(Some(DiffIdChecker::start(
                digest.clone(),
                c,
                expected,
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
        if let Some(checker) = checker
            && let Err(e) = tokio::task::spawn_blocking(move || checker.finish())
                .await
                .unwrap_or_else(|e| {
                    Err(Error::Io {
                        action: "wait for",
                        path: "the decompression check".into(),
                        source: std::io::Error::other(e),
                    })
                })
        {
            ingest.discard();
            return Err(e);
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

//! Chunked blob upload: `PATCH`es with `Content-Range`, resumed after a
//! failure from what the registry says it has.
//!
//! When a `PATCH` fails (the connection broke, or the registry refuses the
//! range because part of a broken chunk reached it), the client asks the
//! upload URL with `GET` how many bytes the registry holds (`Range: 0-<last>`)
//! and continues from there, rather than starting the blob over.
//!
//! docker-registry (distribution) signs the offset into the upload URL's
//! `_state`, and refuses every request, the status `GET` included, whose
//! `_state` no longer matches what it holds: once part of a broken chunk has
//! reached it, that session cannot go on. Then the client opens a new session
//! and sends the blob from the start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, RANGE};
use reqwest::{Method, StatusCode};

use crate::error::IoContext;
use crate::progress::ProgressEvent;
use crate::registry::client::{RegistryClient, Target, header, status_error};
use crate::registry::push::location_of;
use crate::{Digest, Error, Result};

/// An upload session on the registry.
pub(crate) struct UploadSession<'a> {
    /// The registry's base URL.
    pub base: &'a str,
    /// The upload URL; each answer may move it.
    pub location: String,
    /// Where a new session is opened (`POST`), if this one cannot go on.
    pub start_url: &'a str,
    /// The blob.
    pub digest: &'a Digest,
    /// Its size.
    pub size: u64,
}

impl RegistryClient {
    /// Sends `file` (the blob at `path`) in `PATCH`es of the configured chunk
    /// size and returns the upload URL to finish with `PUT`.
    pub(crate) async fn upload_chunks(
        &self,
        target: &Target,
        mut session: UploadSession<'_>,
        file: &mut File,
        path: &Path,
    ) -> Result<String> {
        let mut chunk = vec![0u8; self.config.chunk_size.max(1 << 16)];
        let mut sent = 0u64;
        let mut resumes = 0u32;
        while sent < session.size {
            let n = usize::try_from(session.size - sent)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            file.seek(SeekFrom::Start(sent)).at("seek", path)?;
            file.read_exact(&mut chunk[..n]).at("read", path)?;
            let mut headers = header(CONTENT_TYPE, "application/octet-stream");
            if let Ok(v) = HeaderValue::from_str(&format!("{}-{}", sent, sent + n as u64 - 1)) {
                headers.insert(CONTENT_RANGE, v);
            }
            let outcome = self
                .request(
                    target,
                    Method::PATCH,
                    &session.location,
                    headers,
                    Some(Bytes::copy_from_slice(&chunk[..n])),
                )
                .await;
            let failure = match outcome {
                Ok(response) if response.status() == StatusCode::ACCEPTED => {
                    session.location = location_of(session.base, &response, &session.location)?;
                    sent += n as u64;
                    self.emit(ProgressEvent::Advanced {
                        digest: session.digest.clone(),
                        done: sent,
                    });
                    continue;
                }
                // Refused range or offset (the registry holds other than we
                // think), or a server failing past the retries.
                Ok(response)
                    if response.status() == StatusCode::RANGE_NOT_SATISFIABLE
                        || response.status() == StatusCode::NOT_FOUND
                        || response.status().is_server_error() =>
                {
                    status_error("PATCH", &session.location, response).await
                }
                Ok(response) => {
                    return Err(status_error("PATCH", &session.location, response).await);
                }
                Err(e @ Error::Http { .. }) => e,
                Err(e) => return Err(e),
            };
            resumes += 1;
            if resumes >= self.config.max_attempts {
                return Err(failure);
            }
            tracing::debug!(digest = %session.digest, sent, "chunk failed, asking the registry where to resume: {failure}");
            match self.upload_status(target, &session).await {
                Ok((held, location)) => {
                    sent = held.min(session.size);
                    session.location = location;
                }
                Err(e) => {
                    tracing::debug!(digest = %session.digest, "the upload cannot go on ({e}); starting it over");
                    session.location = self.open_session(target, &session).await?;
                    sent = 0;
                }
            }
            self.emit(ProgressEvent::Advanced {
                digest: session.digest.clone(),
                done: sent,
            });
        }
        Ok(session.location)
    }

    /// Opens a new upload session and returns its URL.
    async fn open_session(&self, target: &Target, session: &UploadSession<'_>) -> Result<String> {
        let response = self
            .request(
                target,
                Method::POST,
                session.start_url,
                header(CONTENT_LENGTH, "0"),
                Some(Bytes::new()),
            )
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error("POST", session.start_url, response).await);
        }
        location_of(session.base, &response, session.start_url)
    }

    /// Asks the registry how many bytes of the upload it holds; returns that
    /// and the upload URL to go on with.
    async fn upload_status(
        &self,
        target: &Target,
        session: &UploadSession<'_>,
    ) -> Result<(u64, String)> {
        let response = self
            .request(
                target,
                Method::GET,
                &session.location,
                HeaderMap::new(),
                None,
            )
            .await?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(status_error("GET", &session.location, response).await);
        }
        let held = response
            .headers()
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(held_bytes)
            .ok_or_else(|| Error::Registry {
                method: "GET".to_owned(),
                url: session.location.clone(),
                status: 204,
                body: "the upload status has no Range header of the form 0-<last>".to_owned(),
            })?;
        let location = location_of(session.base, &response, &session.location)?;
        Ok((held, location))
    }
}

/// The number of bytes a `Range: 0-<last>` upload status says are held.
/// Registries write `0-0` for an empty upload as well as for one byte; this
/// reads it as empty, so at worst one byte is sent again and refused.
fn held_bytes(range: &str) -> Option<u64> {
    let last: u64 = range.trim().strip_prefix("0-")?.parse().ok()?;
    Some(if last == 0 { 0 } else { last + 1 })
}

#[cfg(test)]
mod tests {
    use super::held_bytes;

    #[test]
    fn reads_the_upload_status_range() {
        assert_eq!(held_bytes("0-0"), Some(0));
        assert_eq!(held_bytes("0-65535"), Some(65536));
        assert_eq!(held_bytes("bytes=0-9"), None);
        assert_eq!(held_bytes("5-9"), None);
    }
}

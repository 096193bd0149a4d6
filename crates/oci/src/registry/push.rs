//! Push: blobs first (skipping what the registry has, mounting what another
//! repository of the same registry has), then manifests children first, each
//! with its exact bytes and media type, then the tag.
//!
//! A blob is mounted from a repository the store's source records name (see
//! [`crate::store::BlobSource`]: where it was pulled from or pushed to), else
//! from the repository in the image's own name, when either is on the
//! destination's registry.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use oci_spec::image::Descriptor;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, Response, StatusCode};
use std::io::Read;

use crate::error::IoContext;
use crate::manifest::{Document, descriptor_digest, parse_document};
use crate::progress::ProgressEvent;
use crate::registry::blob::note_source;
use crate::registry::client::{RegistryClient, Target, header, status_error};
use crate::registry::upload::UploadSession;
use crate::store::ImageStore;
use crate::{Digest, Error, Reference, Result};

impl RegistryClient {
    /// Pushes image `name` from `store` as `target` (its tag, or its digest
    /// when it has no tag) and returns the root's digest. When the image came
    /// from another repository of the same registry, blobs are mounted from it.
    pub async fn push(
        &self,
        store: &ImageStore,
        name: &str,
        destination: &Reference,
    ) -> Result<Digest> {
        let image = store.get(name)?;
        let mount_from = name
            .parse::<Reference>()
            .ok()
            .filter(|r| {
                r.registry() == destination.registry() && r.repository() != destination.repository()
            })
            .map(|r| r.repository().to_owned());
        let mut scope = format!("repository:{}:pull,push", destination.repository());
        if let Some(from) = &mount_from {
            scope.push_str(&format!(" repository:{from}:pull"));
        }
        let target = Target {
            registry: destination.registry().to_owned(),
            api_host: destination.api_host().to_owned(),
            scope,
        };
        let descriptor = pushable_root(store, &image.descriptor)?;
        let root = descriptor_digest(&descriptor)?;
        self.push_tree(
            store,
            destination,
            &target,
            &descriptor,
            mount_from.as_deref(),
        )
        .await?;
        let bytes = store.content().read_blob(&root)?;
        let what = destination.tag().map_or(root.to_string(), str::to_owned);
        self.put_manifest(
            destination,
            &target,
            &what,
            descriptor.media_type().as_ref(),
            bytes,
        )
        .await?;
        Ok(root)
    }

    /// Pushes everything `descriptor` reaches that the store holds, but not
    /// `descriptor`'s own manifest (the caller puts it under its tag).
    async fn push_tree(
        &self,
        store: &ImageStore,
        destination: &Reference,
        target: &Target,
        descriptor: &Descriptor,
        mount_from: Option<&str>,
    ) -> Result<()> {
        let digest = descriptor_digest(descriptor)?;
        let bytes = store.content().read_blob(&digest)?;
        match parse_document(
            &bytes,
            descriptor.media_type().as_ref(),
            &digest.to_string(),
        )? {
            Document::Index(index) => {
                for child in index.manifests() {
                    let child_digest = descriptor_digest(child)?;
                    if !store.content().contains(&child_digest) {
                        // A platform that was never pulled.
                        continue;
                    }
                    Box::pin(self.push_tree(store, destination, target, child, mount_from)).await?;
                    let child_bytes = store.content().read_blob(&child_digest)?;
                    self.put_manifest(
                        destination,
                        target,
                        &child_digest.to_string(),
                        child.media_type().as_ref(),
                        child_bytes,
                    )
                    .await?;
                }
            }
            Document::Manifest(manifest) => {
                let blobs: Vec<Descriptor> = std::iter::once(manifest.config().clone())
                    .chain(manifest.layers().iter().cloned())
                    .collect();
                let jobs = blobs
                    .iter()
                    .map(|b| self.push_blob(store, destination, target, b, mount_from));
                futures::stream::iter(jobs)
                    .buffer_unordered(self.config.concurrency.max(1))
                    .try_collect::<Vec<()>>()
                    .await?;
            }
        }
        Ok(())
    }

    /// Pushes one blob, mounting it when the store knows another repository
    /// of the destination's registry that holds it.
    async fn push_blob(
        &self,
        store: &ImageStore,
        destination: &Reference,
        target: &Target,
        descriptor: &Descriptor,
        mount_from: Option<&str>,
    ) -> Result<()> {
        let digest = descriptor_digest(descriptor)?;
        let size = store.content().blob_size(&digest)?;
        let recorded = store
            .content()
            .sources(&digest)?
            .into_iter()
            .find(|s| {
                s.registry == destination.registry() && s.repository != destination.repository()
            })
            .map(|s| s.repository);
        let mount_from = recorded.as_deref().or(mount_from);
        let extended;
        let target = match mount_from {
            Some(from) if !target.scope.contains(&format!("repository:{from}:")) => {
                extended = Target {
                    scope: format!("{} repository:{from}:pull", target.scope),
                    ..target.clone()
                };
                &extended
            }
            _ => target,
        };
        self.upload_blob(store, destination, target, &digest, size, mount_from)
            .await?;
        note_source(store, destination, &digest);
        Ok(())
    }

    /// Uploads one blob unless the registry has it or mounts it from `mount_from`.
    async fn upload_blob(
        &self,
        store: &ImageStore,
        destination: &Reference,
        target: &Target,
        digest: &Digest,
        size: u64,
        mount_from: Option<&str>,
    ) -> Result<()> {
        let digest = digest.clone();
        let base = self.base(destination.api_host()).await?;
        let repo = destination.repository();
        let blob_url = format!("{base}/v2/{repo}/blobs/{digest}");
        let head = self
            .request(target, Method::HEAD, &blob_url, HeaderMap::new(), None)
            .await?;
        if head.status().is_success() {
            self.emit(ProgressEvent::Skipped {
                digest,
                size,
                why: "exists",
            });
            return Ok(());
        }
        let mut start_url = format!("{base}/v2/{repo}/blobs/uploads/");
        if let Some(from) = mount_from {
            start_url.push_str(&format!("?mount={digest}&from={from}"));
        }
        let started = self
            .request(
                target,
                Method::POST,
                &start_url,
                header(CONTENT_LENGTH, "0"),
                Some(Bytes::new()),
            )
            .await?;
        if started.status() == StatusCode::CREATED {
            self.emit(ProgressEvent::Skipped {
                digest,
                size,
                why: "mounted",
            });
            return Ok(());
        }
        if started.status() != StatusCode::ACCEPTED {
            return Err(status_error("POST", &start_url, started).await);
        }
        let mut location = location_of(&base, &started, &start_url)?;
        self.emit(ProgressEvent::Started {
            digest: digest.clone(),
            size,
            offset: 0,
        });
        let path = store.content().blob_path(&digest);
        let mut file = store.content().open_blob(&digest)?;
        let body = if size <= self.config.monolithic_limit {
            let mut all = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut all).at("read", &path)?;
            Bytes::from(all)
        } else {
            let plain_start = format!("{base}/v2/{repo}/blobs/uploads/");
            let session = UploadSession {
                base: &base,
                location,
                start_url: &plain_start,
                digest: &digest,
                size,
            };
            location = self
                .upload_chunks(target, session, &mut file, &path)
                .await?;
            Bytes::new()
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{separator}digest={digest}");
        let response = self
            .request(
                target,
                Method::PUT,
                &put_url,
                header(CONTENT_TYPE, "application/octet-stream"),
                Some(body),
            )
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error("PUT", &put_url, response).await);
        }
        self.emit(ProgressEvent::Finished { digest });
        Ok(())
    }

    async fn put_manifest(
        &self,
        destination: &Reference,
        target: &Target,
        what: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let base = self.base(destination.api_host()).await?;
        let url = format!("{base}/v2/{}/manifests/{what}", destination.repository());
        let response = self
            .request(
                target,
                Method::PUT,
                &url,
                header(CONTENT_TYPE, media_type),
                Some(Bytes::from(bytes)),
            )
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error("PUT", &url, response).await);
        }
        Ok(())
    }
}

/// The root to push: the image's own, or, for an index pulled for one
/// platform, that platform's manifest (a registry refuses an index whose
/// manifests it does not have).
fn pushable_root(store: &ImageStore, root: &Descriptor) -> Result<Descriptor> {
    let digest = descriptor_digest(root)?;
    let bytes = store.content().read_blob(&digest)?;
    let Document::Index(index) =
        parse_document(&bytes, root.media_type().as_ref(), &digest.to_string())?
    else {
        return Ok(root.clone());
    };
    let present: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| descriptor_digest(d).is_ok_and(|d| store.content().contains(&d)))
        .collect();
    match present.as_slice() {
        _ if present.len() == index.manifests().len() => Ok(root.clone()),
        [one] => Ok((*one).clone()),
        _ => Err(Error::InvalidDocument {
            what: digest.to_string(),
            kind: "complete image index",
            reason: format!(
                "only {} of its {} manifests were pulled; pull it with all platforms to push it",
                present.len(),
                index.manifests().len()
            ),
        }),
    }
}

pub(crate) fn location_of(base: &str, response: &Response, url: &str) -> Result<String> {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Registry {
            method: "POST".to_owned(),
            url: url.to_owned(),
            status: response.status().as_u16(),
            body: "the answer has no Location header".to_owned(),
        })?;
    Ok(absolute(base, location))
}

pub(crate) fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{base}/{}", location.trim_start_matches('/'))
    }
}

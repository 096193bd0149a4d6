//! Pull: resolve a reference to a manifest for a platform, then stream the
//! config and layers into the content store, verified, several at a time.

use std::sync::Arc;

use futures::{FutureExt, StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, ImageManifest};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use crate::layer::StoredLayer;
use crate::limits::{MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, read_body};
use crate::manifest::{Document, descriptor_digest, parse_config, parse_document, select_manifest};
use crate::media_type::{self, Kind};
use crate::registry::blob::ExpectedDiffId;
use crate::registry::client::{RegistryClient, Target, header, status_error};
use crate::store::{Image, ImageStore};
use crate::{Digest, Error, Platform, Reference, Result};

/// A manifest or index as the registry served it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// The media type (from `Content-Type`, else from the document).
    pub media_type: String,
    /// The digest of the bytes.
    pub digest: Digest,
}

impl FetchedManifest {
    /// A descriptor for it.
    pub fn descriptor(&self) -> Result<Descriptor> {
        Ok(Descriptor::new(
            self.media_type.as_str().into(),
            self.bytes.len() as u64,
            oci_spec::image::Digest::try_from(&self.digest)?,
        ))
    }
}

/// What a pull stores for its platform, known once the platform's manifest
/// and config are in, before the layers are: enough for a build to start
/// reading the layers as they download ([`ContentStore::open_layer_following`](crate::store::ContentStore::open_layer_following)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPlan {
    /// The platform manifest's digest (what a root file system is named by).
    pub manifest: Digest,
    /// Its layers, lowest first, each with its config's `diff_id`.
    pub layers: Vec<StoredLayer>,
}

pub(crate) fn target(reference: &Reference, actions: &str) -> Target {
    Target {
        registry: reference.registry().to_owned(),
        api_host: reference.api_host().to_owned(),
        scope: format!("repository:{}:{actions}", reference.repository()),
    }
}

impl RegistryClient {
    /// Fetches the manifest or index `reference` names (its digest, else its tag).
    pub async fn fetch_manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        self.fetch_manifest_by(reference, &reference.api_reference())
            .await
    }

    async fn fetch_manifest_by(
        &self,
        reference: &Reference,
        what: &str,
    ) -> Result<FetchedManifest> {
        let base = self.base(reference.api_host()).await?;
        let url = format!("{base}/v2/{}/manifests/{what}", reference.repository());
        let target = target(reference, "pull");
        let response = self
            .request(
                &target,
                Method::GET,
                &url,
                header(ACCEPT, media_type::MANIFEST_ACCEPT),
                None,
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            let what = if what.contains(':') {
                format!("manifest {what}")
            } else {
                format!("tag '{what}'")
            };
            return Err(Error::ManifestUnknown {
                what,
                repository: reference.name(),
            });
        }
        if !response.status().is_success() {
            return Err(status_error("GET", &url, response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .unwrap_or_default();
        let bytes = read_body(response, MAX_MANIFEST_BYTES, "the manifest", &url).await?;
        let digest = match what.parse::<Digest>() {
            Ok(expected) => {
                expected.verify(&bytes)?;
                expected
            }
            Err(_) => Digest::sha256(&bytes),
        };
        let document = parse_document(&bytes, &content_type, &format!("{reference}"))?;
        let media_type = match media_type::kind(&content_type) {
            Kind::Index | Kind::Manifest => content_type,
            _ => match &document {
                Document::Index(i) => i
                    .media_type()
                    .as_ref()
                    .map_or(media_type::OCI_INDEX.to_owned(), |m| m.to_string()),
                Document::Manifest(m) => m
                    .media_type()
                    .as_ref()
                    .map_or(media_type::OCI_MANIFEST.to_owned(), |m| m.to_string()),
            },
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Pulls `reference` for `platform` into `store` and names it with the
    /// reference's normalised text. The stored root is what the tag names (an
    /// index keeps its digest); only the chosen platform's blobs are fetched.
    pub async fn pull(
        &self,
        store: &ImageStore,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Image> {
        self.pull_selected(store, reference, Some(platform), None)
            .await
    }

    /// [`RegistryClient::pull`], sending the [`PullPlan`] to `plan` as soon
    /// as the manifest and config are stored, while the layers download.
    /// Nothing is sent when the config cannot be read as an image config
    /// (the pull itself goes on).
    pub async fn pull_planned(
        &self,
        store: &ImageStore,
        reference: &Reference,
        platform: &Platform,
        plan: tokio::sync::oneshot::Sender<PullPlan>,
    ) -> Result<Image> {
        self.pull_selected(store, reference, Some(platform), Some(plan))
            .await
    }

    /// Pulls `reference` with every platform its index lists, so the index can
    /// be pushed elsewhere whole.
    pub async fn pull_all_platforms(
        &self,
        store: &ImageStore,
        reference: &Reference,
    ) -> Result<Image> {
        self.pull_selected(store, reference, None, None).await
    }

    async fn pull_selected(
        &self,
        store: &ImageStore,
        reference: &Reference,
        platform: Option<&Platform>,
        mut plan: Option<tokio::sync::oneshot::Sender<PullPlan>>,
    ) -> Result<Image> {
        let root = self.fetch_manifest(reference).await?;
        // Blobs written by this pull stay unnamed until the end: keep GC off.
        let content = store.content().clone();
        let _gc = tokio::task::spawn_blocking(move || content.hold_off_gc())
            .await
            .map_err(|e| Error::Io {
                action: "wait for",
                path: "the GC lock".into(),
                source: std::io::Error::other(e),
            })??;
        let mut documents = vec![root.clone()];
        let mut todo = vec![(root.clone(), 0usize)];
        while let Some((current, depth)) = todo.pop() {
            match parse_document(&current.bytes, &current.media_type, &reference.to_string())? {
                Document::Manifest(m) => {
                    if platform.is_some() {
                        crate::manifest::check_layer_types(&m, &current.digest.to_string())?;
                    }
                    let planned = plan.take().map(|sender| (current.digest.clone(), sender));
                    self.pull_manifest_blobs(store, reference, &m, planned)
                        .await?;
                }
                Document::Index(index) => {
                    if depth > 4 {
                        return Err(Error::InvalidDocument {
                            what: reference.to_string(),
                            kind: "image index",
                            reason: "indexes nest too deeply".to_owned(),
                        });
                    }
                    let children = match platform {
                        Some(p) => vec![select_manifest(&index, p)?],
                        None => index.manifests().clone(),
                    };
                    for child in children {
                        let digest = descriptor_digest(&child)?;
                        let fetched = self
                            .fetch_manifest_by(reference, &digest.to_string())
                            .await?;
                        documents.push(fetched.clone());
                        todo.push((fetched, depth + 1));
                    }
                }
            }
        }
        // Children before parents, so every document is whole when named.
        for document in documents.iter().rev() {
            store
                .content()
                .put_blob(&document.digest, &document.bytes)?;
        }
        let name = reference.to_string();
        store.set(&name, &root.descriptor()?)?;
        store.get(&name)
    }

    /// Fetches a manifest's config and layers, several at a time (the
    /// config first among them). Layers do not wait for the config to
    /// download; each waits for it only to learn its `diff_id` at the end.
    async fn pull_manifest_blobs(
        &self,
        store: &ImageStore,
        reference: &Reference,
        manifest: &ImageManifest,
        plan: Option<(Digest, tokio::sync::oneshot::Sender<PullPlan>)>,
    ) -> Result<()> {
        let config_descriptor = manifest.config().clone();
        let config_digest = descriptor_digest(&config_descriptor)?;
        if config_descriptor.size() > MAX_CONFIG_BYTES {
            return Err(Error::TooLarge {
                what: format!("the image config {config_digest} of {reference}"),
                limit: MAX_CONFIG_BYTES,
            });
        }
        let check = self.config.verify_diff_ids
            && matches!(
                media_type::kind(config_descriptor.media_type().as_ref()),
                Kind::Config
            );
        let (diff_ids_sender, diff_ids) = tokio::sync::watch::channel(None);
        let in_order = plan.is_some();
        let config_job = async move {
            self.fetch_blob(store, reference, &config_descriptor, None)
                .await?;
            if let Some((digest, sender)) = plan {
                match plan_of(store, manifest, &config_digest, digest) {
                    // A plan nobody waits for any more is dropped.
                    Ok(plan) => drop(sender.send(plan)),
                    Err(e) => tracing::debug!("no plan for the layers: {e}"),
                }
            }
            if check {
                let parsed = diff_ids_of(store, manifest, &config_digest)?;
                // Layers that already failed no longer listen.
                let _ = diff_ids_sender.send(Some(Arc::new(parsed)));
            }
            Ok(())
        };
        // Biggest first: with more layers than slots, the biggest one should
        // not start last and end the pull alone. But a build that follows
        // the pull reads the layers lowest first: then they start in that
        // order, so the one it reads next is not the last to arrive.
        let mut layers: Vec<(usize, &Descriptor)> = manifest.layers().iter().enumerate().collect();
        if !in_order {
            layers.sort_by_key(|(_, layer)| std::cmp::Reverse(layer.size()));
        }
        let layer_jobs = layers.into_iter().map(|(index, layer)| {
            let expected = check.then(|| ExpectedDiffId::FromConfig {
                diff_ids: diff_ids.clone(),
                index,
            });
            self.fetch_blob_checked(store, reference, layer, expected)
                .boxed()
        });
        // The config comes first, so it always has a slot: layers that wait
        // for it never hold every slot while it waits for one.
        futures::stream::iter(std::iter::once(config_job.boxed()).chain(layer_jobs))
            .buffer_unordered(self.config.concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

/// The plan for `manifest` (named `digest`), whose config `config` is stored.
fn plan_of(
    store: &ImageStore,
    manifest: &ImageManifest,
    config: &Digest,
    digest: Digest,
) -> Result<PullPlan> {
    let diff_ids = diff_ids_of(store, manifest, config)?;
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| StoredLayer::new(layer, Some(diff_id)))
        .collect::<Result<Vec<_>>>()?;
    Ok(PullPlan {
        manifest: digest,
        layers,
    })
}

/// The `diff_ids` of `manifest`'s stored config `config`, one per layer.
fn diff_ids_of(
    store: &ImageStore,
    manifest: &ImageManifest,
    config: &Digest,
) -> Result<Vec<Digest>> {
    let bytes = store.content().read_blob(config)?;
    let parsed = parse_config(&bytes, &config.to_string())?;
    let listed = parsed.rootfs().diff_ids();
    if listed.len() != manifest.layers().len() {
        return Err(Error::InvalidDocument {
            what: config.to_string(),
            kind: "image config",
            reason: format!(
                "it lists {} diff_ids for {} layers",
                listed.len(),
                manifest.layers().len()
            ),
        });
    }
    listed.iter().map(|d| d.parse::<Digest>()).collect()
}

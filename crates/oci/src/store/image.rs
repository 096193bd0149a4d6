//! The image store: image names mapped to root descriptors through the
//! `org.opencontainers.image.ref.name` annotation of `index.json` entries, the
//! way `skopeo copy … oci:<store>:<name>` and `umoci` name images.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use serde_json::Value;

use crate::manifest::{Document, descriptor_digest, parse_config, parse_document, select_manifest};
use crate::store::ContentStore;
use crate::{Digest, Error, Platform, Result};

/// The annotation that names an image in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A named image: its name and the descriptor of its root (index or manifest).
#[derive(Debug, Clone)]
pub struct Image {
    /// The image's name (for pulled images, the full normalised reference).
    pub name: String,
    /// The root document.
    pub descriptor: Descriptor,
}

impl Image {
    /// The root document's digest.
    pub fn digest(&self) -> Result<Digest> {
        descriptor_digest(&self.descriptor)
    }
}

/// One platform's manifest and config of an image.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The image.
    pub image: Image,
    /// The manifest's descriptor.
    pub manifest_descriptor: Descriptor,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config's raw bytes.
    pub config_bytes: Vec<u8>,
    /// The config.
    pub config: ImageConfiguration,
}

/// Names ↔ root descriptors, on top of a [`ContentStore`].
#[derive(Debug, Clone)]
pub struct ImageStore {
    content: ContentStore,
}

impl ImageStore {
    /// Opens the stores under a state root: `<root>/content` and `<root>/ingest`.
    pub fn open(state_root: &Path) -> Result<Self> {
        let content = ContentStore::open(&state_root.join("content"), &state_root.join("ingest"))?;
        Ok(Self { content })
    }

    /// An image store over an existing content store.
    pub fn new(content: ContentStore) -> Self {
        Self { content }
    }

    /// The content store underneath.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Every named image, sorted by name.
    pub fn list(&self) -> Result<Vec<Image>> {
        let index = self.read_index()?;
        let mut images: BTreeMap<String, Image> = BTreeMap::new();
        for entry in index["manifests"].as_array().into_iter().flatten() {
            let Some(name) = entry["annotations"][REF_NAME].as_str() else {
                continue;
            };
            let descriptor: Descriptor =
                serde_json::from_value(entry.clone()).map_err(|e| Error::InvalidDocument {
                    what: format!("index.json entry {name}"),
                    kind: "descriptor",
                    reason: e.to_string(),
                })?;
            images.insert(
                name.to_owned(),
                Image {
                    name: name.to_owned(),
                    descriptor,
                },
            );
        }
        Ok(images.into_values().collect())
    }

    /// The image called `name`.
    pub fn get(&self, name: &str) -> Result<Image> {
        self.list()?
            .into_iter()
            .find(|i| i.name == name)
            .ok_or_else(|| Error::ImageNotFound(name.to_owned()))
    }

    /// Names `descriptor` as `name`, replacing any image of that name. The
    /// descriptor's blobs must already be in the content store.
    pub fn set(&self, name: &str, descriptor: &Descriptor) -> Result<()> {
        let digest = descriptor_digest(descriptor)?;
        if !self.content.contains(&digest) {
            return Err(Error::BlobNotFound(digest.to_string()));
        }
        let mut entry = serde_json::to_value(descriptor).map_err(|e| Error::InvalidDocument {
            what: name.to_owned(),
            kind: "descriptor",
            reason: e.to_string(),
        })?;
        entry["annotations"] = serde_json::json!({ REF_NAME: name });
        if let Some(object) = entry.as_object_mut() {
            object.remove("platform");
        }
        self.update_index(|manifests| {
            manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(name));
            manifests.push(entry);
            Ok(())
        })
    }

    /// Gives the image `existing` a second name.
    pub fn tag(&self, existing: &str, new: &str) -> Result<Image> {
        let image = self.get(existing)?;
        self.set(new, &image.descriptor)?;
        self.get(new)
    }

    /// Removes the name `name` (its blobs stay until [`ImageStore::prune`]).
    pub fn untag(&self, name: &str) -> Result<Image> {
        let image = self.get(name)?;
        self.update_index(|manifests| {
            manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(name));
            Ok(())
        })?;
        Ok(image)
    }

    /// The manifest and config of image `name` for `platform`.
    pub fn resolve(&self, name: &str, platform: &Platform) -> Result<ResolvedImage> {
        let image = self.get(name)?;
        let mut descriptor = image.descriptor.clone();
        // Nested indexes are allowed; follow them a few levels.
        for _ in 0..4 {
            let digest = descriptor_digest(&descriptor)?;
            let bytes = self.content.read_blob(&digest)?;
            match parse_document(
                &bytes,
                descriptor.media_type().as_ref(),
                &digest.to_string(),
            )? {
                Document::Index(index) => descriptor = select_manifest(&index, platform)?,
                Document::Manifest(manifest) => {
                    let config_digest = descriptor_digest(manifest.config())?;
                    let config_bytes = self.content.read_blob(&config_digest)?;
                    let config = parse_config(&config_bytes, &config_digest.to_string())?;
                    return Ok(ResolvedImage {
                        image,
                        manifest_descriptor: descriptor,
                        manifest: *manifest,
                        config_bytes,
                        config,
                    });
                }
            }
        }
        Err(Error::InvalidDocument {
            what: name.to_owned(),
            kind: "image",
            reason: "indexes nest too deeply".to_owned(),
        })
    }

    /// The platforms image `name` can be run as from this store: its
    /// config's for a single manifest; for an index, each entry whose
    /// manifest is stored (attestations and unknowns left out), in the
    /// index's order.
    pub fn platforms(&self, name: &str) -> Result<Vec<Platform>> {
        let image = self.get(name)?;
        let digest = descriptor_digest(&image.descriptor)?;
        let bytes = self.content.read_blob(&digest)?;
        match parse_document(
            &bytes,
            image.descriptor.media_type().as_ref(),
            &digest.to_string(),
        )? {
            Document::Index(index) => Ok(index
                .manifests()
                .iter()
                .filter(|d| descriptor_digest(d).is_ok_and(|digest| self.content.contains(&digest)))
                .filter_map(|d| d.platform().as_ref().map(Platform::from_oci))
                .filter(|p| p.os != "unknown")
                .collect()),
            Document::Manifest(manifest) => {
                let config_digest = descriptor_digest(manifest.config())?;
                let config_bytes = self.content.read_blob(&config_digest)?;
                let config = parse_config(&config_bytes, &config_digest.to_string())?;
                Ok(vec![Platform::new(
                    &config.os().to_string(),
                    &config.architecture().to_string(),
                    config.variant().as_deref(),
                )])
            }
        }
    }

    /// Reads `index.json` as JSON (unknown fields kept).
    pub(crate) fn read_index(&self) -> Result<Value> {
        let path = self.content.root().join("index.json");
        let bytes =
            crate::limits::read_file(&path, crate::limits::MAX_JSON_FILE_BYTES, "the store's")?;
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidDocument {
            what: path.display().to_string(),
            kind: "image index",
            reason: e.to_string(),
        })
    }

    /// Changes the `manifests` of `index.json` under its lock.
    fn update_index(&self, change: impl FnOnce(&mut Vec<Value>) -> Result<()>) -> Result<()> {
        let _lock = self.content.index_lock()?;
        let mut index = self.read_index()?;
        let mut manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        change(&mut manifests)?;
        index["manifests"] = Value::Array(manifests);
        index["schemaVersion"] = Value::from(2);
        let bytes = serde_json::to_vec(&index).map_err(|e| Error::InvalidDocument {
            what: "index.json".to_owned(),
            kind: "image index",
            reason: e.to_string(),
        })?;
        let path = self.content.root().join("index.json");
        self.content.write_atomically(&path, &bytes)
    }
}

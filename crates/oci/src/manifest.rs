//! Parsing manifests, indexes and configs (OCI and Docker schema 2, which
//! share a JSON shape), and choosing the manifest for a platform.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::media_type::{self, Kind};
use crate::{Digest, Error, Platform, Result};

/// A manifest-level document: an index or an image manifest.
#[derive(Debug, Clone)]
pub enum Document {
    /// An OCI index or Docker manifest list.
    Index(Box<ImageIndex>),
    /// An OCI or Docker image manifest.
    Manifest(Box<ImageManifest>),
}

/// Parses `bytes` as the manifest kind `media_type` names; when the media type
/// is missing or generic, the document's own `mediaType` field decides.
pub fn parse_document(bytes: &[u8], media_type: &str, what: &str) -> Result<Document> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidDocument {
            what: what.to_owned(),
            kind: "JSON manifest",
            reason: e.to_string(),
        })?;
    let declared = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    let chosen = match media_type::kind(media_type) {
        Kind::Index | Kind::Manifest => media_type,
        _ if !declared.is_empty() => declared,
        _ if value.get("manifests").is_some() => media_type::OCI_INDEX,
        _ if value.get("layers").is_some() => media_type::OCI_MANIFEST,
        _ => media_type,
    };
    match media_type::kind(chosen) {
        Kind::Index => parse_index(bytes, what).map(|i| Document::Index(Box::new(i))),
        Kind::Manifest => parse_manifest(bytes, what).map(|m| Document::Manifest(Box::new(m))),
        _ => Err(Error::UnsupportedMediaType {
            media_type: chosen.to_owned(),
            what: what.to_owned(),
        }),
    }
}

/// Parses an index or manifest list.
pub fn parse_index(bytes: &[u8], what: &str) -> Result<ImageIndex> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidDocument {
        what: what.to_owned(),
        kind: "image index",
        reason: e.to_string(),
    })
}

/// Parses an image manifest (any layer media types; see [`check_layer_types`]).
pub fn parse_manifest(bytes: &[u8], what: &str) -> Result<ImageManifest> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidDocument {
        what: what.to_owned(),
        kind: "image manifest",
        reason: e.to_string(),
    })
}

/// Checks that every layer of `manifest` is a tar layer this crate can read.
pub fn check_layer_types(manifest: &ImageManifest, what: &str) -> Result<()> {
    for layer in manifest.layers() {
        if !matches!(
            media_type::kind(layer.media_type().as_ref()),
            Kind::Layer(_)
        ) {
            return Err(Error::UnsupportedMediaType {
                media_type: layer.media_type().to_string(),
                what: format!("layer {} of {what}", layer.digest()),
            });
        }
    }
    Ok(())
}

/// Parses an image config.
pub fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfiguration> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidDocument {
        what: what.to_owned(),
        kind: "image config",
        reason: e.to_string(),
    })
}

/// The digest of a descriptor, validated.
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest> {
    Digest::try_from(descriptor.digest())
}

/// The manifest in `index` that best fits `wanted`, or an error listing the
/// platforms the index has.
pub fn select_manifest(index: &ImageIndex, wanted: &Platform) -> Result<Descriptor> {
    let best = index
        .manifests()
        .iter()
        .filter(|d| matches!(media_type::kind(d.media_type().as_ref()), Kind::Manifest))
        .filter_map(|d| {
            let platform = d.platform().as_ref().map(Platform::from_oci)?;
            wanted.rank(&platform).map(|rank| (rank, d))
        })
        .min_by_key(|(rank, _)| *rank);
    match best {
        Some((_, descriptor)) => Ok(descriptor.clone()),
        None => Err(Error::PlatformNotFound {
            wanted: wanted.to_string(),
            available: platforms_of(index).join(", "),
        }),
    }
}

/// The platforms an index lists, as text (attestations and unknowns left out).
pub fn platforms_of(index: &ImageIndex) -> Vec<String> {
    let mut list: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref().map(Platform::from_oci))
        .filter(|p| p.os != "unknown")
        .map(|p| p.to_string())
        .collect();
    list.dedup();
    list
}

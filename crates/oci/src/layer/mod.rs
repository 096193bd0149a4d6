//! Layers: decompression streams and a safe unpacker.

mod compression;
mod diff_id;
mod pipeline;
mod unpack;

use std::path::Path;

use oci_spec::image::ImageManifest;

pub use compression::{decoder, decoder_buffered, sniff};
pub use diff_id::DiffIdChecker;
pub use unpack::{UnpackOptions, Unpacker};

use crate::error::IoContext;
use crate::manifest::descriptor_digest;
use crate::media_type::Compression;
use crate::media_type::{self, Kind};
use crate::store::ContentStore;
use crate::store::ResolvedImage;
use crate::{Digest, Error, Result};
use pipeline::DecodedStream;

/// Unpacks every layer of `manifest`, in order, from `content` into `target`
/// (see [`Unpacker`] for what is kept and refused).
pub fn unpack_image(
    content: &ContentStore,
    manifest: &ImageManifest,
    target: &Path,
    options: &UnpackOptions,
) -> Result<()> {
    unpack_checked(content, manifest, None, target, options)
}

/// Unpacks an image like [`unpack_image`], checking while decompressing that
/// each layer's uncompressed content matches the config's `diff_ids`.
pub fn unpack_resolved(
    content: &ContentStore,
    image: &ResolvedImage,
    target: &Path,
    options: &UnpackOptions,
) -> Result<()> {
    let diff_ids = image.config.rootfs().diff_ids();
    if diff_ids.len() != image.manifest.layers().len() {
        return Err(Error::InvalidDocument {
            what: image.image.name.clone(),
            kind: "image config",
            reason: format!(
                "it lists {} diff_ids for {} layers",
                diff_ids.len(),
                image.manifest.layers().len()
            ),
        });
    }
    unpack_checked(content, &image.manifest, Some(diff_ids), target, options)
}

fn unpack_checked(
    content: &ContentStore,
    manifest: &ImageManifest,
    diff_ids: Option<&[String]>,
    target: &Path,
    options: &UnpackOptions,
) -> Result<()> {
    let mut unpacker = Unpacker::with_options(target, options)?;
    let mut layers = Vec::new();
    for (i, layer) in manifest.layers().iter().enumerate() {
        let digest = descriptor_digest(layer)?;
        let compression = match media_type::kind(layer.media_type().as_ref()) {
            Kind::Layer(c) => c,
            _ => {
                return Err(Error::UnsupportedMediaType {
                    media_type: layer.media_type().to_string(),
                    what: format!("layer {digest}"),
                });
            }
        };
        let expected = match diff_ids.and_then(|d| d.get(i)) {
            Some(text) => Some(text.parse::<Digest>()?),
            None => None,
        };
        layers.push((digest, compression, expected));
    }
    // Each layer inflates on its own thread; the next one starts while the
    // current one is written.
    let start = |(digest, compression, expected): &(Digest, Compression, Option<Digest>)| {
        content.open_blob(digest).map(|file| {
            DecodedStream::start(file, *compression, expected.as_ref().map(Digest::algorithm))
        })
    };
    let mut next = layers.first().map(start).transpose()?;
    for (i, (digest, _, expected)) in layers.iter().enumerate() {
        let Some(mut stream) = next.take() else { break };
        next = layers.get(i + 1).map(start).transpose()?;
        unpacker.apply_layer(&mut stream, &digest.to_string())?;
        let actual = stream.finish().at("read layer", digest.to_string())?;
        if let Some(expected) = expected
            && actual.as_ref() != Some(expected)
        {
            return Err(Error::DiffIdMismatch {
                layer: digest.to_string(),
                expected: expected.to_string(),
                actual: actual.map_or_else(String::new, |a| a.to_string()),
            });
        }
    }
    unpacker.finish()
}

//! Layers: decompression streams and a safe unpacker.

mod compression;
mod unpack;

use std::path::Path;

use oci_spec::image::ImageManifest;

pub use compression::{DiffIdChecker, decoder, sniff};
pub use unpack::Unpacker;

use crate::error::IoContext;
use crate::manifest::descriptor_digest;
use crate::media_type::{self, Kind};
use crate::store::ContentStore;
use crate::store::ResolvedImage;
use crate::{Digest, Error, Hasher, Result};

/// Hashes what passes through it, when asked to.
struct HashingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Unpacks every layer of `manifest`, in order, from `content` into `target`.
pub fn unpack_image(content: &ContentStore, manifest: &ImageManifest, target: &Path) -> Result<()> {
    unpack_checked(content, manifest, None, target)
}

/// Unpacks an image like [`unpack_image`], checking while decompressing that
/// each layer's uncompressed content matches the config's `diff_ids`.
pub fn unpack_resolved(content: &ContentStore, image: &ResolvedImage, target: &Path) -> Result<()> {
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
    unpack_checked(content, &image.manifest, Some(diff_ids), target)
}

fn unpack_checked(
    content: &ContentStore,
    manifest: &ImageManifest,
    diff_ids: Option<&[String]>,
    target: &Path,
) -> Result<()> {
    let mut unpacker = Unpacker::new(target)?;
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
        let file = content.open_blob(&digest)?;
        let reader = decoder(
            compression,
            std::io::BufReader::with_capacity(1 << 17, file),
        )?;
        let expected = match diff_ids.and_then(|d| d.get(i)) {
            Some(text) => Some(text.parse::<Digest>()?),
            None => None,
        };
        let mut hashing = HashingReader {
            inner: reader,
            hasher: expected.as_ref().map(|e| Hasher::new(e.algorithm())),
        };
        unpacker.apply_layer(&mut hashing, &digest.to_string())?;
        if let Some(expected) = expected {
            // The tar reader may stop before the archive's zero padding.
            std::io::copy(&mut hashing, &mut std::io::sink())
                .at("read layer", digest.to_string())?;
            let actual = hashing.hasher.map(Hasher::finish);
            if actual.as_ref() != Some(&expected) {
                return Err(Error::DiffIdMismatch {
                    layer: digest.to_string(),
                    expected: expected.to_string(),
                    actual: actual.map_or_else(String::new, |a| a.to_string()),
                });
            }
        }
    }
    unpacker.finish()
}

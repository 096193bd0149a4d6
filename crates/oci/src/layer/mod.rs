//! Layers: decompression streams and a safe unpacker.

mod compression;
mod unpack;

use std::path::Path;

use oci_spec::image::ImageManifest;

pub use compression::{DiffIdChecker, decoder, sniff};
pub use unpack::Unpacker;

use crate::manifest::descriptor_digest;
use crate::media_type::{self, Kind};
use crate::store::ContentStore;
use crate::{Error, Result};

/// Unpacks every layer of `manifest`, in order, from `content` into `target`.
pub fn unpack_image(content: &ContentStore, manifest: &ImageManifest, target: &Path) -> Result<()> {
    let mut unpacker = Unpacker::new(target)?;
    for layer in manifest.layers() {
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
        unpacker.apply_layer(reader, &digest.to_string())?;
    }
    unpacker.finish()
}

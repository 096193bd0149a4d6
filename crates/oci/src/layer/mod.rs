//! Layers: decompression streams and a safe unpacker.

mod checked;
mod compression;
mod diff_id;
mod unpack;

use std::path::Path;

use oci_spec::image::ImageManifest;

pub use checked::{CheckedLayer, StoredLayer};
pub use compression::{decoder, decoder_buffered, sniff};
pub use diff_id::DiffIdChecker;
pub use unpack::{UnpackOptions, Unpacker};

use crate::Result;
use crate::store::{ContentStore, ResolvedImage};

/// Unpacks every layer of `manifest`, in order, from `content` into `target`
/// (see [`Unpacker`] for what is kept and refused). Each blob is checked
/// against its digest as it is read; nothing is checked against `diff_ids`
/// (see [`unpack_resolved`]).
pub fn unpack_image(
    content: &ContentStore,
    manifest: &ImageManifest,
    target: &Path,
    options: &UnpackOptions,
) -> Result<()> {
    let layers = manifest
        .layers()
        .iter()
        .map(|layer| StoredLayer::new(layer, None))
        .collect::<Result<Vec<_>>>()?;
    unpack_layers(content, &layers, target, options)
}

/// Unpacks an image like [`unpack_image`], checking while decompressing that
/// each layer's uncompressed content matches the config's `diff_ids`. On an
/// error, what was unpacked into `target` must not be used.
pub fn unpack_resolved(
    content: &ContentStore,
    image: &ResolvedImage,
    target: &Path,
    options: &UnpackOptions,
) -> Result<()> {
    unpack_layers(content, &StoredLayer::of_image(image)?, target, options)
}

/// Unpacks `layers`, lowest first, each checked as it is read.
fn unpack_layers(
    content: &ContentStore,
    layers: &[StoredLayer],
    target: &Path,
    options: &UnpackOptions,
) -> Result<()> {
    let mut unpacker = Unpacker::with_options(target, options)?;
    // Each layer inflates on its own thread; the next one starts while the
    // current one is written.
    let mut next = layers.first().map(|l| content.open_layer(l)).transpose()?;
    for (i, layer) in layers.iter().enumerate() {
        let Some(mut stream) = next.take() else { break };
        next = layers
            .get(i + 1)
            .map(|l| content.open_layer(l))
            .transpose()?;
        match unpacker.apply_layer(&mut stream, &layer.digest.to_string()) {
            Ok(()) => stream.finish()?,
            // A damaged blob makes the unpacker fail first: say so if it is.
            Err(refused) => {
                stream.check_blob()?;
                return Err(refused);
            }
        }
    }
    unpacker.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    /// `bytes` gzip-compressed, for layers made up in tests.
    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("compress");
        encoder.finish().expect("compress")
    }
}

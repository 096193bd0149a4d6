//! Layer streams: gzip (flate2 on zlib-rs), zstd and plain tar.

use std::io::{BufRead, Read};

use crate::media_type::Compression;
use crate::{Error, Result};

/// Wraps `reader` (compressed bytes) in the decoder for `compression`.
pub fn decoder<'a, R: Read + Send + 'a>(
    compression: Compression,
    reader: R,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(1 << 16, reader),
        )),
        Compression::Zstd => {
            Box::new(
                zstd::stream::read::Decoder::new(reader).map_err(|e| Error::Io {
                    action: "start zstd decoding of",
                    path: "layer".into(),
                    source: e,
                })?,
            )
        }
    })
}

/// Like [`decoder`], for a reader that already buffers: the decoder reads
/// its buffer in place instead of copying it into a buffer of its own.
pub fn decoder_buffered<'a, R: BufRead + Send + 'a>(
    compression: Compression,
    reader: R,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(
            |e| Error::Io {
                action: "start zstd decoding of",
                path: "layer".into(),
                source: e,
            },
        )?),
    })
}

/// Guesses the compression from the first bytes (for archives whose layers
/// carry no media type, such as `docker save`).
pub fn sniff(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

//! How many bytes this crate reads whole into memory, per kind of document.
//!
//! Layers stream; everything else (manifests, indexes, configs, token
//! answers, error bodies, tag lists) is read whole, so a registry or an
//! archive could otherwise hand us gigabytes to hold. containerd caps
//! manifests at 4 MiB; real configs are well under 1 MiB.

use std::io::Read;
use std::path::Path;

use crate::error::IoContext;
use crate::{Error, Result};

/// Manifests and indexes.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Image configs (long histories and many environment variables included).
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;
/// A token service's answer.
pub const MAX_TOKEN_ANSWER_BYTES: u64 = 1 << 20;
/// A page of a tag list.
pub const MAX_TAG_LIST_BYTES: u64 = 8 << 20;
/// The part of an error answer's body that is read (and partly shown).
pub const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;
/// A JSON file of an image archive or of the store (`index.json`,
/// `manifest.json` of a `docker save`).
pub const MAX_JSON_FILE_BYTES: u64 = 16 << 20;

/// Reads an HTTP answer's body whole, refusing it past `limit` bytes
/// (announced or actually sent).
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: u64,
    what: &str,
    url: &str,
) -> Result<Vec<u8>> {
    let too_large = || Error::TooLarge {
        what: format!("{what} from {url}"),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| Error::Http {
        url: url.to_owned(),
        source,
    })? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads the start of an error answer's body, at most
/// [`MAX_ERROR_BODY_BYTES`]; what cannot be read is left out.
pub(crate) async fn read_error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = (MAX_ERROR_BODY_BYTES as usize).saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// Reads a whole file, refusing one larger than `limit` bytes.
pub(crate) fn read_file(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).at("open", path)?;
    read_limited(file, limit, &format!("{what} {}", path.display()))
        .and_then(|r| r.at("read", path))
}

/// Reads `reader` whole unless it holds more than `limit` bytes; the outer
/// error names `what` as too large, the inner one is the reader's.
pub(crate) fn read_limited(
    reader: impl Read,
    limit: u64,
    what: &str,
) -> Result<std::io::Result<Vec<u8>>> {
    let mut bytes = Vec::new();
    match reader.take(limit + 1).read_to_end(&mut bytes) {
        Ok(n) if n as u64 > limit => Err(Error::TooLarge {
            what: what.to_owned(),
            limit,
        }),
        Ok(_) => Ok(Ok(bytes)),
        Err(e) => Ok(Err(e)),
    }
}

//! Checking the whole store at rest (`cctl image check`): every blob
//! against its digest, every image's documents and layers present, and
//! every layer against its config's `diff_id`, decompressed only if that
//! was not checked before.
//!
//! Damaged blobs are set aside as they are found (see
//! [`ContentStore::set_aside`]), so that pulling their images again
//! repairs the store.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::layer::StoredLayer;
use crate::manifest::{Document, parse_config, parse_document};
use crate::store::{ContentStore, ImageStore};
use crate::{Digest, Error, Result};

/// One thing wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The image it concerns, when one is known.
    pub image: Option<String>,
    /// The blob it concerns, when one is known.
    pub digest: Option<Digest>,
    /// What is wrong, and what to do about it.
    pub what: String,
}

/// What [`ImageStore::check`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Blobs read and hashed.
    pub blobs: usize,
    /// Their total size.
    pub bytes: u64,
    /// Layers decompressed to check their `diff_id` (not checked before).
    pub decompressed: usize,
    /// Layers whose `diff_id` was checked before: only their compressed
    /// bytes were hashed.
    pub known: usize,
    /// What is wrong, image by image.
    pub problems: Vec<Problem>,
}

/// The layers images claim, by blob: each claim with its image's name.
type Claims = BTreeMap<Digest, Vec<(StoredLayer, String)>>;

impl ImageStore {
    /// Checks every blob, image and layer in the store: see the module
    /// documentation. Damaged blobs are set aside as they are found.
    pub fn check(&self) -> Result<CheckReport> {
        // Nothing is collected while the store is read.
        let _gc = self.content().hold_off_gc()?;
        let mut report = CheckReport::default();
        let mut verified = BTreeSet::new();
        let mut claims = Claims::new();
        self.check_images(&mut report, &mut verified, &mut claims)?;
        for (digest, size) in self.all_blobs()? {
            report.blobs += 1;
            report.bytes += size;
            // Manifests, indexes and configs were checked as they were read.
            if verified.contains(&digest) {
                continue;
            }
            match claims.get(&digest) {
                Some(claims) => check_layer(self.content(), claims, &mut report),
                None => check_blob(self.content(), &digest, &mut report),
            }
        }
        Ok(report)
    }

    /// Walks every named image's documents (checking each as it is read)
    /// and collects what its manifests say of their layers.
    fn check_images(
        &self,
        report: &mut CheckReport,
        verified: &mut BTreeSet<Digest>,
        claims: &mut Claims,
    ) -> Result<()> {
        let content = self.content();
        // (digest, media type, image name, whether it must be here)
        let mut todo: Vec<(Digest, String, String, bool)> = Vec::new();
        for image in self.list()? {
            match image.digest() {
                Ok(d) => todo.push((
                    d,
                    image.descriptor.media_type().to_string(),
                    image.name,
                    true,
                )),
                Err(e) => report.problems.push(Problem {
                    image: Some(image.name),
                    digest: None,
                    what: format!("its index.json entry is invalid: {e}"),
                }),
            }
        }
        let mut problem = |image: &str, digest: &Digest, what: String| {
            report.problems.push(Problem {
                image: Some(image.to_owned()),
                digest: Some(digest.clone()),
                what,
            });
        };
        let mut seen = BTreeSet::new();
        while let Some((digest, media_type, name, required)) = todo.pop() {
            if !seen.insert((digest.clone(), name.clone())) {
                continue;
            }
            let bytes = match read_document(content, &digest, verified) {
                Ok(bytes) => bytes,
                // An index lists every platform; a pull stores one.
                Err(Error::BlobNotFound(_)) if !required => continue,
                Err(e) => {
                    problem(&name, &digest, repair(&name, &e));
                    continue;
                }
            };
            match parse_document(&bytes, &media_type, &digest.to_string()) {
                Ok(Document::Index(index)) => {
                    for m in index.manifests() {
                        if let Ok(d) = Digest::try_from(m.digest()) {
                            todo.push((d, m.media_type().to_string(), name.clone(), false));
                        }
                    }
                }
                Ok(Document::Manifest(manifest)) => {
                    let config = Digest::try_from(manifest.config().digest())?;
                    let diff_ids = match read_document(content, &config, verified)
                        .and_then(|bytes| parse_config(&bytes, &config.to_string()))
                    {
                        Ok(c) => c.rootfs().diff_ids().clone(),
                        Err(e) => {
                            problem(&name, &config, repair(&name, &e));
                            Vec::new()
                        }
                    };
                    for (i, descriptor) in manifest.layers().iter().enumerate() {
                        let diff_id = diff_ids.get(i).and_then(|d| d.parse().ok());
                        let layer = match StoredLayer::new(descriptor, diff_id) {
                            Ok(layer) => layer,
                            Err(e) => {
                                problem(&name, &digest, format!("its manifest is refused: {e}"));
                                break;
                            }
                        };
                        if !content.contains(&layer.digest) {
                            let e = Error::BlobNotFound(layer.digest.to_string());
                            problem(&name, &layer.digest, repair(&name, &e));
                            continue;
                        }
                        claims
                            .entry(layer.digest.clone())
                            .or_default()
                            .push((layer, name.clone()));
                    }
                }
                Err(e) => problem(&name, &digest, format!("it cannot be read: {e}")),
            }
        }
        Ok(())
    }
}

/// Reads (and so checks) a manifest, index or config once.
fn read_document(
    content: &ContentStore,
    digest: &Digest,
    verified: &mut BTreeSet<Digest>,
) -> Result<Vec<u8>> {
    let bytes = content.read_blob(digest)?;
    verified.insert(digest.clone());
    Ok(bytes)
}

/// What is wrong with a blob of image `name`, and how to repair it.
fn repair(name: &str, error: &Error) -> String {
    match error {
        Error::BlobNotFound(_) => format!("it is missing: pull or load {name} again"),
        e => e.to_string(),
    }
}

/// Checks a layer blob against each distinct claim images make about it.
fn check_layer(content: &ContentStore, claims: &[(StoredLayer, String)], report: &mut CheckReport) {
    let mut checked = BTreeSet::new();
    for (layer, image) in claims {
        if !checked.insert(layer.diff_id.clone()) {
            continue;
        }
        let verdict = content.open_layer(layer).and_then(|reader| {
            if reader.known() {
                report.known += 1;
            } else if layer.diff_id.is_some() {
                report.decompressed += 1;
            }
            reader.finish()
        });
        if let Err(e) = verdict {
            let damaged = matches!(e, Error::DamagedBlob { .. } | Error::SizeMismatch { .. });
            report.problems.push(Problem {
                image: Some(image.clone()),
                digest: Some(layer.digest.clone()),
                what: e.to_string(),
            });
            // A damaged blob was set aside: no other claim can be checked.
            if damaged {
                break;
            }
        }
    }
}

/// Checks a blob no image's manifest names as a layer against its digest.
fn check_blob(content: &ContentStore, digest: &Digest, report: &mut CheckReport) {
    let actual = content.open_blob(digest).and_then(|mut file| {
        crate::store::digest_of(&mut file, digest.algorithm()).map_err(|source| Error::Io {
            action: "read",
            path: content.blob_path(digest),
            source,
        })
    });
    match actual {
        Ok(actual) if &actual == digest => {}
        Ok(actual) => {
            content.set_aside(digest);
            report.problems.push(Problem {
                image: None,
                digest: Some(digest.clone()),
                what: Error::DamagedBlob {
                    digest: digest.to_string(),
                    actual: actual.to_string(),
                }
                .to_string(),
            });
        }
        // Removed since the folder was listed.
        Err(Error::BlobNotFound(_)) => {}
        Err(e) => report.problems.push(Problem {
            image: None,
            digest: Some(digest.clone()),
            what: e.to_string(),
        }),
    }
}

//! Import and export: [`save`] writes images as an OCI image layout inside a
//! tar; [`load`] reads such a tar, or a `docker save` archive, into the store.
//!
//! Every blob that comes in goes through the content store's ingest, so its
//! digest is checked like a pulled one.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::error::IoContext;
use crate::layer::sniff;
use crate::manifest::{Document, descriptor_digest, parse_document};
use crate::media_type::{self, Compression};
use crate::store::{ImageStore, REF_NAME};
use crate::{Digest, Error, Reference, Result};

/// Writes the images `names` of `store` to `writer` as a tar of an OCI image
/// layout, each named by its `org.opencontainers.image.ref.name`.
pub fn save(store: &ImageStore, names: &[String], writer: impl Write) -> Result<()> {
    let mut entries = Vec::new();
    let mut blobs = BTreeSet::new();
    for name in names {
        let image = store.get(name)?;
        let mut descriptor =
            serde_json::to_value(&image.descriptor).map_err(|e| Error::InvalidDocument {
                what: name.clone(),
                kind: "descriptor",
                reason: e.to_string(),
            })?;
        descriptor["annotations"] = json!({ REF_NAME: name });
        entries.push(descriptor);
        let mut todo = vec![image.descriptor.clone()];
        while let Some(d) = todo.pop() {
            let digest = descriptor_digest(&d)?;
            if !store.content().contains(&digest) || !blobs.insert(digest.clone()) {
                continue;
            }
            let kind = media_type::kind(d.media_type().as_ref());
            if matches!(kind, media_type::Kind::Index | media_type::Kind::Manifest) {
                let bytes = store.content().read_blob(&digest)?;
                match parse_document(&bytes, d.media_type().as_ref(), &digest.to_string())? {
                    Document::Index(index) => todo.extend(index.manifests().iter().cloned()),
                    Document::Manifest(m) => {
                        todo.push(m.config().clone());
                        todo.extend(m.layers().iter().cloned());
                    }
                }
            }
        }
    }
    let mut tar = tar::Builder::new(writer);
    let index = json!({ "schemaVersion": 2, "manifests": entries }).to_string();
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    append_bytes(&mut tar, "index.json", index.as_bytes())?;
    for digest in &blobs {
        let path = store.content().blob_path(digest);
        let name = format!("blobs/{}/{}", digest.algorithm().name(), digest.hex());
        let mut file = File::open(&path).at("open", &path)?;
        tar.append_file(&name, &mut file)
            .at("write to the archive", &path)?;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .at("finish", "the archive")?;
    Ok(())
}

fn append_bytes(tar: &mut tar::Builder<impl Write>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
        .at("write to the archive", name)
}

/// Loads an OCI layout tar or a `docker save` archive (either possibly
/// compressed) into `store`; returns the names of the images loaded.
pub fn load(store: &ImageStore, archive: &Path) -> Result<Vec<String>> {
    let invalid = |reason: String| Error::InvalidArchive {
        path: archive.to_path_buf(),
        reason,
    };
    let mut file = File::open(archive).at("open", archive)?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head).at("read", archive)?;
    let file = File::open(archive).at("open", archive)?;
    let reader = crate::layer::decoder(sniff(&head[..n]), std::io::BufReader::new(file))?;
    // Unpack into the ingest folder (same file system as the store), then ingest.
    let scratch = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(store.content().ingest_dir())
        .at("create a folder in", store.content().ingest_dir())?;
    let _gc = store.content().hold_off_gc()?;
    let mut unpacker = crate::layer::Unpacker::new(scratch.path())?;
    unpacker.apply_layer(reader, &archive.display().to_string())?;
    let dir = scratch.path();
    if dir.join("index.json").is_file() && dir.join("oci-layout").is_file() {
        load_oci(store, dir)
    } else if dir.join("manifest.json").is_file() {
        load_docker(store, dir)
    } else {
        Err(invalid("it holds neither an OCI image layout (oci-layout, index.json) nor a docker save (manifest.json)".into()))
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).at("read", path)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidDocument {
        what: path.display().to_string(),
        kind: "JSON file",
        reason: e.to_string(),
    })
}

/// Copies a blob file into the store, checking its digest.
fn ingest_file(store: &ImageStore, path: &Path, digest: &Digest) -> Result<()> {
    let size = std::fs::metadata(path).at("read", path)?.len();
    match store.content().begin_ingest(digest, size)? {
        crate::store::IngestStart::Present => Ok(()),
        crate::store::IngestStart::Writer(mut writer) => {
            writer.reset()?;
            let mut file = File::open(path).at("open", path)?;
            let mut buf = vec![0u8; 1 << 17];
            loop {
                let n = file.read(&mut buf).at("read", path)?;
                if n == 0 {
                    break;
                }
                writer.write(&buf[..n])?;
            }
            writer.commit()
        }
    }
}

fn load_oci(store: &ImageStore, dir: &Path) -> Result<Vec<String>> {
    let index = read_json(&dir.join("index.json"))?;
    let blob_dir = dir.join("blobs");
    for algorithm in std::fs::read_dir(&blob_dir)
        .at("list", &blob_dir)?
        .flatten()
    {
        let alg = algorithm.file_name().to_string_lossy().into_owned();
        for blob in std::fs::read_dir(algorithm.path())
            .at("list", algorithm.path())?
            .flatten()
        {
            let digest: Digest = format!("{alg}:{}", blob.file_name().to_string_lossy()).parse()?;
            ingest_file(store, &blob.path(), &digest)?;
        }
    }
    let mut names = Vec::new();
    for entry in index["manifests"].as_array().into_iter().flatten() {
        let Some(name) = entry["annotations"][REF_NAME]
            .as_str()
            .or_else(|| entry["annotations"]["io.containerd.image.name"].as_str())
        else {
            continue;
        };
        let descriptor =
            serde_json::from_value(entry.clone()).map_err(|e| Error::InvalidDocument {
                what: format!("index.json entry {name}"),
                kind: "descriptor",
                reason: e.to_string(),
            })?;
        store.set(name, &descriptor)?;
        names.push(name.to_owned());
    }
    Ok(names)
}

fn load_docker(store: &ImageStore, dir: &Path) -> Result<Vec<String>> {
    let manifest = read_json(&dir.join("manifest.json"))?;
    let mut names = Vec::new();
    for image in manifest.as_array().into_iter().flatten() {
        let config_path = dir.join(image["Config"].as_str().unwrap_or_default());
        let config_bytes = std::fs::read(&config_path).at("read", &config_path)?;
        let config_digest = store.content().put_new_blob(&config_bytes)?;
        let mut layers = Vec::new();
        for layer in image["Layers"].as_array().into_iter().flatten() {
            let path = dir.join(layer.as_str().unwrap_or_default());
            let mut file = File::open(&path).at("open", &path)?;
            let digest =
                crate::store::digest_of(&mut file, crate::Algorithm::Sha256).at("read", &path)?;
            let mut head = [0u8; 4];
            let n = File::open(&path)
                .and_then(|mut f| f.read(&mut head))
                .at("read", &path)?;
            let media_type = match sniff(&head[..n]) {
                Compression::Gzip => media_type::OCI_LAYER_GZIP,
                Compression::Zstd => media_type::OCI_LAYER_ZSTD,
                Compression::None => media_type::OCI_LAYER,
            };
            ingest_file(store, &path, &digest)?;
            let size = std::fs::metadata(&path).at("read", &path)?.len();
            layers
                .push(json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
        }
        let oci_manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": {"mediaType": media_type::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": layers,
        });
        let bytes = oci_manifest.to_string().into_bytes();
        let digest = store.content().put_new_blob(&bytes)?;
        let descriptor = serde_json::from_value(json!({
            "mediaType": media_type::OCI_MANIFEST,
            "digest": digest.to_string(),
            "size": bytes.len(),
        }))
        .map_err(|e| Error::InvalidDocument {
            what: digest.to_string(),
            kind: "descriptor",
            reason: e.to_string(),
        })?;
        let tags: Vec<String> = image["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .map(|t| {
                t.parse::<Reference>()
                    .map_or(t.to_owned(), |r| r.to_string())
            })
            .collect();
        let tags = if tags.is_empty() {
            vec![digest.to_string()]
        } else {
            tags
        };
        for tag in tags {
            store.set(&tag, &descriptor)?;
            names.push(tag);
        }
    }
    Ok(names)
}

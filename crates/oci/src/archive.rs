//! Import and export: [`save`] writes images as an OCI image layout inside a
//! tar; [`load`] reads such a tar, or a `docker save` archive, into the store.
//!
//! Every blob that comes in goes through the content store's ingest, so its
//! digest is checked like a pulled one.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
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
        let file = File::open(&path).at("open", &path)?;
        let size = file.metadata().at("stat", &path)?.len();
        // Checked as it is copied: a damaged blob never leaves the store.
        let mut reader = crate::digest::HashingReader::new(file, digest.algorithm());
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o444);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, &name, &mut reader)
            .at("write to the archive", &path)?;
        let actual = reader.finish();
        if &actual != digest {
            return Err(Error::DamagedBlob {
                digest: digest.to_string(),
                actual: actual.to_string(),
            });
        }
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
///
/// The archive is unpacked into a scratch folder in the store's ingest
/// folder, and every member is then opened as if that folder were `/`
/// (`RESOLVE_IN_ROOT`): a symlink or a `../` in `manifest.json` can name
/// only the archive's own files, never the host's.
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
    let dir = Members::open(scratch.path())?;
    if dir.is_file("index.json") && dir.is_file("oci-layout") {
        load_oci(store, &dir)
    } else if dir.is_file("manifest.json") {
        load_docker(store, &dir)
    } else {
        Err(invalid("it holds neither an OCI image layout (oci-layout, index.json) nor a docker save (manifest.json)".into()))
    }
}

/// The members of an unpacked archive, opened in-root.
struct Members {
    path: std::path::PathBuf,
    fd: OwnedFd,
}

impl Members {
    fn open(path: &Path) -> Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .at("open", path)?;
        Ok(Self {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// Opens `relative` (read-only, or as a directory to list with
    /// `directory`) as if the archive's folder were `/`.
    fn member(&self, relative: &str, directory: bool) -> Result<File> {
        let flags = if directory {
            OFlags::RDONLY | OFlags::DIRECTORY
        } else {
            OFlags::RDONLY
        };
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        rustix::fs::openat2(
            &self.fd,
            relative,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve,
        )
        .map(File::from)
        .at("open the archive member", self.path.join(relative))
    }

    fn is_file(&self, relative: &str) -> bool {
        self.member(relative, false)
            .and_then(|f| f.metadata().at("read", &self.path))
            .is_ok_and(|m| m.is_file())
    }

    fn read_json(&self, relative: &str) -> Result<Value> {
        let shown = self.path.join(relative);
        let bytes = crate::limits::read_limited(
            self.member(relative, false)?,
            crate::limits::MAX_JSON_FILE_BYTES,
            &format!("the archive's {relative}"),
        )?
        .at("read", &shown)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidDocument {
            what: shown.display().to_string(),
            kind: "JSON file",
            reason: e.to_string(),
        })
    }

    /// The names in the directory `relative`.
    fn list(&self, relative: &str) -> Result<Vec<String>> {
        let dir = self.member(relative, true)?;
        let shown = self.path.join(relative);
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::new(OwnedFd::from(dir)).at("list", &shown)? {
            let entry = entry.at("list", &shown)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// Copies an archive member into the store, checking its digest.
fn ingest_file(store: &ImageStore, mut file: File, shown: &Path, digest: &Digest) -> Result<()> {
    let size = file.metadata().at("read", shown)?.len();
    match store.content().begin_ingest(digest, size)? {
        crate::store::IngestStart::Present => Ok(()),
        crate::store::IngestStart::Writer(mut writer) => {
            writer.reset()?;
            let mut buf = vec![0u8; 1 << 17];
            loop {
                let n = file.read(&mut buf).at("read", shown)?;
                if n == 0 {
                    break;
                }
                writer.write(&buf[..n])?;
            }
            writer.commit()
        }
    }
}

fn load_oci(store: &ImageStore, dir: &Members) -> Result<Vec<String>> {
    let index = dir.read_json("index.json")?;
    for alg in dir.list("blobs")? {
        for blob in dir.list(&format!("blobs/{alg}"))? {
            let digest: Digest = format!("{alg}:{blob}").parse()?;
            let relative = format!("blobs/{alg}/{blob}");
            let file = dir.member(&relative, false)?;
            ingest_file(store, file, &dir.path.join(&relative), &digest)?;
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

fn load_docker(store: &ImageStore, dir: &Members) -> Result<Vec<String>> {
    let manifest = dir.read_json("manifest.json")?;
    let mut names = Vec::new();
    for image in manifest.as_array().into_iter().flatten() {
        let config_name = image["Config"].as_str().unwrap_or_default();
        let config_bytes = crate::limits::read_limited(
            dir.member(config_name, false)?,
            crate::limits::MAX_CONFIG_BYTES,
            &format!("the archive's image config {config_name}"),
        )?
        .at("read", dir.path.join(config_name))?;
        let config_digest = store.content().put_new_blob(&config_bytes)?;
        let mut layers = Vec::new();
        for layer in image["Layers"].as_array().into_iter().flatten() {
            let name = layer.as_str().unwrap_or_default();
            let shown = dir.path.join(name);
            let mut file = dir.member(name, false)?;
            let digest =
                crate::store::digest_of(&mut file, crate::Algorithm::Sha256).at("read", &shown)?;
            let mut head = [0u8; 4];
            let n = dir
                .member(name, false)?
                .read(&mut head)
                .at("read", &shown)?;
            let media_type = match sniff(&head[..n]) {
                Compression::Gzip => media_type::OCI_LAYER_GZIP,
                Compression::Zstd => media_type::OCI_LAYER_ZSTD,
                Compression::None => media_type::OCI_LAYER,
            };
            let size = file.metadata().at("read", &shown)?.len();
            ingest_file(store, dir.member(name, false)?, &shown, &digest)?;
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

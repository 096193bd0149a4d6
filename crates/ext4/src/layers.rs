//! Applying OCI layers: tar streams (plain, gzip or zstd, told apart by their
//! first bytes) whose entries are written into the image as they stream by.
//!
//! A `.wh.<name>` entry removes `<name>` from lower layers; `.wh..wh..opq`
//! hides everything lower layers put in its directory. An entry replaces
//! what is at its path, except a directory over a directory, which merges.
//! Hard links whose target comes later in the same layer are made when the
//! layer ends. Entry paths and hard-link targets are resolved inside the
//! image root (see `writer::resolve`): nothing a layer holds can reach
//! outside the image, nor write through a symlink at the entry's own path. Blocks of removed files are freed, so they are neither in the
//! image nor in the image file.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::rc::Rc;

use crate::layer_budget::{Budget, Capped};
use crate::metadata::{DeviceNumber, Metadata, Timestamp, Xattr};
use crate::writer::{Special, display, split_path};
use crate::{Error, Formatter, Result};

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Tells the compression from the first bytes of a stream.
    pub fn detect(prefix: &[u8]) -> Self {
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }
}

/// Parses a PAX time such as `1700000000.123456789`.
fn pax_time(value: &[u8]) -> Option<Timestamp> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanoseconds = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    Some(Timestamp {
        seconds,
        nanoseconds,
    })
}

fn entry_metadata<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Metadata> {
    let header = entry.header();
    let mtime = Timestamp::from_seconds(header.mtime().unwrap_or(0) as i64);
    let mut meta = Metadata::new((header.mode().unwrap_or(0o644) & 0o7777) as u16, mtime);
    meta.uid = header.uid().unwrap_or(0) as u32;
    meta.gid = header.gid().unwrap_or(0) as u32;
    let mut atime = None;
    let mut ctime = None;
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            match key {
                "mtime" => meta.mtime = pax_time(value).unwrap_or(meta.mtime),
                "atime" => atime = pax_time(value),
                "ctime" => ctime = pax_time(value),
                "uid" => {
                    meta.uid = ext
                        .value()
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(meta.uid)
                }
                "gid" => {
                    meta.gid = ext
                        .value()
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(meta.gid)
                }
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        meta.xattrs.push(Xattr {
                            name: name.to_string(),
                            value: value.to_vec(),
                        });
                    }
                }
            }
        }
    }
    meta.atime = atime.unwrap_or(meta.mtime);
    meta.ctime = ctime.unwrap_or(meta.mtime);
    meta.crtime = meta.mtime;
    Ok(meta)
}

/// Counts bytes read, to tell a short entry from a whole one.
struct Counted<'a, R: Read> {
    inner: &'a mut R,
    count: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl Formatter {
    /// Applies one layer on top of what the image holds; the stream may be
    /// a plain tar or gzip- or zstd-compressed.
    pub fn unpack_layer(&mut self, layer: impl Read) -> Result<()> {
        self.layer += 1;
        let number = usize::from(self.layer);
        let tar_error = move |source| Error::Tar {
            layer: number,
            source,
        };
        let mut buffered = BufReader::with_capacity(1 << 20, layer);
        let prefix = buffered.fill_buf().map_err(tar_error)?;
        let stream: Box<dyn Read> = match Compression::detect(prefix) {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buffered).map_err(tar_error)?),
        };
        let tripped = Rc::new(Cell::new(false));
        let capacity = self.capacity();
        let stream = Capped::new(stream, capacity, tripped.clone());
        let mut budget = Budget::new(number, capacity);
        let mut archive = tar::Archive::new(stream);
        let mut deferred: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut last = Vec::new();
        let beyond = |last: &[u8]| Error::LayerBeyondImage {
            layer: number,
            path: display(if last.is_empty() {
                b"(its first entry)"
            } else {
                last
            }),
            capacity,
        };
        let entries = archive.entries().map_err(tar_error)?;
        for entry in entries {
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(_) if tripped.get() => return Err(beyond(&last)),
                Err(e) => return Err(tar_error(e)),
            };
            last = entry.path_bytes().into_owned();
            match self.apply_entry(number, &mut entry, &mut deferred, &mut budget) {
                Err(_) if tripped.get() => return Err(beyond(&last)),
                result => result?,
            }
        }
        for (link, target) in deferred {
            if !self.exists(display(&target)) {
                return Err(Error::DanglingHardLink {
                    layer: number,
                    link: display(&link),
                    target: display(&target),
                });
            }
            self.add_hard_link(display(&link), display(&target))?;
        }
        Ok(())
    }

    fn apply_entry<R: Read>(
        &mut self,
        layer: usize,
        entry: &mut tar::Entry<'_, R>,
        deferred: &mut Vec<(Vec<u8>, Vec<u8>)>,
        budget: &mut Budget,
    ) -> Result<()> {
        let path = entry.path_bytes().into_owned();
        let refuse = |reason| Error::UnsafeEntry {
            layer,
            path: display(&path),
            reason,
        };
        let names = match split_path(&path) {
            Ok(names) => names,
            Err(Error::InvalidPath { reason, .. }) => return Err(refuse(reason)),
            Err(e) => return Err(e),
        };
        let clean: PathBuf = display(&names.join(&b'/'));
        if let Some((name, parents)) = names.split_last() {
            if parents.iter().any(|p| p.starts_with(WHITEOUT)) {
                return Err(refuse(
                    "a whiteout (.wh.) name is not a directory and holds no entries",
                ));
            }
            if *name == OPAQUE {
                return self.clear_lower(&parents.join(&b'/'));
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT) {
                // `.wh.`, `.wh..` and `.wh...` would name the directory
                // holding the whiteout or its parent, not an entry in it.
                if matches!(hidden, b"" | b"." | b"..") {
                    return Err(refuse(
                        "a whiteout must name an entry of its directory, not nothing, `.` or `..`",
                    ));
                }
                let mut target = parents.join(&b'/');
                target.push(b'/');
                target.extend_from_slice(hidden);
                self.remove(display(&target))?;
                return Ok(());
            }
        }
        let tar_error = |source| Error::Tar { layer, source };
        let meta = entry_metadata(entry).map_err(tar_error)?;
        let header = entry.header();
        let kind = header.entry_type();
        let device = || DeviceNumber {
            major: header.device_major().ok().flatten().unwrap_or(0),
            minor: header.device_minor().ok().flatten().unwrap_or(0),
        };
        use tar::EntryType as T;
        match kind {
            T::Directory => self.create_dir(&clean, &meta),
            T::Regular | T::Continuous | T::GNUSparse => {
                // The size is the header's (or, for a GNU sparse file, its
                // whole size with holes): refused before any data is read.
                let expected = entry.size();
                budget.claim(&clean, expected)?;
                let mut counted = Counted {
                    inner: entry,
                    count: 0,
                };
                self.add_file(&clean, &meta, &mut counted)?;
                if counted.count != expected {
                    return Err(tar_error(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the layer ends inside {} ({} of {expected} bytes); it is truncated",
                            clean.display(),
                            counted.count
                        ),
                    )));
                }
                Ok(())
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("a symlink without a target"))?;
                self.add_symlink(&clean, &meta, display(&target))
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("a hard link without a target"))?;
                // The target is resolved as an entry path is: in the image
                // root, no `..`, its last name not followed.
                let target = match split_path(&target) {
                    Ok(names) if !names.is_empty() => names.join(&b'/'),
                    Ok(_) => return Err(refuse("its link target is the image root, not a file")),
                    Err(Error::InvalidPath {
                        reason: "it has a '..' component",
                        ..
                    }) => return Err(refuse("its link target has a '..' component")),
                    Err(_) => return Err(refuse("its link target is not a path to a file")),
                };
                if self.exists(display(&target)) {
                    self.add_hard_link(&clean, display(&target))
                } else {
                    deferred.push((names.join(&b'/'), target));
                    Ok(())
                }
            }
            T::Char => self.add_special(&clean, &meta, Special::CharDevice(device())),
            T::Block => self.add_special(&clean, &meta, Special::BlockDevice(device())),
            T::Fifo => self.add_special(&clean, &meta, Special::Fifo),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Compression, pax_time};

    #[test]
    fn pax_times_keep_their_nanoseconds() {
        let t = pax_time(b"1700000000.5").expect("parses");
        assert_eq!((t.seconds, t.nanoseconds), (1_700_000_000, 500_000_000));
        assert_eq!(pax_time(b"12").map(|t| t.seconds), Some(12));
    }

    #[test]
    fn compression_is_told_by_magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
    }
}

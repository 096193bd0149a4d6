//! Copying a host directory tree into an image: every entry with its mode,
//! owner, times (nanoseconds and creation time), xattrs and hard links; file
//! holes stay holes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::metadata::{DeviceNumber, Metadata, Timestamp, Xattr};
use crate::writer::Special;
use crate::{Error, Formatter, Result};

/// Files larger than this are read by data segments (`SEEK_DATA`).
const SEGMENTED_READ: u64 = 1 << 20;

fn host_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// The extended attributes of a host path (not following symlinks).
fn read_xattrs(path: &Path) -> Result<Vec<Xattr>> {
    let mut names = vec![0u8; 1024];
    let len = loop {
        match rustix::fs::llistxattr(path, &mut names) {
            Ok(len) => break len,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(host_error("cannot list the xattrs of", path)(e.into())),
        }
    };
    let mut xattrs = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 256];
        let got = loop {
            match rustix::fs::lgetxattr(path, name, &mut value) {
                Ok(got) => break got,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(e) => return Err(host_error("cannot read an xattr of", path)(e.into())),
            }
        };
        value.truncate(got);
        xattrs.push(Xattr {
            name: String::from_utf8_lossy(name).into_owned(),
            value,
        });
    }
    Ok(xattrs)
}

/// The metadata of a host entry.
fn metadata_of(path: &Path, stat: &fs::Metadata) -> Result<Metadata> {
    let time = |s: i64, ns: i64| Timestamp {
        seconds: s,
        nanoseconds: ns.clamp(0, 999_999_999) as u32,
    };
    let crtime = stat
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(time(stat.ctime(), stat.ctime_nsec()), |d| Timestamp {
            seconds: d.as_secs() as i64,
            nanoseconds: d.subsec_nanos(),
        });
    Ok(Metadata {
        permissions: (stat.mode() & 0o7777) as u16,
        uid: stat.uid(),
        gid: stat.gid(),
        atime: time(stat.atime(), stat.atime_nsec()),
        mtime: time(stat.mtime(), stat.mtime_nsec()),
        ctime: time(stat.ctime(), stat.ctime_nsec()),
        crtime,
        xattrs: read_xattrs(path)?,
    })
}

fn device(rdev: u64) -> DeviceNumber {
    DeviceNumber {
        major: rustix::fs::major(rdev),
        minor: rustix::fs::minor(rdev),
    }
}

impl Formatter {
    /// Copies the tree under the host directory `source` into the image root
    /// (the root takes `source`'s own metadata). Files with several links
    /// become hard links in the image.
    pub fn add_dir_tree(&mut self, source: impl AsRef<Path>) -> Result<()> {
        let source = source.as_ref();
        let stat = fs::symlink_metadata(source).map_err(host_error("cannot read", source))?;
        if !stat.is_dir() {
            return Err(Error::NotADirectory {
                path: source.to_path_buf(),
            });
        }
        self.create_dir("/", &metadata_of(source, &stat)?)?;
        let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let mut stack = vec![(source.to_path_buf(), PathBuf::new())];
        let mut small = Vec::new();
        while let Some((host_dir, image_dir)) = stack.pop() {
            let mut names: Vec<_> = fs::read_dir(&host_dir)
                .map_err(host_error("cannot list", &host_dir))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()
                .map_err(host_error("cannot list", &host_dir))?;
            names.sort();
            let mut subdirs = Vec::new();
            for name in names {
                let host = host_dir.join(&name);
                let image = image_dir.join(&name);
                let stat = fs::symlink_metadata(&host).map_err(host_error("cannot read", &host))?;
                let kind = stat.file_type();
                if !kind.is_dir() && stat.nlink() > 1 {
                    let key = (stat.dev(), stat.ino());
                    if let Some(first) = links.get(&key) {
                        self.add_hard_link(&image, first)?;
                        continue;
                    }
                    links.insert(key, image.clone());
                }
                let meta = metadata_of(&host, &stat)?;
                if kind.is_dir() {
                    self.create_dir(&image, &meta)?;
                    subdirs.push((host, image));
                } else if kind.is_file() {
                    let file = File::open(&host).map_err(host_error("cannot open", &host))?;
                    if stat.len() > SEGMENTED_READ {
                        self.add_host_file(&image, &meta, &file)?;
                    } else {
                        // One read of the size lstat gave, no probe for
                        // the end: a file changing meanwhile is copied as
                        // it was when listed.
                        small.resize(stat.len() as usize, 0);
                        (&file)
                            .read_exact(&mut small)
                            .map_err(host_error("cannot read", &host))?;
                        self.add_file(&image, &meta, &mut small.as_slice())?;
                    }
                } else if kind.is_symlink() {
                    let target =
                        fs::read_link(&host).map_err(host_error("cannot read the link", &host))?;
                    self.add_symlink(&image, &meta, &target)?;
                } else {
                    let special = if kind.is_char_device() {
                        Special::CharDevice(device(stat.rdev()))
                    } else if kind.is_block_device() {
                        Special::BlockDevice(device(stat.rdev()))
                    } else if kind.is_fifo() {
                        Special::Fifo
                    } else {
                        Special::Socket
                    };
                    self.add_special(&image, &meta, special)?;
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }
}

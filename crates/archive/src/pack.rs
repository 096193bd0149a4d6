//! Packing: a file or tree inside a [`Root`] written as a tar stream.
//!
//! The walk goes from descriptor to descriptor (`openat` with `O_NOFOLLOW`
//! on the directory already open), so a symlink swapped in while it runs
//! is archived as a symlink, never followed. Symlinks are kept as symlinks,
//! files with several links as one file and hard links to it, modes,
//! owners and modification times as they are. A file that shrinks while
//! it is read is padded with zeros to the size its header announced.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use tar::{EntryType, Header};

use crate::error::{ArchiveError, At, Result};
use crate::{MAX_DEPTH, Root};

/// Writes `path` (inside `root`) to `out` as a tar stream whose top entry is
/// named `name`; a symlink at `path` is followed with `follow_link`. Returns
/// the number of entries written.
pub fn pack(
    root: &Root,
    path: &Path,
    name: &Path,
    follow_link: bool,
    out: impl Write,
) -> Result<u64> {
    let mut packer = Packer {
        builder: tar::Builder::new(out),
        links: HashMap::new(),
        entries: 0,
    };
    let top = root
        .open_at(path, OFlags::PATH, follow_link)
        .at("look up", path)?;
    let stat = rustix::fs::fstat(&top).at("look up", path)?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => {
            let dir = root
                .open_at(path, OFlags::RDONLY | OFlags::DIRECTORY, follow_link)
                .at("open", path)?;
            packer.directory(dir, name, path, 0)?;
        }
        FileType::RegularFile => {
            let file = root
                .open_at(path, OFlags::RDONLY | OFlags::NOCTTY, follow_link)
                .at("open", path)?;
            packer.file(file, name, path)?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(&top, "", Vec::new()).at("read the link", path)?;
            packer.symlink(&stat, name, OsStr::from_bytes(target.as_bytes()))?;
        }
        _ => packer.special(&stat, name)?,
    }
    packer
        .builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(ArchiveError::Stream)?;
    Ok(packer.entries)
}

struct Packer<W: Write> {
    builder: tar::Builder<W>,
    /// Files with more than one link already archived, by device and inode.
    links: HashMap<(u64, u64), PathBuf>,
    entries: u64,
}

/// A header with `stat`'s mode, owner and time.
fn header(stat: &Stat, kind: EntryType) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(stat.st_mode & 0o7777);
    header.set_uid(u64::from(stat.st_uid));
    header.set_gid(u64::from(stat.st_gid));
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header.set_size(0);
    header
}

impl<W: Write> Packer<W> {
    fn append(&mut self, mut header: Header, name: &Path, data: impl Read) -> Result<()> {
        self.builder
            .append_data(&mut header, name, data)
            .map_err(ArchiveError::Stream)?;
        self.entries += 1;
        Ok(())
    }

    /// A hard link to an entry already written, if `stat` names one.
    fn hard_link(&mut self, stat: &Stat, name: &Path) -> Result<bool> {
        if stat.st_nlink < 2 {
            return Ok(false);
        }
        let key = (stat.st_dev, stat.st_ino);
        let Some(first) = self.links.get(&key).cloned() else {
            self.links.insert(key, name.to_path_buf());
            return Ok(false);
        };
        let mut header = header(stat, EntryType::Link);
        self.builder
            .append_link(&mut header, name, &first)
            .map_err(ArchiveError::Stream)?;
        self.entries += 1;
        Ok(true)
    }

    fn file(&mut self, file: OwnedFd, name: &Path, shown: &Path) -> Result<()> {
        let stat = rustix::fs::fstat(&file).at("look up", shown)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            // Swapped for something else since it was listed.
            return self.special(&stat, name);
        }
        if self.hard_link(&stat, name)? {
            return Ok(());
        }
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        let mut header = header(&stat, EntryType::Regular);
        header.set_size(size);
        let data = std::fs::File::from(file)
            .take(size)
            .chain(std::io::repeat(0))
            .take(size);
        self.append(header, name, data)
    }

    fn symlink(&mut self, stat: &Stat, name: &Path, target: &OsStr) -> Result<()> {
        if self.hard_link(stat, name)? {
            return Ok(());
        }
        let mut header = header(stat, EntryType::Symlink);
        self.builder
            .append_link(&mut header, name, target)
            .map_err(ArchiveError::Stream)?;
        self.entries += 1;
        Ok(())
    }

    /// A FIFO or device node (sockets are skipped, as GNU tar skips them).
    fn special(&mut self, stat: &Stat, name: &Path) -> Result<()> {
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Fifo => EntryType::Fifo,
            FileType::CharacterDevice => EntryType::Char,
            FileType::BlockDevice => EntryType::Block,
            _ => {
                tracing::debug!(name = %name.display(), "a socket is not archived");
                return Ok(());
            }
        };
        if self.hard_link(stat, name)? {
            return Ok(());
        }
        let mut header = header(stat, kind);
        if kind != EntryType::Fifo {
            let _ = header.set_device_major(rustix::fs::major(stat.st_rdev));
            let _ = header.set_device_minor(rustix::fs::minor(stat.st_rdev));
        }
        self.append(header, name, std::io::empty())
    }

    fn directory(&mut self, dir: OwnedFd, name: &Path, shown: &Path, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(ArchiveError::TooDeep(shown.to_path_buf()));
        }
        let stat = rustix::fs::fstat(&dir).at("look up", shown)?;
        self.append(header(&stat, EntryType::Directory), name, std::io::empty())?;
        let mut names = Vec::new();
        let listing = rustix::fs::Dir::read_from(&dir).at("list", shown)?;
        for entry in listing {
            let entry = entry.at("list", shown)?;
            let child = entry.file_name().to_bytes();
            if child != b"." && child != b".." {
                names.push(OsStr::from_bytes(child).to_os_string());
            }
        }
        names.sort();
        for child in names {
            let child_name = name.join(&child);
            let child_shown = shown.join(&child);
            let stat = match rustix::fs::statat(&dir, &child, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                // Removed since it was listed.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e).at("look up", &child_shown),
            };
            let open = |flags: OFlags| {
                rustix::fs::openat(
                    &dir,
                    &child,
                    flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            };
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => {
                    let fd = open(OFlags::RDONLY | OFlags::DIRECTORY).at("open", &child_shown)?;
                    self.directory(fd, &child_name, &child_shown, depth + 1)?;
                }
                FileType::RegularFile => {
                    let fd = open(OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK)
                        .at("open", &child_shown)?;
                    self.file(fd, &child_name, &child_shown)?;
                }
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(&dir, &child, Vec::new())
                        .at("read the link", &child_shown)?;
                    self.symlink(&stat, &child_name, OsStr::from_bytes(target.as_bytes()))?;
                }
                _ => self.special(&stat, &child_name)?,
            }
        }
        Ok(())
    }
}

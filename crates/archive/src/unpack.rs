//! Unpacking: a tar stream written into a folder inside a [`Root`].
//!
//! Each entry's parent is opened with `RESOLVE_IN_ROOT` (missing folders
//! made on the way), and the entry itself is made with `*at` calls on that
//! descriptor, never following its last name: a symlink planted by an
//! earlier entry (or already there) can redirect a later entry only to
//! another place inside the root, never outside it. `..` in an entry's name
//! or a hard link's target is refused; absolute names are taken relative to
//! the destination. A directory never replaces a non-directory nor the
//! reverse (Docker refuses both); other files replace what is there.
//! Directory modes, owners and times are set at the end, deepest first, so
//! a read-only directory can still be filled.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;
use tar::EntryType;

use crate::Root;
use crate::error::{ArchiveError, At, Result};
use crate::root::split;

/// Renames the archive's top entry: `from` and everything under it land at
/// `to` (a path relative to the destination; empty is the destination
/// itself). Entries outside `from` are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebase {
    /// The top entry's name in the archive.
    pub from: PathBuf,
    /// Where it lands, relative to the destination.
    pub to: PathBuf,
}

/// How an archive is unpacked.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Give entries the archive's owners (else they belong to the caller).
    pub keep_owners: bool,
    /// Make character and block devices (else they are skipped).
    pub keep_devices: bool,
    /// Clear set-user-id and set-group-id bits of files (not directories)
    /// whose owners are not kept: a file the caller ends up owning should
    /// not run as the caller.
    pub drop_setid_of_new_owner: bool,
    /// Rename the top entry.
    pub rebase: Option<Rebase>,
}

/// Unpacks the tar stream `archive` into folder `destination` inside
/// `root`; returns the number of entries made.
pub fn unpack(
    root: &Root,
    destination: &Path,
    archive: impl Read,
    options: &UnpackOptions,
) -> Result<u64> {
    let mut unpacker = Unpacker {
        root,
        destination,
        options,
        directories: Vec::new(),
        parent: None,
        count: 0,
    };
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().map_err(ArchiveError::Stream)? {
        let entry = entry.map_err(ArchiveError::Stream)?;
        unpacker.entry(entry)?;
    }
    unpacker.finish()?;
    Ok(unpacker.count)
}

/// What a directory gets once everything is in it.
struct DirectoryMeta {
    path: PathBuf,
    mode: u32,
    owner: (u32, u32),
    mtime: i64,
}

struct Unpacker<'a> {
    root: &'a Root,
    destination: &'a Path,
    options: &'a UnpackOptions,
    directories: Vec<DirectoryMeta>,
    /// The parent opened last (entries come grouped by folder); forgotten
    /// whenever something is removed, which can change how paths resolve.
    parent: Option<(PathBuf, OwnedFd)>,
    count: u64,
}

/// `name` as a path relative to the destination, `..` refused.
fn clean(name: &Path, entry: &str) -> Result<PathBuf> {
    let mut clean = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(ArchiveError::Refused {
                    entry: entry.to_owned(),
                    detail: "its name climbs outside the destination with '..'".to_owned(),
                });
            }
        }
    }
    Ok(clean)
}

/// The target an entry that is `what` (a symlink, a hard link) names.
fn link_target<R: Read>(entry: &tar::Entry<'_, R>, shown: &str, what: &str) -> Result<PathBuf> {
    entry
        .link_name()
        .map_err(ArchiveError::Stream)?
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| ArchiveError::Refused {
            entry: shown.to_owned(),
            detail: format!("{what} without a target"),
        })
}

fn timestamps(mtime: i64) -> Timestamps {
    let time = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

impl Unpacker<'_> {
    /// Where entry name `name` lands, relative to the destination.
    fn place(&self, name: &Path, entry: &str) -> Result<PathBuf> {
        let name = clean(name, entry)?;
        let Some(rebase) = &self.options.rebase else {
            return Ok(name);
        };
        let from = clean(&rebase.from, entry)?;
        match name.strip_prefix(&from) {
            Ok(rest) => Ok(rebase.to.join(rest)),
            Err(_) => Err(ArchiveError::Refused {
                entry: entry.to_owned(),
                detail: format!("it is not under the archive's top entry {}", from.display()),
            }),
        }
    }

    /// The parent folder of `path` (relative to the destination), made
    /// when missing.
    fn parent_of(&mut self, path: &Path) -> Result<OwnedFd> {
        let parent = path.parent().unwrap_or(Path::new(""));
        if let Some((cached, fd)) = &self.parent
            && cached == parent
        {
            return fd.try_clone().at("open the folder", parent);
        }
        let fd = self.root.dir_creating(&self.destination.join(parent))?;
        let copy = fd.try_clone().at("open the folder", parent)?;
        self.parent = Some((parent.to_path_buf(), copy));
        Ok(fd)
    }

    /// Removes what is at `name` in `dir` unless it is a directory;
    /// whether a directory is there.
    fn clear(&mut self, dir: &OwnedFd, name: &OsStr, shown: &Path) -> Result<bool> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => Ok(true),
            Ok(_) => {
                self.parent = None;
                rustix::fs::unlinkat(dir, name, AtFlags::empty()).at("replace", shown)?;
                Ok(false)
            }
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e).at("look up", shown),
        }
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path().map_err(ArchiveError::Stream)?.into_owned();
        let shown_name = raw.display().to_string();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        let path = self.place(&raw, &shown_name)?;
        let shown = Path::new("/").join(self.destination).join(&path);
        let header = entry.header();
        let mode = header.mode().map_err(ArchiveError::Stream)? & 0o7777;
        let owner = (
            u32::try_from(header.uid().map_err(ArchiveError::Stream)?).unwrap_or(0),
            u32::try_from(header.gid().map_err(ArchiveError::Stream)?).unwrap_or(0),
        );
        let mtime = i64::try_from(header.mtime().map_err(ArchiveError::Stream)?).unwrap_or(0);
        let Some((_, name)) = split(&path) else {
            // The destination itself: only a directory can be it.
            if kind != EntryType::Directory {
                return Err(ArchiveError::Refused {
                    entry: shown_name,
                    detail: "only a directory can be the destination folder itself".to_owned(),
                });
            }
            self.directories.push(DirectoryMeta {
                path,
                mode,
                owner,
                mtime,
            });
            self.count += 1;
            return Ok(());
        };
        let name = name.to_os_string();
        let dir = self.parent_of(&path)?;
        match kind {
            EntryType::Directory => {
                match rustix::fs::mkdirat(&dir, &name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let stat = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)
                            .at("look up", &shown)?;
                        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
                            return Err(ArchiveError::Overwrite {
                                path: shown,
                                existing: "non-directory",
                                new: "directory",
                            });
                        }
                    }
                    Err(e) => return Err(e).at("create the folder", &shown),
                }
                self.directories.push(DirectoryMeta {
                    path,
                    mode,
                    owner,
                    mtime,
                });
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.refuse_directory(&dir, &name, &shown)?;
                let file = rustix::fs::openat(
                    &dir,
                    &name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .at("create", &shown)?;
                let mut file = std::fs::File::from(file);
                std::io::copy(&mut entry, &mut file).at("write", &shown)?;
                self.finish_file(file.as_fd(), mode, owner, mtime, &shown)?;
            }
            EntryType::Symlink => {
                let target = link_target(&entry, &shown_name, "a symlink")?;
                self.refuse_directory(&dir, &name, &shown)?;
                rustix::fs::symlinkat(&target, &dir, &name).at("create the link", &shown)?;
                self.set_link_owner(&dir, &name, owner, &shown)?;
                rustix::fs::utimensat(&dir, &name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .at("set the times of", &shown)?;
            }
            EntryType::Link => {
                let target = link_target(&entry, &shown_name, "a hard link")?;
                let target = self.place(&target, &shown_name)?;
                let (target_dir, target_name) =
                    split(&target).ok_or_else(|| ArchiveError::Refused {
                        entry: shown_name.clone(),
                        detail: "a hard link to the destination folder".to_owned(),
                    })?;
                let source = self
                    .root
                    .open_at(
                        &self.destination.join(target_dir),
                        OFlags::PATH | OFlags::DIRECTORY,
                        true,
                    )
                    .at("find the link target of", &shown)?;
                if target == path {
                    return Ok(());
                }
                self.refuse_directory(&dir, &name, &shown)?;
                rustix::fs::linkat(&source, target_name, &dir, &name, AtFlags::empty())
                    .at("link", &shown)?;
            }
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                let file_type = match kind {
                    EntryType::Fifo => FileType::Fifo,
                    EntryType::Char => FileType::CharacterDevice,
                    _ => FileType::BlockDevice,
                };
                if file_type != FileType::Fifo && !self.options.keep_devices {
                    tracing::debug!(entry = %shown_name, "a device node is skipped");
                    return Ok(());
                }
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                self.refuse_directory(&dir, &name, &shown)?;
                rustix::fs::mknodat(
                    &dir,
                    &name,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    rustix::fs::makedev(major, minor),
                )
                .at("create", &shown)?;
                self.set_link_owner(&dir, &name, owner, &shown)?;
                rustix::fs::chmodat(&dir, &name, Mode::from_raw_mode(mode), AtFlags::empty())
                    .at("set the mode of", &shown)?;
                rustix::fs::utimensat(&dir, &name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .at("set the times of", &shown)?;
            }
            other => {
                tracing::debug!(entry = %shown_name, kind = ?other, "an entry of this kind is skipped");
                return Ok(());
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Refuses to replace a directory with a non-directory; clears what
    /// else is there.
    fn refuse_directory(&mut self, dir: &OwnedFd, name: &OsStr, shown: &Path) -> Result<()> {
        if self.clear(dir, name, shown)? {
            return Err(ArchiveError::Overwrite {
                path: shown.to_path_buf(),
                existing: "directory",
                new: "non-directory",
            });
        }
        Ok(())
    }

    /// The owner of the entry `name` in `dir` (not followed if a link),
    /// when owners are kept.
    fn set_link_owner(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        owner: (u32, u32),
        shown: &Path,
    ) -> Result<()> {
        if !self.options.keep_owners {
            return Ok(());
        }
        rustix::fs::chownat(
            dir,
            name,
            Some(Uid::from_raw(owner.0)),
            Some(Gid::from_raw(owner.1)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .at("set the owner of", shown)
    }

    /// Owner, mode and time of a file just written.
    fn finish_file(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        mut mode: u32,
        owner: (u32, u32),
        mtime: i64,
        shown: &Path,
    ) -> Result<()> {
        if self.options.keep_owners {
            rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(owner.0)),
                Some(Gid::from_raw(owner.1)),
            )
            .at("set the owner of", shown)?;
        } else if self.options.drop_setid_of_new_owner {
            mode &= !0o6000;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(mode)).at("set the mode of", shown)?;
        rustix::fs::futimens(fd, &timestamps(mtime)).at("set the times of", shown)
    }

    /// Directory modes, owners and times, deepest first.
    fn finish(&mut self) -> Result<()> {
        let mut directories = std::mem::take(&mut self.directories);
        directories.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
        for meta in directories {
            let at = self.destination.join(&meta.path);
            let shown = Path::new("/").join(&at);
            // The destination itself may be reached through a symlink; a
            // folder the archive made is never followed.
            let follow = meta.path.as_os_str().is_empty();
            let fd = self
                .root
                .open_at(&at, OFlags::RDONLY | OFlags::DIRECTORY, follow)
                .at("open", &shown)?;
            if self.options.keep_owners {
                rustix::fs::fchown(
                    &fd,
                    Some(Uid::from_raw(meta.owner.0)),
                    Some(Gid::from_raw(meta.owner.1)),
                )
                .at("set the owner of", &shown)?;
            }
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
                .at("set the mode of", &shown)?;
            rustix::fs::futimens(&fd, &timestamps(meta.mtime)).at("set the times of", &shown)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive that plants a symlink out of the destination, then
    /// writes through it, then climbs with `..`.
    fn hostile(sentinel: &Path) -> Vec<u8> {
        let new = |kind: EntryType, size: u64| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(0o755);
            header.set_size(size);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header
        };
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = new(EntryType::Directory, 0);
        builder
            .append_data(&mut header, "top", std::io::empty())
            .expect("dir");
        let mut link = new(EntryType::Symlink, 0);
        builder
            .append_link(&mut link, "top/link", sentinel)
            .expect("link");
        let mut file = new(EntryType::Regular, 4);
        builder
            .append_data(&mut file, "top/link/planted", &b"evil"[..])
            .expect("file");
        builder.into_inner().expect("archive")
    }

    #[test]
    fn a_planted_symlink_never_leads_outside_the_destination() {
        let sentinel = tempfile::tempdir().expect("sentinel");
        let options = UnpackOptions {
            rebase: Some(Rebase {
                from: "top".into(),
                to: "".into(),
            }),
            ..UnpackOptions::default()
        };
        // A link to `/` is the destination: the entry lands in it.
        let destination = tempfile::tempdir().expect("destination");
        let root = Root::open(destination.path()).expect("root");
        unpack(
            &root,
            Path::new(""),
            hostile(Path::new("/")).as_slice(),
            &options,
        )
        .expect("unpacked inside");
        assert_eq!(
            std::fs::read(destination.path().join("planted")).expect("inside"),
            b"evil"
        );
        // A link to a host folder is a missing folder inside: refused.
        let destination = tempfile::tempdir().expect("destination");
        let root = Root::open(destination.path()).expect("root");
        let err = unpack(
            &root,
            Path::new(""),
            hostile(sentinel.path()).as_slice(),
            &options,
        )
        .expect_err("a dangling link is not written through");
        assert!(err.to_string().contains("link"), "{err}");
        assert_eq!(
            std::fs::read_dir(sentinel.path())
                .expect("sentinel")
                .count(),
            0,
            "nothing lands outside"
        );
    }

    #[test]
    fn climbing_names_are_refused() {
        let destination = tempfile::tempdir().expect("destination");
        let mut archive = Vec::new();
        // The tar crate refuses to write `..`; GNU tar's header is made by hand.
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().expect("gnu").name[..9].copy_from_slice(b"../escape");
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        archive.extend_from_slice(header.as_bytes());
        archive.extend_from_slice(&[0; 1024]);
        let root = Root::open(destination.path()).expect("root");
        let err = unpack(
            &root,
            Path::new(""),
            archive.as_slice(),
            &UnpackOptions::default(),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("climbs outside"), "{err}");
        assert!(
            !destination
                .path()
                .parent()
                .expect("parent")
                .join("escape")
                .exists()
        );
    }
}

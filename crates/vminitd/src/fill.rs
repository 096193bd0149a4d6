//! Docker's copy-up: a new volume mounted over a folder the image fills
//! starts with that folder's contents.
//!
//! The image's folder is found under the container's root as if that root
//! were `/` (`RESOLVE_IN_ROOT`): a symlink in the image cannot make the
//! guest copy its own files. Below it, every entry is opened relative to
//! its parent's descriptor without following symlinks, so the walk stays in
//! the folder. Owners, modes, times, symlinks, hard links (within the
//! folder) and device nodes are kept; extended attributes are not.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use containerization_agent::proto::v1::FillVolumeRequest;
use rustix::fs::{AtFlags, Dev, FileType, Gid, Mode, OFlags, ResolveFlags, Timestamps, Uid};
use rustix::io::Errno;
use tonic::Status;

/// How deep a folder tree may go before the copy gives up (each level
/// holds two descriptors).
const MAX_DEPTH: usize = 256;

/// Hard links already copied: (device, inode) → path in the volume.
type Links = HashMap<(u64, u64), CString>;

/// Fills `request.volume` from `request.root` + `request.path` if the
/// volume is new (empty but for `lost+found`); the entries copied.
pub(crate) fn fill_volume(request: &FillVolumeRequest) -> Result<u64, Status> {
    let failed = |step: &str, err: Errno| {
        Status::failed_precondition(format!(
            "filling volume {} from the image's {}: {step}: {err}",
            request.volume, request.path
        ))
    };
    let directory = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let volume = rustix::fs::open(request.volume.as_str(), directory, Mode::empty())
        .map_err(|e| failed("open the volume", e))?;
    if !is_new(volume.as_fd()).map_err(|e| failed("read the volume", e))? {
        return Ok(0);
    }
    let root = rustix::fs::open(request.root.as_str(), directory, Mode::empty())
        .map_err(|e| failed("open the root", e))?;
    let relative = request.path.trim_start_matches('/');
    let source = match rustix::fs::openat2(
        &root,
        if relative.is_empty() { "." } else { relative },
        directory | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Nothing there, or not a folder: nothing to copy.
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(0),
        Err(err) => return Err(failed("open the image's folder", err)),
    };
    let stat = rustix::fs::fstat(&source).map_err(|e| failed("stat", e))?;
    let volume_root = volume.try_clone().map_err(|e| {
        failed(
            "hold the volume",
            Errno::from_io_error(&e).unwrap_or(Errno::IO),
        )
    })?;
    let mut copier = Copier {
        volume: volume_root,
        links: Links::new(),
        entries: 0,
    };
    copier
        .copy_folder(source.as_fd(), volume.as_fd(), &CString::default(), 0)
        .map_err(|e| failed("copy", e))?;
    // The volume's root takes the folder's owner and mode, as in Docker.
    set_owner_mode_times(volume.as_fd(), &stat).map_err(|e| failed("set the root's mode", e))?;
    Ok(copier.entries)
}

/// Whether the folder holds nothing but `lost+found`.
fn is_new(volume: BorrowedFd<'_>) -> Result<bool, Errno> {
    let mut dir = rustix::fs::Dir::read_from(volume)?;
    for entry in dir.by_ref() {
        let name = entry?.file_name().to_bytes().to_vec();
        if !matches!(name.as_slice(), b"." | b".." | b"lost+found") {
            return Ok(false);
        }
    }
    Ok(true)
}

struct Copier {
    /// The volume's root, which hard links' first paths are relative to.
    volume: OwnedFd,
    links: Links,
    entries: u64,
}

impl Copier {
    /// Copies the entries of `source` into `target`; `prefix` is
    /// `target`'s path in the volume (for hard links).
    fn copy_folder(
        &mut self,
        source: BorrowedFd<'_>,
        target: BorrowedFd<'_>,
        prefix: &CStr,
        depth: usize,
    ) -> Result<(), Errno> {
        if depth > MAX_DEPTH {
            return Err(Errno::LOOP);
        }
        let names: Vec<CString> = rustix::fs::Dir::read_from(source)?
            .map(|entry| entry.map(|e| e.file_name().to_owned()))
            .collect::<Result<_, _>>()?;
        for name in names {
            // The volume has its own `lost+found`.
            let skip = match name.to_bytes() {
                b"." | b".." => true,
                b"lost+found" => depth == 0,
                _ => false,
            };
            if skip {
                continue;
            }
            let path = join(prefix, &name);
            self.copy_entry(source, target, &name, &path, depth)?;
            self.entries += 1;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        source: BorrowedFd<'_>,
        target: BorrowedFd<'_>,
        name: &CStr,
        path: &CStr,
        depth: usize,
    ) -> Result<(), Errno> {
        let stat = rustix::fs::statat(source, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        let key = (stat.st_dev, stat.st_ino);
        if kind != FileType::Directory
            && stat.st_nlink > 1
            && let Some(first) = self.links.get(&key)
        {
            return rustix::fs::linkat(&self.volume, first, target, name, AtFlags::empty());
        }
        match kind {
            FileType::Directory => {
                rustix::fs::mkdirat(target, name, Mode::from_raw_mode(0o700))?;
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let from = rustix::fs::openat(source, name, flags, Mode::empty())?;
                let to = rustix::fs::openat(target, name, flags, Mode::empty())?;
                self.copy_folder(from.as_fd(), to.as_fd(), path, depth + 1)?;
                set_owner_mode_times(to.as_fd(), &stat)?;
            }
            FileType::RegularFile => {
                let from = rustix::fs::openat(
                    source,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let to = rustix::fs::openat(
                    target,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut reader = std::fs::File::from(from);
                let mut writer = std::fs::File::from(to);
                std::io::copy(&mut reader, &mut writer)
                    .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
                set_owner_mode_times(writer.as_fd(), &stat)?;
            }
            FileType::Symlink => {
                let link = rustix::fs::readlinkat(source, name, Vec::new())?;
                rustix::fs::symlinkat(&link, target, name)?;
                set_owner_times_at(target, name, &stat)?;
            }
            FileType::Fifo
            | FileType::Socket
            | FileType::CharacterDevice
            | FileType::BlockDevice => {
                rustix::fs::mknodat(
                    target,
                    name,
                    kind,
                    Mode::from_raw_mode(stat.st_mode & 0o7777),
                    stat.st_rdev as Dev,
                )?;
                set_owner_times_at(target, name, &stat)?;
            }
            FileType::Unknown => return Ok(()),
        }
        if kind != FileType::Directory && stat.st_nlink > 1 {
            self.links.insert(key, path.to_owned());
        }
        Ok(())
    }
}

/// `prefix/name` (or `name` at the top).
fn join(prefix: &CStr, name: &CStr) -> CString {
    let mut bytes = prefix.to_bytes().to_vec();
    if !bytes.is_empty() {
        bytes.push(b'/');
    }
    bytes.extend_from_slice(name.to_bytes());
    CString::new(bytes).unwrap_or_default()
}

fn times(stat: &rustix::fs::Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: stat.st_atime,
            tv_nsec: stat.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: stat.st_mtime,
            tv_nsec: stat.st_mtime_nsec as _,
        },
    }
}

/// The owner and times of `name` in `dir`, not followed (a symlink's or
/// a node's, whose mode was set when it was made).
fn set_owner_times_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    stat: &rustix::fs::Stat,
) -> Result<(), Errno> {
    rustix::fs::chownat(
        dir,
        name,
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    rustix::fs::utimensat(dir, name, &times(stat), AtFlags::SYMLINK_NOFOLLOW)
}

/// Owner first (a chown clears set-id bits), then mode, then times.
fn set_owner_mode_times(fd: BorrowedFd<'_>, stat: &rustix::fs::Stat) -> Result<(), Errno> {
    rustix::fs::fchown(
        fd,
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(stat.st_mode & 0o7777))?;
    rustix::fs::futimens(fd, &times(stat))
}

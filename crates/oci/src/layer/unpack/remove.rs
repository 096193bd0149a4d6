//! Removing what an entry or a whiteout replaces, on directory descriptors.
//!
//! A tree is removed depth first without recursion and with two descriptors
//! open at a time, whatever its depth: the walk keeps the names it went down
//! and finds each parent again from the top directory, along names that were
//! directories when it went down and are opened without following symlinks.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Removes `name` from `dir` (a file, a symlink, a node or a whole tree);
/// nothing happens when it does not exist. Never follows a symlink.
pub(super) fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) != FileType::Directory => {
            return rustix::fs::unlinkat(dir, name, AtFlags::empty());
        }
        Ok(_) => {}
    }
    let top = open_listable(dir, name)?;
    // One frame per directory from `top` down to the one being emptied: its
    // name and the subdirectories of it still to remove.
    let mut frames: Vec<(OsString, Vec<OsString>)> = Vec::new();
    let mut current = rustix::io::fcntl_dupfd_cloexec(&top, 0)?;
    let mut pending = empty_but_subdirectories(current.as_fd())?;
    loop {
        if let Some(child) = pending.pop() {
            current = open_listable(current.as_fd(), &child)?;
            frames.push((child, std::mem::take(&mut pending)));
            pending = empty_but_subdirectories(current.as_fd())?;
            continue;
        }
        // `current` is empty: remove it from its parent, found again from
        // `top`, and go on with the parent's remaining subdirectories.
        let Some((done, rest)) = frames.pop() else {
            break;
        };
        current = rustix::io::fcntl_dupfd_cloexec(&top, 0)?;
        for (name, _) in &frames {
            current = open_listable(current.as_fd(), name)?;
        }
        rustix::fs::unlinkat(&current, &done, AtFlags::REMOVEDIR)?;
        pending = rest;
    }
    drop((current, top));
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// Removes every child of `dir` that is not a directory and returns the
/// names of the directories left in it.
pub(super) fn empty_but_subdirectories(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<OsString>> {
    let mut entries = Dir::read_from(dir)?;
    let mut subdirectories = Vec::new();
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Unknown => rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)?,
            kind => kind == FileType::Directory,
        };
        if is_dir {
            subdirectories.push(name.to_os_string());
        } else {
            rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
        }
    }
    Ok(subdirectories)
}

/// Opens directory `name` in `dir` for listing, never following a symlink.
fn open_listable(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

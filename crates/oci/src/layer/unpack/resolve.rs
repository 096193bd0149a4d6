//! Paths inside the unpack target, resolved on directory descriptors.
//!
//! Every lookup starts at a descriptor of the target and goes one component
//! at a time with `O_NOFOLLOW`, so no path string is ever handed to the
//! kernel whole and nothing a layer plants can redirect a lookup outside the
//! target. Symlinks met on the way are read and expanded here, as if the
//! target were `/` (what `chroot`, `RESOLVE_IN_ROOT` and containerd's secure
//! join do): an absolute target starts again at the target, and `..` at the
//! target stays there. The last component of an entry is never followed: an
//! entry replaces what is at its path, it never writes through it.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How many symlinks one lookup may go through, as Linux allows.
pub(super) const MAX_SYMLINKS: usize = 40;

/// The longest symlink target accepted, Linux's `PATH_MAX`. (Entry paths
/// may be longer: they are walked one name at a time.)
pub(super) const MAX_PATH: usize = 4096;

/// A directory found inside the target: a descriptor of it and its path
/// from the target with every symlink resolved.
#[derive(Debug)]
pub(super) struct Found {
    /// The directory (`O_PATH`): a base for `*at` calls.
    pub fd: OwnedFd,
    /// Its path relative to the target, symlinks resolved.
    pub real: PathBuf,
}

/// Flags that open one directory component without following it.
fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens `name` in `dir` as a directory, never following a symlink.
pub(super) fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(dir, name, dir_flags(), Mode::empty())
}

/// Resolves `relative` (a directory path from the target, no `..` in it
/// before symlinks are expanded) inside `root`, following symlinks as if
/// `root` were `/`, and creating missing directories (mode 0755) when
/// `create` is set. The error says why, for an "unsafe entry" message.
pub(super) fn resolve_dir(
    root: BorrowedFd<'_>,
    relative: &Path,
    create: bool,
) -> Result<Found, String> {
    let mut done: Vec<OsString> = Vec::new();
    let mut todo: Vec<OsString> = relative
        .components()
        .rev()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut current = dup(root)?;
    let mut hops = 0;
    while let Some(component) = todo.pop() {
        if component == "." || component.is_empty() || component == "/" {
            continue;
        }
        if component == ".." {
            // `..` at the target stays at the target. Otherwise the parent
            // is found again from the target, along names already proven to
            // be directories, rather than trusting the directory's own `..`.
            if done.pop().is_some() {
                current = reopen(root, &done)?;
            }
            continue;
        }
        let shown = || {
            let mut p: PathBuf = done.iter().collect();
            p.push(&component);
            p.display().to_string()
        };
        match rustix::fs::statat(&current, &component, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Err(format!(
                            "goes through more than {MAX_SYMLINKS} symlinks (a loop?) at {}",
                            shown()
                        ));
                    }
                    let target = rustix::fs::readlinkat(&current, &component, Vec::new())
                        .map_err(|e| format!("cannot read the symlink {}: {e}", shown()))?;
                    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                    if target.is_absolute() {
                        done.clear();
                        current = dup(root)?;
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::RootDir | Component::Prefix(_) => {}
                            other => todo.push(other.as_os_str().to_os_string()),
                        }
                    }
                }
                FileType::Directory => {
                    current = open_dir(current.as_fd(), &component)
                        .map_err(|e| format!("cannot open the directory {}: {e}", shown()))?;
                    done.push(component);
                }
                _ => return Err(format!("has a parent {} that is not a directory", shown())),
            },
            Err(Errno::NOENT) if create => {
                rustix::fs::mkdirat(&current, &component, Mode::from_raw_mode(0o755))
                    .map_err(|e| format!("cannot create the directory {}: {e}", shown()))?;
                current = open_dir(current.as_fd(), &component)
                    .map_err(|e| format!("cannot open the directory {}: {e}", shown()))?;
                done.push(component);
            }
            Err(Errno::NOENT) => {
                return Err(format!(
                    "points into {}, which does not exist in the image",
                    shown()
                ));
            }
            Err(e) => return Err(format!("cannot look up {}: {e}", shown())),
        }
    }
    Ok(Found {
        fd: current,
        real: done.iter().collect(),
    })
}

/// Opens `relative` under `root` with `flags` only if no component of it is
/// a symlink (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or a walk of
/// no-follow opens on kernels without `openat2`). `None` when something on
/// the way is missing, not a directory or a symlink.
pub(super) fn open_beneath(
    root: BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
) -> rustix::io::Result<Option<OwnedFd>> {
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(root, relative, flags, Mode::empty(), resolve) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => Ok(None),
        // Kernels before 5.6, and paths longer than `PATH_MAX`.
        Err(Errno::NOSYS | Errno::NAMETOOLONG) => open_beneath_by_walk(root, relative, flags),
        Err(e) => Err(e),
    }
}

fn open_beneath_by_walk(
    root: BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
) -> rustix::io::Result<Option<OwnedFd>> {
    let names: Vec<&OsStr> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return rustix::fs::openat(root, ".", flags, Mode::empty()).map(Some);
    };
    let mut current = rustix::io::fcntl_dupfd_cloexec(root, 0)?;
    for name in parents {
        match open_dir(current.as_fd(), name) {
            Ok(fd) => current = fd,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    match rustix::fs::openat(&current, *last, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(None),
        Err(e) => Err(e),
    }
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, String> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0)
        .map_err(|e| format!("cannot duplicate a descriptor: {e}"))
}

/// The directory at `names` under `root`, each name a directory, none followed.
fn reopen(root: BorrowedFd<'_>, names: &[OsString]) -> Result<OwnedFd, String> {
    let mut current = dup(root)?;
    for name in names {
        current = open_dir(current.as_fd(), name)
            .map_err(|e| format!("cannot open the directory {}: {e}", name.display()))?;
    }
    Ok(current)
}

/// Checks that `name` is one plain file name: not empty, not `.` or `..`,
/// no `/`. Whiteouts and entries are only ever applied to such a name.
pub(super) fn plain_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty() && bytes != b"." && bytes != b".." && !bytes.contains(&b'/')
}

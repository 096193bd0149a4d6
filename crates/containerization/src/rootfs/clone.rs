//! A container's writable root disk, made from a read-only base in constant
//! time: a reflink copy where the host file system shares extents (btrfs,
//! XFS, bcachefs), otherwise an empty qcow2 overlay backed by the base.
//!
//! Either way the base is never written: a reflink copy shares blocks
//! copy-on-write in the host file system, and a qcow2 overlay keeps every
//! cluster the guest writes in the overlay. QEMU tells the two apart by the
//! qcow2 magic, so the caller need not remember which one it got.

use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::qcow2::Overlay;
use crate::Error;

/// How a writable clone was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneKind {
    /// A raw copy sharing the base's blocks through the host file system
    /// (`FICLONE`); independent of the base from now on.
    Reflink,
    /// A qcow2 overlay whose backing file is the base (by absolute path,
    /// format `raw`): the base must stay where it is, unchanged, for as
    /// long as the overlay is used.
    Qcow2Overlay,
}

/// Makes `dest` a writable disk with the content of `base`, without copying
/// it: a reflink when the host file system supports one, otherwise a qcow2
/// overlay over `base`. `dest` must not exist; it is created with mode 0600.
///
/// Nothing is left at `dest` on error.
pub fn writable_clone(base: &Path, dest: &Path) -> Result<CloneKind, Error> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    // The overlay names the base by an absolute path: QEMU resolves a
    // relative one against the overlay's folder.
    let base = std::fs::canonicalize(base).map_err(io_error(base))?;
    let source = File::open(&base).map_err(io_error(&base))?;
    let size = source.metadata().map_err(io_error(&base))?.len();
    let target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Rootfs {
                image: base.display().to_string(),
                detail: format!(
                    "cannot clone it to {}: the file exists; remove it or choose another path",
                    dest.display()
                ),
            },
            _ => Error::Io {
                path: dest.to_path_buf(),
                source,
            },
        })?;
    let made = clone_into(&source, &base, size, &target);
    if made.is_err() {
        drop(target);
        if let Err(e) = std::fs::remove_file(dest) {
            tracing::warn!(path = %dest.display(), error = %e, "cannot remove a failed clone");
        }
    }
    let kind = made?;
    tracing::debug!(base = %base.display(), dest = %dest.display(), ?kind, "writable clone");
    Ok(kind)
}

/// Fills the empty `target` from `source` (the file at `base`, `size` bytes).
fn clone_into(source: &File, base: &Path, size: u64, target: &File) -> Result<CloneKind, Error> {
    match rustix::fs::ioctl_ficlone(target, source) {
        Ok(()) => return Ok(CloneKind::Reflink),
        Err(errno) if reflink_unsupported(errno) => {}
        Err(errno) => {
            return Err(Error::Rootfs {
                image: base.display().to_string(),
                detail: format!("cannot reflink it: {errno}"),
            });
        }
    }
    let overlay =
        Overlay::new(base.as_os_str().as_bytes(), size).map_err(|detail| Error::Rootfs {
            image: base.display().to_string(),
            detail,
        })?;
    overlay.write_to(target).map_err(|source| Error::Rootfs {
        image: base.display().to_string(),
        detail: format!("cannot write a qcow2 overlay over it: {source}"),
    })?;
    Ok(CloneKind::Qcow2Overlay)
}

/// Whether a `FICLONE` failure means "no reflink here" (so an overlay is
/// the way) rather than a real fault: the file system cannot share extents
/// (`EOPNOTSUPP`, or `ENOTTY` from a driver without the ioctl), the two
/// files are on different file systems (`EXDEV`), or the source cannot be
/// cloned from, such as a swap file or a file still being written
/// (`EINVAL`).
pub(crate) fn reflink_unsupported(errno: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [Errno::OPNOTSUPP, Errno::XDEV, Errno::INVAL, Errno::NOTTY].contains(&errno)
}

#[cfg(test)]
mod tests {
    use rustix::io::Errno;

    use super::reflink_unsupported;

    #[test]
    fn only_unsupported_reflinks_fall_back_to_an_overlay() {
        for errno in [Errno::OPNOTSUPP, Errno::XDEV, Errno::INVAL, Errno::NOTTY] {
            assert!(reflink_unsupported(errno), "{errno}");
        }
        for errno in [Errno::NOSPC, Errno::IO, Errno::BADF, Errno::PERM] {
            assert!(!reflink_unsupported(errno), "{errno}");
        }
    }
}

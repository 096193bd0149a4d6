//! A root: a directory descriptor under which every path is resolved with
//! `openat2(RESOLVE_IN_ROOT)`, as if it were `/`. An absolute symlink starts
//! again at the root and `..` at the root stays there, so nothing planted
//! inside (a symlink to `/`, a climbing `..`) can lead outside it; magic
//! links (`/proc/<pid>/fd/…`) are refused.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{ArchiveError, At, Result};

/// What kind of file a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (only when it was not followed).
    Symlink,
    /// A device node, FIFO or socket.
    Other,
}

impl Kind {
    fn of(mode: u32) -> Self {
        match FileType::from_raw_mode(mode) {
            FileType::RegularFile => Self::File,
            FileType::Directory => Self::Directory,
            FileType::Symlink => Self::Symlink,
            _ => Self::Other,
        }
    }
}

/// What a path inside a root is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    /// Its kind.
    pub kind: Kind,
    /// Its full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its owner.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// Its modification time, in seconds since the Unix epoch.
    pub mtime: i64,
    /// Where it points, for a symlink that was not followed.
    pub link_target: Option<PathBuf>,
}

/// A directory every path is resolved under.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    shown: PathBuf,
}

impl Root {
    /// The directory at `path` as a root. `path` itself is trusted (it is
    /// followed as given); what is under it is not.
    pub fn open(path: &Path) -> Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .at("open the folder", path)?;
        Ok(Self::from_fd(fd, path))
    }

    /// A root from a directory descriptor; `shown` names it in messages.
    pub fn from_fd(fd: OwnedFd, shown: impl Into<PathBuf>) -> Self {
        Self {
            fd,
            shown: shown.into(),
        }
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `path` inside the root with `flags`; the last component is
    /// followed only with `follow`.
    pub fn open_at(&self, path: &Path, flags: OFlags, follow: bool) -> rustix::io::Result<OwnedFd> {
        let mut flags = flags | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        rustix::fs::openat2(
            &self.fd,
            relative(path),
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// What `path` is; a symlink as the last component is followed only
    /// with `follow`.
    pub fn stat(&self, path: &Path, follow: bool) -> Result<PathInfo> {
        let fd = self
            .open_at(path, OFlags::PATH, follow)
            .at("look up", path)?;
        let stat = rustix::fs::fstat(&fd).at("look up", path)?;
        let kind = Kind::of(stat.st_mode);
        let link_target = match kind {
            Kind::Symlink => {
                let target =
                    rustix::fs::readlinkat(&fd, "", Vec::new()).at("read the link", path)?;
                Some(PathBuf::from(OsStr::from_bytes(target.as_bytes())))
            }
            _ => None,
        };
        Ok(PathInfo {
            kind,
            mode: stat.st_mode,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            uid: stat.st_uid,
            gid: stat.st_gid,
            mtime: stat.st_mtime,
            link_target,
        })
    }

    /// Opens directory `path` inside the root, making missing directories
    /// on the way (mode 0755). `..` is resolved in the root.
    pub fn dir_creating(&self, path: &Path) -> Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY;
        match self.open_at(path, flags, true) {
            Err(Errno::NOENT) => {}
            other => return other.at("open the folder", path),
        }
        let mut current = self
            .open_at(Path::new("."), flags, true)
            .at("open", &self.shown)?;
        let mut prefix = PathBuf::new();
        for component in Path::new(relative(path)).components() {
            prefix.push(component.as_os_str());
            current = match self.open_at(&prefix, flags, true) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if matches!(component, Component::Normal(_)) => {
                    match rustix::fs::mkdirat(
                        &current,
                        component.as_os_str(),
                        Mode::from_raw_mode(0o755),
                    ) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e).at("create the folder", &prefix),
                    }
                    self.open_at(&prefix, flags, true)
                        .at("open the folder", &prefix)?
                }
                Err(e) => return Err(e).at("open the folder", &prefix),
            };
        }
        Ok(current)
    }

    /// An `O_PATH` descriptor of `path` inside the root to mount over, made
    /// when missing: a directory, or an empty file when `kind` is
    /// [`Kind::File`]. A symlink at `path` is followed inside the root.
    pub fn mount_point(&self, path: &Path, kind: Kind) -> Result<OwnedFd> {
        match self.open_at(path, OFlags::PATH, true) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e).at("open the mount point", path),
        }
        if kind != Kind::File {
            return self.dir_creating(path);
        }
        let (parent, name) =
            split(path).ok_or_else(|| ArchiveError::NotFound(path.to_path_buf()))?;
        let parent = self.dir_creating(parent)?;
        match rustix::fs::openat(
            &parent,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(_) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).at("create the mount point", path),
        }
        self.open_at(path, OFlags::PATH, true)
            .at("open the mount point", path)
    }
}

/// `path` without its leading `/` (an empty path is `.`).
pub(crate) fn relative(path: &Path) -> &Path {
    let bytes = path.as_os_str().as_bytes();
    let trimmed = bytes
        .iter()
        .position(|b| *b != b'/')
        .map_or(&b""[..], |at| &bytes[at..]);
    if trimmed.is_empty() {
        Path::new(".")
    } else {
        Path::new(OsStr::from_bytes(trimmed))
    }
}

/// `path`'s parent and last name, if it has a last name.
pub(crate) fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    let name = path.file_name()?;
    Some((path.parent().unwrap_or(Path::new("")), name))
}

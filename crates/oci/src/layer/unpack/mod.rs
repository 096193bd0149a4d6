//! Safe unpacking of a layer stack into a directory on the host.
//!
//! Layers are applied in order. `.wh.<name>` deletes `<name>` from the layers
//! below; `.wh..wh..opq` empties its directory of what the layers below put
//! there. Nothing is read, written, changed or removed outside the target:
//! every operation is made relative to a directory descriptor found inside
//! the target ([`resolve`]), never through a path string a symlink could
//! redirect. `..` in an entry's path is refused and absolute paths are taken
//! relative to the target; symlinks met on the way to an entry are resolved
//! as if the target were `/`. Hard links must point at an existing
//! non-directory inside the target.
//!
//! What a hostile image could use against the host is held back: the target
//! is created 0700 (so set-user-id files and file capabilities in it serve
//! no other local user), device nodes are skipped unless
//! [`UnpackOptions::keep_devices`] asks for them, xattrs other than `user.*`,
//! `trusted.*`, `security.capability` and POSIX ACLs are dropped, and the
//! data written stops at [`UnpackOptions::max_bytes`] (by default what the
//! target's file system has free). Owners, devices and privileged xattrs are
//! kept only when running as root, as `umoci` does. Directory modes and times
//! are set at the end, so a read-only directory can still be filled, and
//! only on directories still reached without a symlink.

mod remove;
mod resolve;

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use tar::EntryType;

use crate::error::IoContext;
use crate::{Error, Result};
use resolve::{Found, MAX_PATH, open_beneath, plain_name, resolve_dir};

/// What an unpack keeps and how much it may write.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Create character and block device nodes (as root only). Off by
    /// default: a device node in a host folder gives whoever can reach it
    /// the device (`/dev/mem` 0666 in an image would be every user's).
    pub keep_devices: bool,
    /// The most bytes of file data all layers together may write (holes of
    /// sparse files included). `None`: what the target's file system has
    /// free when the unpack starts.
    pub max_bytes: Option<u64>,
}

/// Applies layers, one after another, to a directory.
#[derive(Debug)]
pub struct Unpacker {
    /// The target, for messages.
    root_path: PathBuf,
    /// The target, for every operation.
    root: OwnedFd,
    privileged: bool,
    keep_devices: bool,
    /// Bytes of file data the layers may still write.
    budget: u64,
    /// Directories (path from the target, symlinks resolved) whose mode and
    /// time are set at the end.
    directories: HashMap<PathBuf, (u32, i64)>,
    /// Device nodes skipped so far.
    skipped_devices: usize,
    /// The parent directory last resolved: entries of a tar come grouped by
    /// folder. Creating entries cannot change how an existing path resolves;
    /// removing one can, so every removal forgets it.
    last_parent: Option<(PathBuf, Found)>,
}

/// One entry's place: its parent directory and its name in it.
struct Place<'a> {
    parent: &'a Found,
    name: &'a OsStr,
    /// The path from the target with the parent's symlinks resolved.
    real: PathBuf,
    /// The path for messages (the target's path joined with `real`).
    shown: PathBuf,
}

impl Unpacker {
    /// An unpacker into `root`, created (mode 0700) if missing, with the
    /// default [`UnpackOptions`].
    pub fn new(root: &Path) -> Result<Self> {
        Self::with_options(root, &UnpackOptions::default())
    }

    /// An unpacker into `root`, created (mode 0700) if missing.
    pub fn with_options(root: &Path, options: &UnpackOptions) -> Result<Self> {
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).at("create", parent)?;
        }
        match rustix::fs::mkdir(root, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).at("create", root),
        }
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .at("open the unpack target", root)?;
        let budget = match options.max_bytes {
            Some(limit) => limit,
            None => {
                let fs = rustix::fs::fstatvfs(&fd).at("read the free space of", root)?;
                fs.f_bavail.saturating_mul(fs.f_frsize)
            }
        };
        Ok(Self {
            root_path: root.to_path_buf(),
            root: fd,
            privileged: rustix::process::geteuid().is_root(),
            keep_devices: options.keep_devices,
            budget,
            directories: HashMap::new(),
            skipped_devices: 0,
            last_parent: None,
        })
    }

    /// Applies one uncompressed layer read from `tar`; `layer` names it in errors.
    pub fn apply_layer(&mut self, tar: impl Read, layer: &str) -> Result<()> {
        let mut archive = tar::Archive::new(tar);
        // Paths (symlinks resolved) this layer created, kept from its own
        // opaque whiteouts.
        let mut created: HashSet<PathBuf> = HashSet::new();
        let entries = archive.entries().at("read layer", layer)?;
        for entry in entries {
            let mut entry = entry.at("read layer", layer)?;
            let raw = entry
                .path()
                .at("read an entry path in layer", layer)?
                .into_owned();
            let unsafe_entry = |reason: &str| Error::UnsafeLayerEntry {
                layer: layer.to_owned(),
                entry: raw.display().to_string(),
                reason: reason.to_owned(),
            };
            let relative = clean(&raw).ok_or_else(|| unsafe_entry("has a '..' component"))?;
            let Some(name) = relative.file_name().map(OsStr::to_os_string) else {
                continue; // the root itself
            };
            let parent_rel = relative.parent().unwrap_or(Path::new("")).to_path_buf();
            let parent = self
                .parent(&parent_rel)
                .map_err(|reason| unsafe_entry(&reason))?;
            let name_bytes = name.as_bytes();
            if name_bytes == b".wh..wh..opq" {
                self.last_parent = None;
                self.make_opaque(&parent, &created)
                    .at("apply the opaque whiteout", self.shown(&parent.real))?;
                continue;
            }
            if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
                let hidden = OsStr::from_bytes(hidden);
                if !plain_name(hidden) {
                    return Err(unsafe_entry("is a whiteout that names no file"));
                }
                self.last_parent = None;
                remove::remove_at(parent.fd.as_fd(), hidden).at(
                    "apply the whiteout of",
                    self.shown(&parent.real.join(hidden)),
                )?;
                self.keep_parent(parent_rel, parent);
                continue;
            }
            let real = parent.real.join(&name);
            let place = Place {
                parent: &parent,
                name: &name,
                shown: self.shown(&real),
                real,
            };
            let kind = entry.header().entry_type();
            if self.apply_entry(&mut entry, &place, kind, layer, &unsafe_entry)? {
                created.insert(place.real);
            }
            self.keep_parent(parent_rel, parent);
        }
        if self.skipped_devices > 0 {
            tracing::warn!(
                count = self.skipped_devices,
                target = %self.root_path.display(),
                "device nodes of the image were not created (keep_devices is off)"
            );
            self.skipped_devices = 0;
        }
        Ok(())
    }

    /// Writes one entry at its place; returns whether something was created.
    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        place: &Place<'_>,
        kind: EntryType,
        layer: &str,
        unsafe_entry: &dyn Fn(&str) -> Error,
    ) -> Result<bool> {
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let dir = place.parent.fd.as_fd();
        let existing = match rustix::fs::statat(dir, place.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(FileType::from_raw_mode(stat.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(e).at("look up", &place.shown),
        };
        if let Some(existing) = existing
            && !(existing == FileType::Directory && kind == EntryType::Directory)
        {
            self.last_parent = None;
            remove::remove_at(dir, place.name).at("remove", &place.shown)?;
        }
        let fd: Option<OwnedFd> = match kind {
            EntryType::Directory => {
                if existing != Some(FileType::Directory) {
                    rustix::fs::mkdirat(dir, place.name, Mode::from_raw_mode(0o700))
                        .at("create", &place.shown)?;
                }
                self.directories.insert(place.real.clone(), (mode, mtime));
                Some(
                    rustix::fs::openat(
                        dir,
                        place.name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .at("open", &place.shown)?,
                )
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let size = entry.size();
                if size > self.budget {
                    return Err(Error::LayerTooLarge {
                        layer: layer.to_owned(),
                        entry: place.real.display().to_string(),
                        limit: self.budget,
                    });
                }
                self.budget -= size;
                Some(write_file(entry, dir, place)?.into())
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("is a symlink without a target"))?;
                if target.len() > MAX_PATH {
                    return Err(unsafe_entry(&format!(
                        "is a symlink to a path longer than {MAX_PATH} bytes"
                    )));
                }
                rustix::fs::symlinkat(OsStr::from_bytes(&target), dir, place.name)
                    .at("create symlink", &place.shown)?;
                None
            }
            EntryType::Link => {
                self.hard_link(entry, place, unsafe_entry)?;
                return Ok(true); // a hard link shares its target's metadata
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if !self.make_node(&header, kind, place, mode)? {
                    return Ok(false);
                }
                None
            }
            // Metadata entries (pax, GNU long names) are consumed by `tar`.
            _ => return Ok(false),
        };
        self.set_metadata(entry, place, fd.as_ref(), kind, mode, mtime)?;
        Ok(true)
    }

    /// Sets directory modes and times, deepest first, on the directories
    /// that are still reached from the target without a symlink.
    pub fn finish(self) -> Result<()> {
        let mut directories: Vec<_> = self.directories.into_iter().collect();
        directories.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, (mode, mtime)) in &directories {
            let shown = self.root_path.join(path);
            // A directory removed, replaced or moved behind a symlink by a
            // later entry is not the one the layer described: skip it.
            let Some(fd) =
                open_beneath(self.root.as_fd(), path, OFlags::RDONLY | OFlags::DIRECTORY)
                    .at("open", &shown)?
            else {
                continue;
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(*mode)).at("set the mode of", &shown)?;
            rustix::fs::futimens(&fd, &timestamps(*mtime)).at("set the times of", &shown)?;
        }
        Ok(())
    }

    /// The directory at `relative`, from the last lookup when it was the same.
    fn parent(&mut self, relative: &Path) -> std::result::Result<Found, String> {
        if let Some((path, _)) = &self.last_parent
            && path == relative
            && let Some((_, found)) = self.last_parent.take()
        {
            return Ok(found);
        }
        resolve_dir(self.root.as_fd(), relative, true)
    }

    fn keep_parent(&mut self, relative: PathBuf, found: Found) {
        self.last_parent = Some((relative, found));
    }

    fn shown(&self, real: &Path) -> PathBuf {
        self.root_path.join(real)
    }

    fn hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        place: &Place<'_>,
        unsafe_entry: &dyn Fn(&str) -> Error,
    ) -> Result<()> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| unsafe_entry("is a hard link without a target"))?;
        let target_rel = clean(Path::new(OsStr::from_bytes(&target)))
            .ok_or_else(|| unsafe_entry("links to a path with '..'"))?;
        let target_name = target_rel
            .file_name()
            .ok_or_else(|| unsafe_entry("is a hard link to the image's root"))?;
        let source = resolve_dir(
            self.root.as_fd(),
            target_rel.parent().unwrap_or(Path::new("")),
            false,
        )
        .map_err(|reason| unsafe_entry(&reason))?;
        match rustix::fs::statat(&source.fd, target_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) != FileType::Directory => {}
            _ => return Err(unsafe_entry("is a hard link to nothing inside the image")),
        }
        rustix::fs::linkat(
            &source.fd,
            target_name,
            place.parent.fd.as_fd(),
            place.name,
            AtFlags::empty(),
        )
        .at("create hard link", &place.shown)
    }

    fn make_opaque(&self, dir: &Found, created: &HashSet<PathBuf>) -> rustix::io::Result<()> {
        let listable = rustix::fs::openat(
            &dir.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names: Vec<OsString> = Vec::new();
        for entry in rustix::fs::Dir::new(listable)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." && !created.contains(&dir.real.join(name)) {
                names.push(name.to_os_string());
            }
        }
        for name in names {
            remove::remove_at(dir.fd.as_fd(), &name)?;
        }
        Ok(())
    }

    /// Creates a device node or FIFO; returns false when it was skipped.
    fn make_node(
        &mut self,
        header: &tar::Header,
        kind: EntryType,
        place: &Place<'_>,
        mode: u32,
    ) -> Result<bool> {
        let file_type = match kind {
            EntryType::Char => FileType::CharacterDevice,
            EntryType::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        if file_type != FileType::Fifo && !(self.privileged && self.keep_devices) {
            tracing::debug!(path = %place.shown.display(), "device node skipped");
            self.skipped_devices += 1;
            return Ok(false);
        }
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        let dev = rustix::fs::makedev(major, minor);
        rustix::fs::mknodat(
            place.parent.fd.as_fd(),
            place.name,
            file_type,
            Mode::from_raw_mode(mode & 0o777),
            dev,
        )
        .at("create device node", &place.shown)?;
        Ok(true)
    }

    /// Owner, xattrs, mode and times: through `fd` when the entry is open (a
    /// file or a directory), else on the name in its parent's descriptor
    /// without following it.
    fn set_metadata<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        place: &Place<'_>,
        fd: Option<&OwnedFd>,
        kind: EntryType,
        mode: u32,
        mtime: i64,
    ) -> Result<()> {
        let dir = place.parent.fd.as_fd();
        let header = entry.header();
        if self.privileged {
            let uid = Some(rustix::fs::Uid::from_raw(header.uid().unwrap_or(0) as u32));
            let gid = Some(rustix::fs::Gid::from_raw(header.gid().unwrap_or(0) as u32));
            match fd {
                Some(f) => rustix::fs::fchown(f, uid, gid),
                None => rustix::fs::chownat(dir, place.name, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
            }
            .at("set the owner of", &place.shown)?;
        }
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for extension in extensions.flatten() {
                let Ok(key) = extension.key() else { continue };
                let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                    continue;
                };
                if !xattr_allowed(name, self.privileged) {
                    tracing::debug!(path = %place.shown.display(), xattr = name, "xattr dropped");
                    continue;
                }
                if let Err(e) = set_xattr(fd, dir, place.name, name, extension.value_bytes()) {
                    tracing::warn!(path = %place.shown.display(), xattr = name, "xattr not set: {e}");
                }
            }
        }
        if kind != EntryType::Symlink && kind != EntryType::Directory {
            match fd {
                Some(f) => rustix::fs::fchmod(f, Mode::from_raw_mode(mode)),
                // A node this entry just made at a name in a held directory.
                None => rustix::fs::chmodat(
                    dir,
                    place.name,
                    Mode::from_raw_mode(mode),
                    AtFlags::empty(),
                ),
            }
            .at("set the mode of", &place.shown)?;
        }
        if kind != EntryType::Directory {
            match fd {
                Some(f) => rustix::fs::futimens(f, &timestamps(mtime)),
                None => rustix::fs::utimensat(
                    dir,
                    place.name,
                    &timestamps(mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                ),
            }
            .at("set the times of", &place.shown)?;
        }
        Ok(())
    }
}

/// Whether an xattr of the image is set on the host: `user.*` always;
/// as root also `trusted.*`, file capabilities and POSIX ACLs. Security
/// labels (`security.selinux`, IMA, …) of an image are never the host's.
fn xattr_allowed(name: &str, privileged: bool) -> bool {
    name.starts_with("user.")
        || (privileged
            && (name.starts_with("trusted.")
                || name == "security.capability"
                || name == "system.posix_acl_access"
                || name == "system.posix_acl_default"))
}

/// Sets an xattr on an open entry, or on `name` in `dir` without following
/// it (a symlink or node: through the parent's descriptor in `/proc`, since
/// no `*at` call sets xattrs).
fn set_xattr(
    fd: Option<&OwnedFd>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &str,
    value: &[u8],
) -> rustix::io::Result<()> {
    let flags = rustix::fs::XattrFlags::empty();
    match fd {
        Some(f) => rustix::fs::fsetxattr(f, key, value, flags),
        None => {
            let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            path.push(name);
            rustix::fs::lsetxattr(&path, key, value, flags)
        }
    }
}

/// The entry path without `/`, `.` components; `None` if it has `..`.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::ParentDir => return None,
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// Writes a regular file at its place, leaving runs of zeros as holes
/// (sparse files stay sparse), and returns it open for its metadata.
fn write_file(reader: &mut impl Read, dir: BorrowedFd<'_>, place: &Place<'_>) -> Result<File> {
    let fd = rustix::fs::openat(
        dir,
        place.name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .at("create", &place.shown)?;
    let mut file = File::from(fd);
    let path = &place.shown;
    let mut buf = vec![0u8; 1 << 17];
    let mut total = 0u64;
    let mut holes = false;
    loop {
        let n = reader.read(&mut buf).at("read the layer for", path)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if n >= 4096 && chunk.iter().all(|b| *b == 0) {
            file.seek(SeekFrom::Current(n as i64)).at("seek in", path)?;
            holes = true;
        } else {
            file.write_all(chunk).at("write", path)?;
        }
        total += n as u64;
    }
    if holes {
        file.set_len(total).at("set the length of", path)?;
    }
    Ok(file)
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

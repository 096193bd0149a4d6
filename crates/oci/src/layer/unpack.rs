//! Safe unpacking of a layer stack into a directory.
//!
//! Layers are applied in order. `.wh.<name>` deletes `<name>` from the layers
//! below; `.wh..wh..opq` empties its directory of what the layers below put
//! there. Nothing is written outside the target: `..` in an entry's path is
//! refused, absolute paths are taken relative to the target, and every symlink
//! met on the way to an entry is resolved as if the target were `/` (an
//! absolute link target starts at the target; a relative one that climbs above
//! it is refused). Hard links must point at an existing non-directory inside
//! the target. Owners, modes, times and xattrs are kept; owners, device nodes
//! and privileged xattrs only when running as root, as `umoci` does. Directory
//! modes and times are set at the end, so a read-only directory can still be
//! filled.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Timespec, Timestamps};
use tar::EntryType;

use crate::error::IoContext;
use crate::{Error, Result};

/// How many symlinks one path may go through.
const MAX_SYMLINKS: usize = 40;

/// Applies layers, one after another, to a directory.
#[derive(Debug)]
pub struct Unpacker {
    root: PathBuf,
    privileged: bool,
    /// Directories whose mode and time are set at the end.
    directories: Vec<(PathBuf, u32, i64)>,
    /// Parent folders already resolved (relative → real path). Creating
    /// entries cannot change how an existing path resolves; removing one can,
    /// so every removal empties the cache.
    resolved: HashMap<PathBuf, PathBuf>,
}

impl Unpacker {
    /// An unpacker into `root`, created if missing.
    pub fn new(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).at("create", root)?;
        let root = std::fs::canonicalize(root).at("resolve", root)?;
        Ok(Self {
            root,
            privileged: rustix::process::geteuid().is_root(),
            directories: Vec::new(),
            resolved: HashMap::new(),
        })
    }

    /// Applies one uncompressed layer read from `tar`; `layer` names it in errors.
    pub fn apply_layer(&mut self, tar: impl Read, layer: &str) -> Result<()> {
        let mut archive = tar::Archive::new(tar);
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
            let Some(name) = relative.file_name().map(|n| n.to_os_string()) else {
                continue; // the root itself
            };
            let parent_rel = relative.parent().unwrap_or(Path::new(""));
            let parent = match self.resolved.get(parent_rel) {
                Some(p) => p.clone(),
                None => {
                    let p = self
                        .resolve(parent_rel, true)
                        .map_err(|reason| unsafe_entry(&reason))?;
                    self.resolved.insert(parent_rel.to_path_buf(), p.clone());
                    p
                }
            };
            let name_str = name.to_string_lossy();
            if name_str == ".wh..wh..opq" {
                self.resolved.clear();
                self.make_opaque(&parent, parent_rel, &created)?;
                continue;
            }
            if let Some(hidden) = name_str.strip_prefix(".wh.") {
                self.resolved.clear();
                remove_all(&parent.join(hidden))?;
                continue;
            }
            let path = parent.join(&name);
            let header = entry.header().clone();
            let kind = header.entry_type();
            let mode = header.mode().unwrap_or(0o644) & 0o7777;
            let mtime = header.mtime().unwrap_or(0) as i64;
            let existing = std::fs::symlink_metadata(&path).ok();
            if let Some(meta) = &existing
                && !(meta.is_dir() && kind == EntryType::Directory)
            {
                self.resolved.clear();
                remove_all(&path)?;
            }
            let mut file = None;
            match kind {
                EntryType::Directory => {
                    if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                        std::fs::create_dir(&path).at("create", &path)?;
                    }
                    self.directories.push((path.clone(), mode, mtime));
                }
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    file = Some(write_file(&mut entry, &path)?);
                }
                EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .at("read the link target in layer", layer)?
                        .ok_or_else(|| unsafe_entry("is a symlink without a target"))?;
                    std::os::unix::fs::symlink(&target, &path).at("create symlink", &path)?;
                }
                EntryType::Link => {
                    let target = entry
                        .link_name()
                        .at("read the link target in layer", layer)?
                        .ok_or_else(|| unsafe_entry("is a hard link without a target"))?;
                    let target_rel =
                        clean(&target).ok_or_else(|| unsafe_entry("links to a path with '..'"))?;
                    let target_parent = self
                        .resolve(target_rel.parent().unwrap_or(Path::new("")), false)
                        .map_err(|reason| unsafe_entry(&reason))?;
                    let source = target_parent.join(target_rel.file_name().unwrap_or_default());
                    match std::fs::symlink_metadata(&source) {
                        Ok(m) if !m.is_dir() => {}
                        _ => {
                            return Err(unsafe_entry("is a hard link to nothing inside the image"));
                        }
                    }
                    std::fs::hard_link(&source, &path).at("create hard link", &path)?;
                    created.insert(relative);
                    continue; // a hard link shares its target's metadata
                }
                EntryType::Char | EntryType::Block | EntryType::Fifo => {
                    if !self.make_node(&header, kind, &path, mode)? {
                        continue;
                    }
                }
                // Metadata entries (pax, GNU long names) are consumed by `tar`.
                _ => continue,
            }
            self.set_metadata(&mut entry, &path, file.as_ref(), kind, mode, mtime)?;
            created.insert(relative);
        }
        Ok(())
    }

    /// Sets directory modes and times, deepest first.
    pub fn finish(self) -> Result<()> {
        // The last layer to mention a directory decides its metadata.
        let mut latest: std::collections::HashMap<PathBuf, (u32, i64)> =
            std::collections::HashMap::new();
        for (path, mode, mtime) in self.directories {
            latest.insert(path, (mode, mtime));
        }
        let mut directories: Vec<_> = latest.into_iter().collect();
        directories.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, (mode, mtime)) in &directories {
            // Directories removed or replaced by a later layer are gone.
            if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                .at("set the mode of", path)?;
            set_times(path, *mtime)?;
        }
        Ok(())
    }

    /// Resolves a parent path inside the root, following symlinks as if the
    /// root were `/`, creating missing directories when `create` is set.
    fn resolve(&self, relative: &Path, create: bool) -> std::result::Result<PathBuf, String> {
        let mut done: Vec<std::ffi::OsString> = Vec::new();
        let mut todo: Vec<std::ffi::OsString> = relative
            .components()
            .rev()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        let mut hops = 0;
        while let Some(component) = todo.pop() {
            if component == ".." {
                if done.pop().is_none() {
                    return Err("goes through a symlink that leaves the image".to_owned());
                }
                continue;
            }
            if component == "." || component.is_empty() {
                continue;
            }
            let mut here = self.root.clone();
            here.extend(&done);
            here.push(&component);
            match std::fs::symlink_metadata(&here) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Err("goes through too many symlinks".to_owned());
                    }
                    let target = std::fs::read_link(&here).map_err(|e| e.to_string())?;
                    if target.is_absolute() {
                        done.clear();
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::RootDir | Component::Prefix(_) => {}
                            other => todo.push(other.as_os_str().to_os_string()),
                        }
                    }
                }
                Ok(m) if m.is_dir() => done.push(component),
                Ok(_) => {
                    return Err(format!(
                        "has a parent {} that is not a directory",
                        here.display()
                    ));
                }
                Err(_) if create => {
                    std::fs::create_dir(&here)
                        .map_err(|e| format!("cannot create {}: {e}", here.display()))?;
                    done.push(component);
                }
                Err(_) => return Err("points into a directory that does not exist".to_owned()),
            }
        }
        let mut path = self.root.clone();
        path.extend(&done);
        Ok(path)
    }

    fn make_opaque(&self, dir: &Path, dir_rel: &Path, created: &HashSet<PathBuf>) -> Result<()> {
        for child in std::fs::read_dir(dir).at("list", dir)?.flatten() {
            if !created.contains(&dir_rel.join(child.file_name())) {
                remove_all(&child.path())?;
            }
        }
        Ok(())
    }

    /// Creates a device node or FIFO; returns false when it was skipped.
    fn make_node(
        &self,
        header: &tar::Header,
        kind: EntryType,
        path: &Path,
        mode: u32,
    ) -> Result<bool> {
        let file_type = match kind {
            EntryType::Char => FileType::CharacterDevice,
            EntryType::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        if file_type != FileType::Fifo && !self.privileged {
            tracing::debug!(path = %path.display(), "device node skipped: not root");
            return Ok(false);
        }
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        let dev = rustix::fs::makedev(major, minor);
        rustix::fs::mknodat(
            CWD,
            path,
            file_type,
            rustix::fs::Mode::from_raw_mode(mode & 0o777),
            dev,
        )
        .at("create device node", path)?;
        Ok(true)
    }

    /// Owner, xattrs, mode and times; through `file` when it is open (a
    /// regular file), else by path without following a symlink.
    fn set_metadata<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        file: Option<&File>,
        kind: EntryType,
        mode: u32,
        mtime: i64,
    ) -> Result<()> {
        let header = entry.header();
        if self.privileged {
            let uid = Some(rustix::fs::Uid::from_raw(header.uid().unwrap_or(0) as u32));
            let gid = Some(rustix::fs::Gid::from_raw(header.gid().unwrap_or(0) as u32));
            match file {
                Some(f) => rustix::fs::fchown(f, uid, gid),
                None => rustix::fs::chownat(CWD, path, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
            }
            .at("set the owner of", path)?;
        }
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for extension in extensions.flatten() {
                let Ok(key) = extension.key() else { continue };
                let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                    continue;
                };
                if !self.privileged && !name.starts_with("user.") {
                    continue;
                }
                let value = extension.value_bytes();
                let flags = rustix::fs::XattrFlags::empty();
                let set = match file {
                    Some(f) => rustix::fs::fsetxattr(f, name, value, flags),
                    None => rustix::fs::lsetxattr(path, name, value, flags),
                };
                if let Err(e) = set {
                    tracing::warn!(path = %path.display(), xattr = name, "xattr not set: {e}");
                }
            }
        }
        if kind != EntryType::Symlink && kind != EntryType::Directory {
            match file {
                Some(f) => f.set_permissions(std::fs::Permissions::from_mode(mode)),
                None => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)),
            }
            .at("set the mode of", path)?;
        }
        if kind != EntryType::Directory {
            match file {
                Some(f) => {
                    rustix::fs::futimens(f, &timestamps(mtime)).at("set the times of", path)?
                }
                None => set_times(path, mtime)?,
            }
        }
        Ok(())
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

/// Writes a regular file, leaving runs of zeros as holes (sparse files stay
/// sparse), and returns it open for its metadata.
fn write_file(reader: &mut impl Read, path: &Path) -> Result<File> {
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .at("create", path)?;
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

fn set_times(path: &Path, mtime: i64) -> Result<()> {
    rustix::fs::utimensat(CWD, path, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)
        .at("set the times of", path)
}

/// Removes a file, link or directory tree if it exists.
fn remove_all(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).at("remove", path),
        Ok(_) => std::fs::remove_file(path).at("remove", path),
        Err(_) => Ok(()),
    }
}

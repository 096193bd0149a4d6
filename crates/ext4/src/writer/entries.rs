//! Adding and removing entries: the public face of [`Formatter`] that takes
//! directories, files, links and special files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::resolve::{Stop, Walk};
use super::tree::{Body, Node, split_path};
use super::{Formatter, display};
use crate::format::extent::Extent;
use crate::format::{LINK_MAX, ROOT_INODE};
use crate::metadata::{DeviceNumber, Metadata};
use crate::{Error, Result};

/// An entry with no data: a device, a FIFO or a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// A character device.
    CharDevice(DeviceNumber),
    /// A block device.
    BlockDevice(DeviceNumber),
    /// A named pipe.
    Fifo,
    /// A unix socket.
    Socket,
}

fn bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

impl Formatter {
    /// Creates the directory `path`, or gives an existing one `meta`.
    pub fn create_dir(&mut self, path: impl AsRef<Path>, meta: &Metadata) -> Result<()> {
        let path = bytes(path.as_ref());
        let names = split_path(path)?;
        let Some((name, parents)) = names.split_last() else {
            let layer = self.layer;
            if let Some(root) = self.tree.get_mut(ROOT_INODE) {
                root.meta = meta.clone();
                root.layer = layer;
            }
            return Ok(());
        };
        let dir = self.parent_dir(path, parents, meta)?;
        if let Some(existing) = self.tree.child(dir, name)
            && let Some(node) = self.tree.get_mut(existing)
            && node.is_dir()
        {
            node.meta = meta.clone();
            node.layer = self.layer;
            return Ok(());
        }
        let body = Body::Dir {
            children: BTreeMap::new(),
            parent: dir,
        };
        self.attach(path, dir, name, meta, body).map(|_| ())
    }

    /// Adds the regular file `path` with the bytes `data` yields until its
    /// end. Blocks of zeros become holes.
    pub fn add_file(
        &mut self,
        path: impl AsRef<Path>,
        meta: &Metadata,
        data: &mut dyn Read,
    ) -> Result<()> {
        let path = bytes(path.as_ref());
        let names = split_path(path)?;
        let (dir, name) = self.parent_for_entry(path, &names, meta)?;
        let mut extents = Vec::new();
        let size = match self.write_stream(path, data, 0, &mut extents) {
            Ok(size) => size,
            Err(e) => {
                self.free(&extents)?;
                return Err(e);
            }
        };
        self.attach(path, dir, name, meta, Body::File { size, extents })
            .map(|_| ())
    }

    /// Adds the regular file `path` from a host file, reading only the parts
    /// that are not holes (`SEEK_DATA`).
    pub fn add_host_file(
        &mut self,
        path: impl AsRef<Path>,
        meta: &Metadata,
        file: &File,
    ) -> Result<()> {
        let path = bytes(path.as_ref());
        let names = split_path(path)?;
        let (dir, name) = self.parent_for_entry(path, &names, meta)?;
        let mut extents = Vec::new();
        let size = match self.write_host_file(path, file, &mut extents) {
            Ok(size) => size,
            Err(e) => {
                self.free(&extents)?;
                return Err(e);
            }
        };
        self.attach(path, dir, name, meta, Body::File { size, extents })
            .map(|_| ())
    }

    /// Adds the symbolic link `path` pointing at `target`.
    pub fn add_symlink(
        &mut self,
        path: impl AsRef<Path>,
        meta: &Metadata,
        target: impl AsRef<Path>,
    ) -> Result<()> {
        let path = bytes(path.as_ref());
        let target = bytes(target.as_ref());
        if target.is_empty() || target.len() >= self.blocks.size as usize {
            return Err(Error::InvalidPath {
                path: display(path),
                reason: "a symlink target must be shorter than a block (4095 bytes with 4 KiB blocks)",
            });
        }
        let names = split_path(path)?;
        let (dir, name) = self.parent_for_entry(path, &names, meta)?;
        self.attach(path, dir, name, meta, Body::Symlink(target.into()))
            .map(|_| ())
    }

    /// Adds a device, a FIFO or a socket.
    pub fn add_special(
        &mut self,
        path: impl AsRef<Path>,
        meta: &Metadata,
        special: Special,
    ) -> Result<()> {
        let path = bytes(path.as_ref());
        let names = split_path(path)?;
        let (dir, name) = self.parent_for_entry(path, &names, meta)?;
        let body = match special {
            Special::CharDevice(dev) => Body::CharDevice(dev),
            Special::BlockDevice(dev) => Body::BlockDevice(dev),
            Special::Fifo => Body::Fifo,
            Special::Socket => Body::Socket,
        };
        self.attach(path, dir, name, meta, body).map(|_| ())
    }

    /// Makes `path` a second name of the existing non-directory `target`.
    pub fn add_hard_link(
        &mut self,
        path: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<()> {
        let path = bytes(path.as_ref());
        let target = bytes(target.as_ref());
        let target_names = split_path(target)?;
        let ino = self
            .tree
            .lookup(target, &target_names)?
            .ok_or_else(|| Error::NotFound {
                path: display(target),
            })?;
        let node = self.tree.get(ino).ok_or_else(|| Error::NotFound {
            path: display(target),
        })?;
        if node.is_dir() {
            return Err(Error::HardLinkToDirectory {
                link: display(path),
                target: display(target),
            });
        }
        if node.links >= LINK_MAX {
            return Err(Error::TooManyLinks {
                path: display(target),
            });
        }
        let meta = node.meta.clone();
        let links = node.links;
        let names = split_path(path)?;
        let (dir, name) = self.parent_for_entry(path, &names, &meta)?;
        let existing = self.tree.child(dir, name);
        if existing == Some(ino) {
            return Ok(());
        }
        // The target is resolved before what is at the link's path goes.
        // When that is a directory holding every name of the target (`a`
        // linked to `a/f`), replacing it would free the very inode the
        // link is for, leaving a name on a dead inode. Keeping the inode
        // alive would be consistent too, but Docker and containerd remove
        // `a` first and then fail to link, so the layer is refused: the
        // image never holds what no other unpacker would make of it.
        if let Some(existing) = existing
            && self.tree.get(existing).is_some_and(Node::is_dir)
            && self.tree.names_below(existing, ino) >= links
        {
            return Err(Error::HardLinkReplacesTarget {
                layer: usize::from(self.layer),
                link: display(path),
                target: display(target),
            });
        }
        self.unlink(dir, name)?;
        if let Some(node) = self.tree.get_mut(ino) {
            node.links += 1;
        }
        self.tree.link(dir, name, ino);
        Ok(())
    }

    /// Removes `path` and everything below it; false when it did not exist.
    pub fn remove(&mut self, path: impl AsRef<Path>) -> Result<bool> {
        let path = bytes(path.as_ref());
        let names = split_path(path)?;
        let Some((name, parents)) = names.split_last() else {
            return Ok(false);
        };
        let Some(dir) = self.tree.lookup_dir(path, parents)? else {
            return Ok(false);
        };
        if self.tree.child(dir, name).is_none() {
            return Ok(false);
        }
        self.unlink(dir, name)?;
        Ok(true)
    }

    /// True when `path` names an entry (its last name not followed).
    pub fn exists(&self, path: impl AsRef<Path>) -> bool {
        let path = bytes(path.as_ref());
        split_path(path)
            .ok()
            .and_then(|names| self.tree.lookup(path, &names).ok().flatten())
            .is_some()
    }

    /// Removes what lower layers put under the directory `path` (an opaque
    /// directory), keeping what the current layer added.
    pub(crate) fn clear_lower(&mut self, path: &[u8]) -> Result<()> {
        let Some(dir) = self.tree.lookup_dir(path, &split_path(path)?)? else {
            return Ok(());
        };
        let mut freed = Vec::new();
        self.tree.clear_lower(dir, self.layer, &mut freed);
        self.free(&freed)
    }

    fn unlink(&mut self, dir: u32, name: &[u8]) -> Result<()> {
        let mut freed = Vec::new();
        self.tree.unlink(dir, name, &mut freed);
        self.free(&freed)
    }

    /// Gives data blocks back to the allocator and the host.
    fn free(&mut self, extents: &[Extent]) -> Result<()> {
        for e in extents {
            self.alloc.release(e.physical, u64::from(e.len));
            let punch = self.spool.punch(e.physical, u64::from(e.len));
            punch.map_err(self.io_error("cannot free blocks in"))?;
        }
        Ok(())
    }

    /// The directory that will hold the last name of `names`, made if needed.
    fn parent_for_entry<'a>(
        &mut self,
        path: &[u8],
        names: &[&'a [u8]],
        meta: &Metadata,
    ) -> Result<(u32, &'a [u8])> {
        let Some((name, parents)) = names.split_last() else {
            return Err(Error::InvalidPath {
                path: display(path),
                reason: "only a directory can be the root",
            });
        };
        Ok((self.parent_dir(path, parents, meta)?, name))
    }

    /// The directory `parents` (the directory names of the entry `path`)
    /// lead to, resolved in the image as [`resolve`](super::resolve)
    /// describes; missing directories are made (mode 0755, owned by root,
    /// with the times of `meta`).
    fn parent_dir(&mut self, path: &[u8], parents: &[&[u8]], meta: &Metadata) -> Result<u32> {
        let mut walk = Walk::new(path, parents);
        loop {
            let (at, name) = match walk.run(&self.tree)? {
                Stop::Arrived(dir) => return Ok(dir),
                Stop::Missing { dir, name } => (dir, name),
            };
            let mut dir_meta = Metadata::new(0o755, meta.mtime);
            dir_meta.atime = meta.atime;
            let node = Node {
                meta: dir_meta,
                body: Body::Dir {
                    children: BTreeMap::new(),
                    parent: at,
                },
                links: 1,
                layer: self.layer,
            };
            let ino = self.tree.insert(node);
            self.tree.link(at, &name, ino);
            walk.enter(ino);
        }
    }

    /// Puts a new node under `name` in `dir`, replacing what was there.
    fn attach(
        &mut self,
        path: &[u8],
        dir: u32,
        name: &[u8],
        meta: &Metadata,
        body: Body,
    ) -> Result<u32> {
        if !meta.xattrs.is_empty() {
            super::inode_build::check_xattrs(path, &meta.xattrs, self.blocks.size)?;
        }
        self.unlink(dir, name)?;
        let node = Node {
            meta: meta.clone(),
            body,
            links: 1,
            layer: self.layer,
        };
        let ino = self.tree.insert(node);
        self.tree.link(dir, name, ino);
        Ok(ino)
    }
}

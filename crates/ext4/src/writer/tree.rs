//! The file tree being built, held in memory until the image is finished:
//! one node per inode, directories as sorted name maps.
//!
//! Only metadata lives here (file data is already in the image, described by
//! extents), so a million entries take a few hundred bytes each. Inode
//! numbers are handed out as nodes are made and reused when nodes go away,
//! so the inode tables stay dense.

use std::collections::BTreeMap;

use crate::format::extent::Extent;
use crate::format::{FIRST_INODE, NAME_MAX, ROOT_INODE};
use crate::metadata::{DeviceNumber, Metadata};
use crate::{Error, Result};

/// What a node is, with what its kind needs.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// A directory: its entries by name, and its parent.
    Dir {
        children: BTreeMap<Box<[u8]>, u32>,
        parent: u32,
    },
    /// A regular file: its size and where its data blocks are.
    File { size: u64, extents: Vec<Extent> },
    /// A symbolic link and its target.
    Symlink(Box<[u8]>),
    /// A character device.
    CharDevice(DeviceNumber),
    /// A block device.
    BlockDevice(DeviceNumber),
    /// A named pipe.
    Fifo,
    /// A unix socket.
    Socket,
}

/// One inode.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub meta: Metadata,
    pub body: Body,
    /// Names pointing at this node (directories: 1, their `..` links are
    /// counted when the image is written).
    pub links: u32,
    /// The layer that last created or merged this node (0 outside layers).
    pub layer: u16,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir { .. })
    }
}

/// All nodes, indexed by inode number.
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: Vec<Option<Node>>,
    spare: Vec<u32>,
}

/// Splits `path` (an entry path, a hard link's target, or a path to look
/// up) into its names: leading `/` and `.` parts are dropped; `..`, names
/// over 255 bytes and NUL bytes are refused, as the host-side unpacker and
/// Docker refuse them: an entry names a place in the image, it does not
/// climb to one. (`..` in a symlink's target is resolved: see `resolve`.)
pub(crate) fn split_path(path: &[u8]) -> Result<Vec<&[u8]>> {
    let mut names = Vec::new();
    for name in path.split(|&b| b == b'/') {
        match name {
            b"" | b"." => {}
            b".." => {
                return Err(Error::InvalidPath {
                    path: display(path),
                    reason: "it has a '..' component",
                });
            }
            _ => {
                check_name(path, name)?;
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Refuses a name ext4 cannot store: over 255 bytes, or with a NUL byte.
pub(crate) fn check_name(path: &[u8], name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong {
            path: display(path),
            name: name.to_vec(),
            len: name.len(),
        });
    }
    if name.contains(&0) {
        return Err(Error::InvalidPath {
            path: display(path),
            reason: "it contains a NUL byte",
        });
    }
    Ok(())
}

/// A path as a `PathBuf` for error messages.
pub(crate) fn display(path: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path))
}

impl Tree {
    /// A tree holding only the root directory with `root` metadata.
    pub fn new(root: Metadata) -> Self {
        let mut nodes = vec![None; FIRST_INODE as usize];
        nodes[ROOT_INODE as usize] = Some(Node {
            meta: root,
            body: Body::Dir {
                children: BTreeMap::new(),
                parent: ROOT_INODE,
            },
            links: 1,
            layer: 0,
        });
        Self {
            nodes,
            spare: Vec::new(),
        }
    }

    /// The node of inode `ino`.
    pub fn get(&self, ino: u32) -> Option<&Node> {
        self.nodes.get(ino as usize).and_then(Option::as_ref)
    }

    /// The node of inode `ino`, to change.
    pub fn get_mut(&mut self, ino: u32) -> Option<&mut Node> {
        self.nodes.get_mut(ino as usize).and_then(Option::as_mut)
    }

    /// Highest inode number in use, plus one.
    pub fn inode_end(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// Inode numbers in use (reserved ones excluded).
    pub fn live(&self) -> impl Iterator<Item = (u32, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i as u32, n)))
    }

    /// Stores a new node and returns its inode number.
    pub fn insert(&mut self, node: Node) -> u32 {
        match self.spare.pop() {
            Some(ino) => {
                self.nodes[ino as usize] = Some(node);
                ino
            }
            None => {
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// The entry `name` of directory `dir`.
    pub fn child(&self, dir: u32, name: &[u8]) -> Option<u32> {
        match &self.get(dir)?.body {
            Body::Dir { children, .. } => children.get(name).copied(),
            _ => None,
        }
    }

    /// The parent of directory `dir`; the root is its own parent, so `..`
    /// never leaves the image.
    pub fn parent(&self, dir: u32) -> u32 {
        match self.get(dir).map(|n| &n.body) {
            Some(Body::Dir { parent, .. }) => *parent,
            _ => ROOT_INODE,
        }
    }

    /// How many names of `ino` lie inside the directory `dir` (at any
    /// depth): the names removing `dir` would take away. Directories to
    /// visit are kept on a stack, not the call stack.
    pub fn names_below(&self, dir: u32, ino: u32) -> u32 {
        let mut count = 0;
        let mut pending = vec![dir];
        while let Some(dir) = pending.pop() {
            let Some(Body::Dir { children, .. }) = self.get(dir).map(|n| &n.body) else {
                continue;
            };
            for &child in children.values() {
                if child == ino {
                    count += 1;
                } else if self.get(child).is_some_and(Node::is_dir) {
                    pending.push(child);
                }
            }
        }
        count
    }

    /// Links `ino` as `name` in `dir` (which must not hold `name`).
    pub fn link(&mut self, dir: u32, name: &[u8], ino: u32) {
        if let Some(Body::Dir { children, .. }) = self.get_mut(dir).map(|n| &mut n.body) {
            children.insert(name.into(), ino);
        }
        if let Some(Body::Dir { parent, .. }) = self.get_mut(ino).map(|n| &mut n.body) {
            *parent = dir;
        }
    }

    /// Removes the entry `name` from `dir`; nodes left without names are
    /// dropped (directories with everything below them) and the extents of
    /// their data are pushed to `freed`.
    pub fn unlink(&mut self, dir: u32, name: &[u8], freed: &mut Vec<Extent>) {
        let ino = match self.get_mut(dir).map(|n| &mut n.body) {
            Some(Body::Dir { children, .. }) => children.remove(name),
            _ => None,
        };
        if let Some(ino) = ino {
            self.drop_link(ino, freed);
        }
    }

    /// Takes one name away from `ino`; when it has none left, the node is
    /// dropped, and with a directory everything below it. The walk keeps
    /// its own stack of nodes to visit, so a tree of any depth (a layer can
    /// nest directories 100,000 deep) is freed without deep recursion.
    fn drop_link(&mut self, ino: u32, freed: &mut Vec<Extent>) {
        let mut pending = vec![ino];
        while let Some(ino) = pending.pop() {
            let Some(node) = self.get_mut(ino) else {
                continue;
            };
            node.links = node.links.saturating_sub(1);
            if node.links > 0 {
                continue;
            }
            let Some(node) = self.nodes[ino as usize].take() else {
                continue;
            };
            self.spare.push(ino);
            match node.body {
                Body::Dir { children, .. } => pending.extend(children.into_values()),
                Body::File { extents, .. } => freed.extend(extents),
                _ => {}
            }
        }
    }

    /// Removes every entry of `dir` that an earlier layer than `layer` made,
    /// and, below directories this layer merged, theirs too (an opaque
    /// directory hides everything lower layers put under it). Directories
    /// to visit are kept on a stack of their own, not the call stack.
    pub fn clear_lower(&mut self, dir: u32, layer: u16, freed: &mut Vec<Extent>) {
        let mut pending = vec![dir];
        while let Some(dir) = pending.pop() {
            let entries: Vec<(Box<[u8]>, u32)> = match self.get(dir).map(|n| &n.body) {
                Some(Body::Dir { children, .. }) => {
                    children.iter().map(|(k, &v)| (k.clone(), v)).collect()
                }
                _ => continue,
            };
            for (name, ino) in entries {
                let Some(node) = self.get(ino) else { continue };
                if node.layer < layer {
                    self.unlink(dir, &name, freed);
                } else if node.is_dir() {
                    pending.push(ino);
                }
            }
        }
    }
}

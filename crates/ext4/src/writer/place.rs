//! Placing what needs blocks besides file data: directory blocks, extent
//! trees of fragmented files, long symlinks, xattr blocks and the journal.
//! Each is written as soon as it is placed.

use std::collections::{BTreeMap, HashMap};

use super::alloc::Allocator;
use super::directory::{self, DirContext, DirEntry};
use super::extent_tree;
use super::inode_build::{self, Placement};
use super::journal::{self, JOURNAL_INODE};
use super::spool::Spool;
use super::tree::{Body, Node, Tree};
use crate::format::checksum;
use crate::format::dirent::FileType;
use crate::format::extent::Extent;
use crate::format::xattr;
use crate::format::{INLINE_SYMLINK_MAX, inode_flags};
use crate::{Error, Result};

/// The directory-entry type of a node.
pub(crate) fn file_type(node: &Node) -> FileType {
    match node.body {
        Body::Dir { .. } => FileType::Directory,
        Body::File { .. } => FileType::Regular,
        Body::Symlink(_) => FileType::Symlink,
        Body::CharDevice(_) => FileType::CharDevice,
        Body::BlockDevice(_) => FileType::BlockDevice,
        Body::Fifo => FileType::Fifo,
        Body::Socket => FileType::Socket,
    }
}

/// Blocks outside the file data, placed: the allocator, the spool and what
/// the checksums need.
pub(crate) struct Placer<'a> {
    pub alloc: &'a mut Allocator,
    pub spool: &'a mut Spool,
    pub goal: u64,
    pub fs_seed: Option<u32>,
    /// The image size for error messages.
    pub size: u64,
    /// Bytes per block.
    pub bs: u64,
}

impl Placer<'_> {
    pub fn block(&mut self) -> Result<u64> {
        let (start, _) = self.alloc.alloc(self.goal, 1).ok_or(Error::OutOfSpace {
            size: self.size,
            path: "(metadata)".into(),
        })?;
        self.goal = start + 1;
        Ok(start)
    }

    /// Writes `blocks` as a file's data from logical block 0; returns its
    /// extents.
    pub fn write_blocks(&mut self, blocks: &[Vec<u8>]) -> Result<Vec<Extent>> {
        let mut extents: Vec<Extent> = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let at = self.block()?;
            self.spool
                .write(at, b)
                .map_err(io("cannot write a directory to the image"))?;
            match extents.last_mut() {
                Some(e) if e.physical + u64::from(e.len) == at && e.len < 32_768 => e.len += 1,
                _ => extents.push(Extent {
                    logical: i as u32,
                    len: 1,
                    physical: at,
                }),
            }
        }
        Ok(extents)
    }

    /// Places a file's extents: the root for `i_block`, tree blocks written.
    pub fn tree(&mut self, extents: &[Extent], ino: u32) -> Result<([u8; 60], u64)> {
        let seed = self.fs_seed.map(|s| checksum::inode_seed(s, ino, 0));
        let (root, blocks) = extent_tree::build(extents, self.bs as usize, seed, || self.block())?;
        for (at, bytes) in &blocks {
            self.spool
                .write(*at, bytes)
                .map_err(io("cannot write an extent block to the image"))?;
        }
        Ok((root, blocks.len() as u64))
    }
}

fn io(action: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |source| Error::Io {
        action,
        path: "(image)".into(),
        source,
    }
}

/// Allocates and writes an empty journal of `blocks` blocks.
pub(crate) fn place_journal(
    placer: &mut Placer<'_>,
    blocks: u64,
    uuid: &[u8; 16],
) -> Result<Placement> {
    let start = placer
        .alloc
        .alloc_contiguous(placer.goal, blocks)
        .ok_or(Error::OutOfSpace {
            size: placer.size,
            path: "(the journal)".into(),
        })?;
    placer.goal = start + blocks;
    let sb = journal::superblock(blocks as u32, uuid, placer.bs as u32);
    placer
        .spool
        .write(start, &sb)
        .map_err(io("cannot write the journal to the image"))?;
    let mut extents = Vec::new();
    let mut done = 0;
    while done < blocks {
        let len = (blocks - done).min(32_768);
        extents.push(Extent {
            logical: done as u32,
            len: len as u16,
            physical: start + done,
        });
        done += len;
    }
    let (root, tree_blocks) = placer.tree(&extents, JOURNAL_INODE)?;
    Ok(Placement {
        block: root,
        flags: inode_flags::EXTENTS,
        size: blocks * placer.bs,
        blocks: blocks + tree_blocks,
        file_acl: 0,
    })
}

/// Places directory blocks, extent trees, long symlinks and xattr blocks of
/// every node.
pub(crate) fn place_all(
    tree: &Tree,
    placer: &mut Placer<'_>,
    hash_seed: [u32; 4],
) -> Result<HashMap<u32, Placement>> {
    let mut placements = HashMap::new();
    for (ino, node) in tree.live() {
        let placement = match &node.body {
            Body::Dir { children, parent } => {
                Some(place_dir(tree, placer, ino, *parent, children, hash_seed)?)
            }
            Body::File { size, extents } if extents.len() > 4 => {
                let (block, tree_blocks) = placer.tree(extents, ino)?;
                let data: u64 = extents.iter().map(|e| u64::from(e.len)).sum();
                Some(Placement {
                    block,
                    flags: inode_flags::EXTENTS,
                    size: *size,
                    blocks: data + tree_blocks,
                    file_acl: 0,
                })
            }
            Body::Symlink(target) if target.len() > INLINE_SYMLINK_MAX => {
                let mut block = vec![0u8; placer.bs as usize];
                block[..target.len()].copy_from_slice(target);
                let extents = placer.write_blocks(&[block])?;
                let (root, _) = placer.tree(&extents, ino)?;
                Some(Placement {
                    block: root,
                    flags: inode_flags::EXTENTS,
                    size: target.len() as u64,
                    blocks: 1,
                    file_acl: 0,
                })
            }
            _ => None,
        };
        if node.meta.xattrs.is_empty() {
            if let Some(p) = placement {
                placements.insert(ino, p);
            }
            continue;
        }
        let raw = inode_build::check_xattrs(b"", &node.meta.xattrs, placer.bs)?;
        if inode_build::inline_area(&raw).is_some() {
            if let Some(p) = placement {
                placements.insert(ino, p);
            }
            continue;
        }
        let at = placer.block()?;
        let block = xattr::encode_block(&raw, placer.bs as usize, at, placer.fs_seed).ok_or(
            Error::XattrsTooLarge {
                path: "(an entry)".into(),
                bytes: xattr::block_size_needed(&raw),
            },
        )?;
        placer
            .spool
            .write(at, &block)
            .map_err(io("cannot write an xattr block to the image"))?;
        let mut p = placement.unwrap_or_else(|| {
            let inode = inode_build::build(node, 1, None, Vec::new(), placer.bs);
            Placement {
                block: inode.block,
                flags: inode.flags,
                size: inode.size,
                blocks: inode.sectors / (placer.bs / 512),
                file_acl: 0,
            }
        });
        p.file_acl = at;
        p.blocks += 1;
        placements.insert(ino, p);
    }
    Ok(placements)
}

fn place_dir(
    tree: &Tree,
    placer: &mut Placer<'_>,
    ino: u32,
    parent: u32,
    children: &BTreeMap<Box<[u8]>, u32>,
    hash_seed: [u32; 4],
) -> Result<Placement> {
    let mut entries: Vec<DirEntry<'_>> = children
        .iter()
        .filter_map(|(name, &child)| {
            tree.get(child).map(|node| DirEntry {
                name,
                inode: child,
                file_type: file_type(node),
            })
        })
        .collect();
    let ctx = DirContext {
        inode: ino,
        parent,
        inode_seed: placer.fs_seed.map(|s| checksum::inode_seed(s, ino, 0)),
        hash_seed,
        block_size: placer.bs as usize,
    };
    let (blocks, indexed) = directory::build(&ctx, &mut entries);
    let extents = placer.write_blocks(&blocks)?;
    let (root, tree_blocks) = placer.tree(&extents, ino)?;
    let mut flags = inode_flags::EXTENTS;
    if indexed {
        flags |= inode_flags::INDEX;
    }
    Ok(Placement {
        block: root,
        flags,
        size: blocks.len() as u64 * placer.bs,
        blocks: blocks.len() as u64 + tree_blocks,
        file_acl: 0,
    })
}

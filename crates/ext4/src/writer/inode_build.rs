//! Turning a node of the tree into its on-disk inode: mode and flags, what
//! `i_block` holds for each kind, and where the xattrs go (the inode's spare
//! bytes when they fit, else one attribute block).

use super::tree::{Body, Node};
use crate::format::extent::{self, Node as ExtentNode};
use crate::format::inode::{INLINE_XATTR_SIZE, Inode};
use crate::format::xattr::{self, RawXattr};
use crate::format::{INLINE_SYMLINK_MAX, inode_flags, mode};
use crate::metadata::{DeviceNumber, Xattr};
use crate::{Error, Result};

/// Where the blocks of an inode that owns some outside the data went.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub block: [u8; 60],
    pub flags: u32,
    pub size: u64,
    /// Blocks the inode owns, tree and xattr block included.
    pub blocks: u64,
    pub file_acl: u64,
}

/// The stored form of `xattrs`; refuses names ext4 has no namespace for and
/// sets too large for one inode and one block.
pub(crate) fn check_xattrs(
    path: &[u8],
    xattrs: &[Xattr],
    block_size: u64,
) -> Result<Vec<RawXattr>> {
    let mut raw = Vec::with_capacity(xattrs.len());
    for x in xattrs {
        let r = RawXattr::from_full(&x.name, &x.value).ok_or_else(|| Error::XattrName {
            path: super::display(path),
            name: x.name.clone(),
        })?;
        if r.name.len() > 255 {
            return Err(Error::XattrName {
                path: super::display(path),
                name: x.name.clone(),
            });
        }
        raw.push(r);
    }
    let bytes = xattr::block_size_needed(&raw);
    if bytes > block_size as usize {
        return Err(Error::XattrsTooLarge {
            path: super::display(path),
            bytes,
        });
    }
    Ok(raw)
}

/// The in-inode area for `raw`, or `None` when they need a block.
pub(crate) fn inline_area(raw: &[RawXattr]) -> Option<Vec<u8>> {
    if raw.is_empty() {
        return Some(Vec::new());
    }
    xattr::encode_inline(raw, INLINE_XATTR_SIZE)
}

fn encode_device(dev: DeviceNumber) -> [u8; 60] {
    let mut block = [0u8; 60];
    if dev.major < 256 && dev.minor < 256 {
        let old = (dev.major << 8) | dev.minor;
        block[0..4].copy_from_slice(&old.to_le_bytes());
    } else {
        let new = (dev.minor & 0xFF) | (dev.major << 8) | ((dev.minor & !0xFF) << 12);
        block[4..8].copy_from_slice(&new.to_le_bytes());
    }
    block
}

/// The file type bits of `i_mode` for a body.
pub(crate) fn type_bits(body: &Body) -> u16 {
    match body {
        Body::Dir { .. } => mode::DIRECTORY,
        Body::File { .. } => mode::REGULAR,
        Body::Symlink(_) => mode::SYMLINK,
        Body::CharDevice(_) => mode::CHAR_DEVICE,
        Body::BlockDevice(_) => mode::BLOCK_DEVICE,
        Body::Fifo => mode::FIFO,
        Body::Socket => mode::SOCKET,
    }
}

/// The inode of `node`; `placement` is given when blocks outside the data
/// (directory blocks, tree, symlink block, xattr block) were placed.
pub(crate) fn build(
    node: &Node,
    links: u16,
    placement: Option<&Placement>,
    inline_xattrs: Vec<u8>,
    block_size: u64,
) -> Inode {
    let meta = &node.meta;
    let mut inode = Inode {
        mode: type_bits(&node.body) | (meta.permissions & 0o7777),
        uid: meta.uid,
        gid: meta.gid,
        atime: meta.atime,
        ctime: meta.ctime,
        mtime: meta.mtime,
        crtime: meta.crtime,
        links_count: links,
        inline_xattrs,
        ..Inode::default()
    };
    if let Some(p) = placement {
        inode.block = p.block;
        inode.flags = p.flags;
        inode.size = p.size;
        inode.sectors = p.blocks * (block_size / 512);
        inode.file_acl = p.file_acl;
        return inode;
    }
    match &node.body {
        Body::File { size, extents } => {
            inode.size = *size;
            inode.flags = inode_flags::EXTENTS;
            inode.block = extent::encode_root(&ExtentNode::Leaf(extents.clone()));
            let blocks: u64 = extents.iter().map(|e| u64::from(e.len)).sum();
            inode.sectors = blocks * (block_size / 512);
        }
        Body::Symlink(target) if target.len() <= INLINE_SYMLINK_MAX => {
            inode.size = target.len() as u64;
            inode.block[..target.len()].copy_from_slice(target);
        }
        Body::CharDevice(dev) | Body::BlockDevice(dev) => inode.block = encode_device(*dev),
        _ => {}
    }
    inode
}

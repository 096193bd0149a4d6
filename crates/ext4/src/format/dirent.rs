//! Directory entries (`ext4_dir_entry_2`) and the blocks that hold them.
//!
//! An entry is inode (4), record length (2), name length (1), file type (1)
//! and the name, padded to 4 bytes; the last entry of a block stretches to its
//! end. With `metadata_csum` each leaf block ends in a 12-byte fake entry
//! holding the block's crc32c.

use super::checksum;
use super::endian::{get_u8, get_u16, get_u32, put_u8, put_u16, put_u32};

/// Bytes of the checksum tail of a leaf block.
pub(crate) const TAIL_SIZE: usize = 12;

/// `file_type` codes of directory entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FileType {
    Unknown = 0,
    Regular = 1,
    Directory = 2,
    CharDevice = 3,
    BlockDevice = 4,
    Fifo = 5,
    Socket = 6,
    Symlink = 7,
}

impl FileType {
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Regular,
            2 => Self::Directory,
            3 => Self::CharDevice,
            4 => Self::BlockDevice,
            5 => Self::Fifo,
            6 => Self::Socket,
            7 => Self::Symlink,
            _ => Self::Unknown,
        }
    }
}

/// Space an entry with a name of `name_len` bytes needs.
pub(crate) fn entry_size(name_len: usize) -> usize {
    (8 + name_len).div_ceil(4) * 4
}

/// Writes one entry at `at` spanning `rec_len` bytes.
pub(crate) fn put_entry(
    block: &mut [u8],
    at: usize,
    inode: u32,
    rec_len: usize,
    name: &[u8],
    file_type: FileType,
) {
    put_u32(block, at, inode);
    put_u16(block, at + 4, rec_len as u16);
    put_u8(block, at + 6, name.len() as u8);
    put_u8(block, at + 7, file_type as u8);
    block[at + 8..at + 8 + name.len()].copy_from_slice(name);
}

/// Writes the checksum tail of a leaf block owned by the inode whose seed is
/// `inode_seed`.
pub(crate) fn put_tail(block: &mut [u8], inode_seed: u32) {
    let at = block.len() - TAIL_SIZE;
    block[at..].fill(0);
    put_u16(block, at + 4, TAIL_SIZE as u16);
    put_u8(block, at + 7, 0xDE);
    let crc = checksum::raw(inode_seed, &block[..at]);
    put_u32(block, at + 8, crc);
}

/// One decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub inode: u32,
    pub name: Vec<u8>,
    pub file_type: FileType,
}

/// The live entries of one directory block, `.` and `..` included; htree
/// index nodes and checksum tails decode as no entries. `None` when a record
/// length points outside the block.
pub(crate) fn decode_block(block: &[u8]) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 8 <= block.len() {
        let inode = get_u32(block, at);
        let rec_len = usize::from(get_u16(block, at + 4));
        let rec_len = if rec_len == 0 && block.len() == 65_536 {
            65_536
        } else {
            rec_len
        };
        let name_len = usize::from(get_u8(block, at + 6));
        if rec_len < 8 || at + rec_len > block.len() || 8 + name_len > rec_len {
            return None;
        }
        if inode != 0 {
            entries.push(Entry {
                inode,
                name: block[at + 8..at + 8 + name_len].to_vec(),
                file_type: FileType::from_code(get_u8(block, at + 7)),
            });
        }
        at += rec_len;
    }
    Some(entries)
}

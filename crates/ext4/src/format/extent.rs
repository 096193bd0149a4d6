//! Extent tree nodes: a 12-byte header, then 12-byte leaf extents or index
//! entries. The root lives in the inode's 60-byte `i_block` (4 entries); deeper
//! nodes fill whole blocks and end with a crc32c of the node.

use super::checksum;
use super::endian::{get_u16, get_u32, put_u16, put_u32};

const MAGIC: u16 = 0xF30A;
/// Size of the header and of each entry.
pub(crate) const ENTRY_SIZE: usize = 12;
/// Entries in the root held by the inode.
pub(crate) const ROOT_ENTRIES: usize = 4;

/// A run of `len` blocks of a file: logical block `logical` onwards is stored
/// at physical block `physical` onwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub logical: u32,
    pub len: u16,
    pub physical: u64,
}

/// An index entry: the subtree covering logical blocks from `logical` is in
/// block `child`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub logical: u32,
    pub child: u64,
}

/// A decoded node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Leaf(Vec<Extent>),
    Index {
        depth: u16,
        entries: Vec<IndexEntry>,
    },
}

/// Entries in a node of a block of `block_size` bytes (the checksum tail
/// takes the last 4 bytes).
pub(crate) fn entries_per_block(block_size: usize) -> usize {
    (block_size - ENTRY_SIZE - 4) / ENTRY_SIZE
}

fn header(out: &mut [u8], entries: usize, max: usize, depth: u16) {
    put_u16(out, 0, MAGIC);
    put_u16(out, 2, entries as u16);
    put_u16(out, 4, max as u16);
    put_u16(out, 6, depth);
}

fn put_leaf(out: &mut [u8], extents: &[Extent]) {
    for (i, e) in extents.iter().enumerate() {
        let at = ENTRY_SIZE * (i + 1);
        put_u32(out, at, e.logical);
        put_u16(out, at + 4, e.len);
        put_u16(out, at + 6, (e.physical >> 32) as u16);
        put_u32(out, at + 8, e.physical as u32);
    }
}

fn put_index(out: &mut [u8], entries: &[IndexEntry]) {
    for (i, e) in entries.iter().enumerate() {
        let at = ENTRY_SIZE * (i + 1);
        put_u32(out, at, e.logical);
        put_u32(out, at + 4, e.child as u32);
        put_u16(out, at + 8, (e.child >> 32) as u16);
    }
}

/// Encodes the in-inode root: a leaf (`depth` 0) or an index.
pub(crate) fn encode_root(node: &Node) -> [u8; 60] {
    let mut out = [0u8; 60];
    match node {
        Node::Leaf(extents) => {
            header(&mut out, extents.len(), ROOT_ENTRIES, 0);
            put_leaf(&mut out, extents);
        }
        Node::Index { depth, entries } => {
            header(&mut out, entries.len(), ROOT_ENTRIES, *depth);
            put_index(&mut out, entries);
        }
    }
    out
}

/// Encodes a node filling block `out`, with its checksum tail when
/// `inode_seed` is given.
pub(crate) fn encode_block(node: &Node, out: &mut [u8], inode_seed: Option<u32>) {
    out.fill(0);
    let max = entries_per_block(out.len());
    match node {
        Node::Leaf(extents) => {
            header(out, extents.len(), max, 0);
            put_leaf(out, extents);
        }
        Node::Index { depth, entries } => {
            header(out, entries.len(), max, *depth);
            put_index(out, entries);
        }
    }
    if let Some(seed) = inode_seed {
        let end = ENTRY_SIZE * (max + 1);
        let crc = checksum::raw(seed, &out[..end]);
        put_u32(out, end, crc);
    }
}

/// Decodes a node (root or block); `None` when the header is not an extent
/// header or claims more entries than the bytes hold.
pub(crate) fn decode(b: &[u8]) -> Option<Node> {
    if b.len() < ENTRY_SIZE || get_u16(b, 0) != MAGIC {
        return None;
    }
    let count = usize::from(get_u16(b, 2));
    let depth = get_u16(b, 6);
    if ENTRY_SIZE * (count + 1) > b.len() {
        return None;
    }
    let at = |i: usize| ENTRY_SIZE * (i + 1);
    if depth == 0 {
        Some(Node::Leaf(
            (0..count)
                .map(|i| Extent {
                    logical: get_u32(b, at(i)),
                    len: get_u16(b, at(i) + 4),
                    physical: (u64::from(get_u16(b, at(i) + 6)) << 32)
                        | u64::from(get_u32(b, at(i) + 8)),
                })
                .collect(),
        ))
    } else {
        Some(Node::Index {
            depth,
            entries: (0..count)
                .map(|i| IndexEntry {
                    logical: get_u32(b, at(i)),
                    child: u64::from(get_u32(b, at(i) + 4))
                        | (u64::from(get_u16(b, at(i) + 8)) << 32),
                })
                .collect(),
        })
    }
}

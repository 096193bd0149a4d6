//! Directory blocks: a linear list when the entries fit one block, else an
//! htree (hashed index) so the kernel finds a name among millions quickly.
//!
//! An htree's block 0 holds `.`, `..` and the root index; leaves hold the
//! entries sorted by name hash. With up to 507 leaves the root points at them
//! directly; beyond, one level of index nodes (510 children each) sits
//! between.

use crate::format::dirent::{self, FileType, TAIL_SIZE, entry_size};
use crate::format::dx_hash::{Signedness, half_md4_hash};
use crate::format::endian::{put_u8, put_u16, put_u32};
use crate::format::superblock::HASH_HALF_MD4;

/// One name of a directory.
pub(crate) struct DirEntry<'a> {
    pub name: &'a [u8],
    pub inode: u32,
    pub file_type: FileType,
}

/// What to build a directory with.
pub(crate) struct DirContext {
    /// The directory's own inode and its parent.
    pub inode: u32,
    pub parent: u32,
    /// The directory's checksum seed when `metadata_csum` is on.
    pub inode_seed: Option<u32>,
    /// The file system's hash seed.
    pub hash_seed: [u32; 4],
    /// Bytes per block.
    pub block_size: usize,
}

/// Index entries in the root (block minus `.`/`..`/root info and the tail).
fn root_limit(bs: usize) -> usize {
    (bs - 32) / 8 - 1
}

/// Index entries in an interior node.
fn node_limit(bs: usize) -> usize {
    (bs - 8) / 8 - 1
}

/// Fills leaf blocks with `entries` in order, the first block starting as
/// `first` with `at` bytes used and its last entry at `last`; returns the
/// blocks and, for each, the index of its first entry.
fn fill_leaves(
    entries: &[DirEntry<'_>],
    first: Vec<u8>,
    mut at: usize,
    mut last_entry: Option<usize>,
    tail: usize,
) -> Vec<(usize, Vec<u8>)> {
    let bs = first.len();
    let mut blocks = Vec::new();
    let mut block = first;
    let mut first_index = 0;
    let usable = bs - tail;
    for (i, e) in entries.iter().enumerate() {
        let size = entry_size(e.name.len());
        if at + size > usable {
            close_block(&mut block, last_entry, usable);
            blocks.push((first_index, std::mem::replace(&mut block, vec![0u8; bs])));
            at = 0;
            first_index = i;
        }
        dirent::put_entry(&mut block, at, e.inode, size, e.name, e.file_type);
        last_entry = Some(at);
        at += size;
    }
    close_block(&mut block, last_entry, usable);
    blocks.push((first_index, block));
    blocks
}

/// Stretches the last entry of a block to its usable end (or writes one
/// empty entry spanning the block).
fn close_block(block: &mut [u8], last: Option<usize>, usable: usize) {
    match last {
        Some(last) => put_u16(block, last + 4, (usable - last) as u16),
        None => put_u16(block, 4, usable as u16),
    }
}

/// The directory's blocks, in logical order, checksummed; and whether they
/// form an htree (the inode then carries the index flag).
pub(crate) fn build(ctx: &DirContext, entries: &mut [DirEntry<'_>]) -> (Vec<Vec<u8>>, bool) {
    let bs = ctx.block_size;
    let tail = if ctx.inode_seed.is_some() {
        TAIL_SIZE
    } else {
        0
    };
    let dots = entry_size(1) + entry_size(2);
    let linear_bytes: usize = dots
        + entries
            .iter()
            .map(|e| entry_size(e.name.len()))
            .sum::<usize>();
    if linear_bytes + tail > bs
        && let Some(blocks) = build_htree(ctx, entries, tail)
    {
        return (blocks, true);
    }
    // One block, or (past what two index levels reach) a plain list of
    // blocks, which ext4 reads as well, only slower.
    let mut block = vec![0u8; bs];
    dirent::put_entry(&mut block, 0, ctx.inode, 12, b".", FileType::Directory);
    dirent::put_entry(&mut block, 12, ctx.parent, 12, b"..", FileType::Directory);
    let mut blocks: Vec<Vec<u8>> = fill_leaves(entries, block, 24, Some(12), tail)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    if let Some(seed) = ctx.inode_seed {
        for b in &mut blocks {
            dirent::put_tail(b, seed);
        }
    }
    (blocks, false)
}

fn build_htree(
    ctx: &DirContext,
    entries: &mut [DirEntry<'_>],
    tail: usize,
) -> Option<Vec<Vec<u8>>> {
    let bs = ctx.block_size;
    let hash = |name: &[u8]| half_md4_hash(name, &ctx.hash_seed, Signedness::Signed);
    let mut hashed: Vec<(u32, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (hash(e.name), i))
        .collect();
    hashed.sort_unstable();
    let sorted: Vec<DirEntry<'_>> = hashed
        .iter()
        .map(|&(_, i)| DirEntry {
            name: entries[i].name,
            inode: entries[i].inode,
            file_type: entries[i].file_type,
        })
        .collect();
    let leaves = fill_leaves(&sorted, vec![0u8; bs], 0, None, tail);
    if leaves.len() > root_limit(bs) * node_limit(bs) {
        return None;
    }
    // Each leaf's starting hash; a leaf that starts amid equal hashes is
    // marked as continuing (low bit set).
    let starts: Vec<u32> = leaves
        .iter()
        .map(|&(first, _)| {
            let h = hashed[first].0;
            if first > 0 && hashed[first - 1].0 == h {
                h | 1
            } else {
                h
            }
        })
        .collect();
    let mut out = Vec::new();
    let levels = if leaves.len() <= root_limit(bs) { 0 } else { 1 };
    let (root_targets, nodes): (Vec<(u32, u32)>, Vec<Vec<u8>>) = if levels == 0 {
        let targets = starts
            .iter()
            .enumerate()
            .map(|(i, &h)| (h, 1 + i as u32))
            .collect();
        (targets, Vec::new())
    } else {
        let groups: Vec<&[u32]> = starts.chunks(node_limit(bs)).collect();
        let node_count = groups.len() as u32;
        let mut targets = Vec::new();
        let mut nodes = Vec::new();
        let mut leaf_no = 1 + node_count;
        for (n, group) in groups.iter().enumerate() {
            let children: Vec<(u32, u32)> = group
                .iter()
                .map(|&h| {
                    let child = (h, leaf_no);
                    leaf_no += 1;
                    child
                })
                .collect();
            targets.push((group[0], 1 + n as u32));
            let mut node = vec![0u8; bs];
            put_u16(&mut node, 4, bs as u16);
            put_index(&mut node, 8, node_limit(bs), &children, ctx.inode_seed);
            nodes.push(node);
        }
        (targets, nodes)
    };
    let mut root = vec![0u8; bs];
    dirent::put_entry(&mut root, 0, ctx.inode, 12, b".", FileType::Directory);
    dirent::put_entry(
        &mut root,
        12,
        ctx.parent,
        bs - 12,
        b"..",
        FileType::Directory,
    );
    put_u8(&mut root, 0x1C, HASH_HALF_MD4);
    put_u8(&mut root, 0x1D, 8);
    put_u8(&mut root, 0x1E, levels);
    put_index(
        &mut root,
        0x20,
        root_limit(bs),
        &root_targets,
        ctx.inode_seed,
    );
    out.push(root);
    out.extend(nodes);
    for (_, mut leaf) in leaves {
        if let Some(seed) = ctx.inode_seed {
            dirent::put_tail(&mut leaf, seed);
        }
        out.push(leaf);
    }
    Some(out)
}

/// Writes an index (count/limit, then hash/block pairs) at `at`, and its
/// checksum tail after `limit` entries.
fn put_index(block: &mut [u8], at: usize, limit: usize, targets: &[(u32, u32)], seed: Option<u32>) {
    let limit = if seed.is_some() { limit } else { limit + 1 };
    put_u16(block, at, limit as u16);
    put_u16(block, at + 2, targets.len() as u16);
    for (i, &(hash, child)) in targets.iter().enumerate() {
        let e = at + 8 * i;
        if i > 0 {
            put_u32(block, e, hash);
        }
        put_u32(block, e + 4, child);
    }
    if let Some(seed) = seed {
        let tail = at + 8 * limit;
        let size = at + 8 * targets.len();
        let crc = crate::format::checksum::raw(seed, &block[..size]);
        let crc = crate::format::checksum::raw(crc, &block[tail..tail + 4]);
        let crc = crate::format::checksum::raw(crc, &[0u8; 4]);
        put_u32(block, tail + 4, crc);
    }
}

//! The image geometry, settled when all content is in: size, group count,
//! inodes per group, and where each group's bitmaps and inode table go.
//!
//! With `flex_bg` these tables may sit anywhere, so they are allocated after
//! the content like any other blocks: the block bitmaps together, then the
//! inode bitmaps, then the inode tables, each group's table contiguous.

use super::alloc::Allocator;
use super::{BLOCKS_PER_GROUP, desc_size};
use crate::format::{BLOCK_SIZE, INODE_SIZE};

/// Inodes per inode-table block.
const INODES_PER_BLOCK: u64 = BLOCK_SIZE / INODE_SIZE;
/// Bytes of image per inode in a fixed-size image, as mke2fs's default.
const BYTES_PER_INODE: u64 = 16_384;

/// The settled geometry.
#[derive(Debug, Clone)]
pub(crate) struct Geometry {
    pub blocks: u64,
    pub groups: u64,
    pub inodes_per_group: u64,
    pub desc_size: u64,
    pub gdt_blocks: u64,
    pub block_bitmap: Vec<u64>,
    pub inode_bitmap: Vec<u64>,
    pub inode_table: Vec<u64>,
}

impl Geometry {
    /// Blocks of one group's inode table.
    pub fn itable_blocks(&self) -> u64 {
        self.inodes_per_group / INODES_PER_BLOCK
    }
}

/// Why no geometry fits.
#[derive(Debug)]
pub(crate) enum LayoutError {
    /// More inodes than the groups of this size can number.
    Inodes(u64),
    /// Not enough free blocks for the tables.
    Space,
}

fn inodes_per_group(inodes: u64, groups: u64) -> u64 {
    inodes.div_ceil(groups).div_ceil(INODES_PER_BLOCK).max(1) * INODES_PER_BLOCK
}

/// Allocates the tables for `blocks` blocks and `ipg` inodes per group.
fn place(alloc: &mut Allocator, blocks: u64, ipg: u64, wide: bool) -> Option<Geometry> {
    let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
    let desc = desc_size(blocks, wide);
    let mut g = Geometry {
        blocks,
        groups,
        inodes_per_group: ipg,
        desc_size: desc,
        gdt_blocks: (groups * desc).div_ceil(BLOCK_SIZE),
        block_bitmap: Vec::with_capacity(groups as usize),
        inode_bitmap: Vec::with_capacity(groups as usize),
        inode_table: Vec::with_capacity(groups as usize),
    };
    let goal = alloc.high_water();
    for _ in 0..groups {
        g.block_bitmap.push(alloc.alloc_contiguous(goal, 1)?);
    }
    for _ in 0..groups {
        g.inode_bitmap.push(alloc.alloc_contiguous(goal, 1)?);
    }
    let per = g.itable_blocks();
    for _ in 0..groups {
        g.inode_table.push(alloc.alloc_contiguous(goal, per)?);
    }
    Some(g)
}

/// The geometry of an image of exactly `blocks` blocks holding `inodes`
/// inodes at least.
pub(crate) fn fixed(
    alloc: &mut Allocator,
    blocks: u64,
    inodes: u64,
    wide: bool,
) -> Result<Geometry, LayoutError> {
    let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
    let wanted = (blocks * BLOCK_SIZE / BYTES_PER_INODE).max(inodes);
    let mut ipg = inodes_per_group(wanted, groups).min(BLOCKS_PER_GROUP);
    if ipg * groups < inodes {
        return Err(LayoutError::Inodes(ipg * groups));
    }
    // Scale the inode count down when the tables do not fit, never below
    // what the content needs.
    loop {
        let mut trial = alloc.clone();
        if let Some(g) = place(&mut trial, blocks, ipg, wide) {
            *alloc = trial;
            return Ok(g);
        }
        let smaller = inodes_per_group(inodes.max(ipg * groups * 3 / 4), groups);
        if smaller >= ipg {
            return Err(LayoutError::Space);
        }
        ipg = smaller;
    }
}

/// The geometry of an image sized from its content: `headroom_percent` more
/// blocks and inodes than used. The allocator's limit is lowered to the size.
pub(crate) fn automatic(
    alloc: &mut Allocator,
    inodes: u64,
    headroom_percent: u32,
    wide: bool,
) -> Result<Geometry, LayoutError> {
    let grow = |n: u64| n + n * u64::from(headroom_percent) / 100;
    let wanted_inodes = grow(inodes) + 64;
    let mut blocks = grow(alloc.high_water() + wanted_inodes / INODES_PER_BLOCK + 64).max(1024);
    for _ in 0..16 {
        let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
        let ipg = inodes_per_group(wanted_inodes, groups);
        if ipg > BLOCKS_PER_GROUP {
            blocks = wanted_inodes.div_ceil(BLOCKS_PER_GROUP) * BLOCKS_PER_GROUP;
            continue;
        }
        // A last group too small for its own tables is not worth having.
        let tail = blocks % BLOCKS_PER_GROUP;
        if tail != 0 && tail < 512 {
            blocks += 512 - tail;
        }
        let mut trial = alloc.clone();
        let Some(g) = place(&mut trial, blocks, ipg, wide) else {
            return Err(LayoutError::Space);
        };
        let end = trial.high_water();
        if end <= blocks {
            trial.truncate(blocks);
            *alloc = trial;
            return Ok(g);
        }
        blocks = grow(end);
    }
    Err(LayoutError::Space)
}

//! The image geometry, settled when all content is in: size, group count,
//! inodes per group, and where each group's bitmaps and inode table go.
//!
//! With `flex_bg` these tables may sit anywhere, so they are allocated after
//! the content like any other blocks: the block bitmaps together, then the
//! inode bitmaps, then the inode tables, each group's table contiguous.

use super::alloc::Allocator;
use super::{Blocks, desc_size};
use crate::format::INODE_SIZE;
/// Bytes of image per inode in a fixed-size image, as mke2fs's default.
const BYTES_PER_INODE: u64 = 16_384;

/// The settled geometry.
#[derive(Debug, Clone)]
pub(crate) struct Geometry {
    pub geo: Blocks,
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
        self.inodes_per_group * INODE_SIZE / self.geo.size
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

/// Inodes per group for `inodes` over `groups`: whole inode-table blocks
/// and whole bitmap bytes.
fn inodes_per_group(geo: Blocks, inodes: u64, groups: u64) -> u64 {
    let unit = (geo.size / INODE_SIZE).max(8);
    inodes.div_ceil(groups).div_ceil(unit).max(1) * unit
}

/// Allocates the tables for `blocks` blocks and `ipg` inodes per group.
fn place(
    alloc: &mut Allocator,
    geo: Blocks,
    blocks: u64,
    ipg: u64,
    wide: bool,
) -> Option<Geometry> {
    let groups = geo.groups(blocks);
    let desc = desc_size(blocks, wide);
    let mut g = Geometry {
        geo,
        blocks,
        groups,
        inodes_per_group: ipg,
        desc_size: desc,
        gdt_blocks: (groups * desc).div_ceil(geo.size),
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
    geo: Blocks,
    blocks: u64,
    inodes: u64,
    wide: bool,
) -> Result<Geometry, LayoutError> {
    let groups = geo.groups(blocks);
    let wanted = (blocks * geo.size / BYTES_PER_INODE).max(inodes);
    let mut ipg = inodes_per_group(geo, wanted, groups).min(geo.per_group());
    if ipg * groups < inodes {
        return Err(LayoutError::Inodes(ipg * groups));
    }
    // Scale the inode count down when the tables do not fit, never below
    // what the content needs.
    loop {
        let mut trial = alloc.clone();
        if let Some(g) = place(&mut trial, geo, blocks, ipg, wide) {
            *alloc = trial;
            return Ok(g);
        }
        let smaller = inodes_per_group(geo, inodes.max(ipg * groups * 3 / 4), groups);
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
    geo: Blocks,
    inodes: u64,
    headroom_percent: u32,
    wide: bool,
) -> Result<Geometry, LayoutError> {
    let grow = |n: u64| n + n * u64::from(headroom_percent) / 100;
    let wanted_inodes = grow(inodes) + 64;
    let per_group = geo.per_group();
    let table_blocks = wanted_inodes * INODE_SIZE / geo.size;
    let mut blocks = grow(alloc.high_water() + table_blocks + 64).max(1024);
    for _ in 0..16 {
        let groups = geo.groups(blocks);
        let ipg = inodes_per_group(geo, wanted_inodes, groups);
        if ipg > per_group {
            blocks = geo.first_data_block() + wanted_inodes.div_ceil(per_group) * per_group;
            continue;
        }
        // A last group too small for its own tables is not worth having.
        let tail = (blocks - geo.first_data_block()) % per_group;
        if tail != 0 && tail < 512 {
            blocks += 512 - tail;
        }
        let mut trial = alloc.clone();
        let Some(g) = place(&mut trial, geo, blocks, ipg, wide) else {
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

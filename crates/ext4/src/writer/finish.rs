//! Finishing an image: what needs blocks besides file data first (see
//! [`place`](super::place)), then the geometry, then inode tables, bitmaps,
//! group descriptors and superblocks.

use std::collections::HashMap;

use super::bitmap::{count_zeros, mark};
use super::inode_build::{self, Placement};
use super::journal::{self, JOURNAL_INODE};
use super::layout::{self, Geometry, LayoutError};
use super::place::{Placer, place_all, place_journal};
use super::tree::{Body, Node};
use super::{Formatter, Summary};
use crate::format::checksum;
use crate::format::superblock::Superblock;
use crate::format::{FIRST_INODE, INODE_SIZE, LINK_MAX, ROOT_INODE};
use crate::metadata::Metadata;
use crate::{Error, Result};

/// A UUID (version 4 layout) from the clock and the process id.
fn make_uuid() -> [u8; 16] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut bytes = [0u8; 16];
    let mut state = now ^ (u128::from(std::process::id()) << 64);
    for chunk in bytes.chunks_mut(4) {
        let word = checksum::raw(state as u32, &state.to_le_bytes());
        chunk.copy_from_slice(&word.to_le_bytes());
        state = state.rotate_left(29) ^ u128::from(word);
    }
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    bytes
}

impl Formatter {
    /// Everything after the content: see the module documentation.
    pub(super) fn write_metadata(&mut self) -> Result<Summary> {
        if self.tree.child(ROOT_INODE, b"lost+found").is_none() {
            let meta = Metadata::new(0o700, self.options.root.mtime);
            self.create_dir("lost+found", &meta)?;
        }
        let uuid = self.options.uuid.unwrap_or_else(make_uuid);
        let fs_seed = self.options.metadata_csum.then(|| checksum::fs_seed(&uuid));
        let mut hash_seed = [0u32; 4];
        for (i, w) in hash_seed.iter_mut().enumerate() {
            *w = checksum::raw(i as u32 + 1, &uuid) | 1;
        }
        let goal = self.alloc.high_water();
        let mut placer = Placer {
            alloc: &mut self.alloc,
            spool: &mut self.spool,
            goal,
            fs_seed,
            size: self.fixed_blocks.unwrap_or(super::AUTO_MAX_BLOCKS) * self.blocks.size,
            bs: self.blocks.size,
        };
        let mut placements = place_all(&self.tree, &mut placer, hash_seed)?;
        if self.options.journal {
            let estimate = self
                .fixed_blocks
                .unwrap_or(placer.alloc.high_water() * 6 / 5);
            let blocks = journal::default_blocks(estimate);
            placements.insert(JOURNAL_INODE, place_journal(&mut placer, blocks, &uuid)?);
        }
        let inodes = u64::from(self.tree.inode_end() - 1);
        let fixed = self.fixed_blocks;
        let geometry = match fixed {
            Some(blocks) => layout::fixed(
                &mut self.alloc,
                self.blocks,
                blocks,
                inodes,
                self.options.always_64bit,
            ),
            None => layout::automatic(
                &mut self.alloc,
                self.blocks,
                inodes,
                self.options.headroom_percent,
                self.options.always_64bit,
            ),
        }
        .map_err(|e| match e {
            LayoutError::Inodes(count) => Error::OutOfInodes {
                count,
                path: "(the whole image)".into(),
            },
            LayoutError::Space => Error::OutOfSpace {
                size: fixed.unwrap_or(0) * self.blocks.size,
                path: "(inode tables and bitmaps)".into(),
            },
        })?;
        let written = self.write_tables(&geometry, &placements, fs_seed, uuid, hash_seed)?;
        self.spool
            .flush()
            .map_err(self.io_error("cannot write to"))?;
        let size = geometry.blocks * self.blocks.size;
        self.spool
            .file()
            .set_len(size)
            .map_err(self.io_error("cannot size"))?;
        Ok(Summary {
            size,
            block_size: self.blocks.size,
            inodes_used: written.0,
            inodes_count: geometry.groups * geometry.inodes_per_group,
            blocks_used: geometry.blocks - written.1,
        })
    }

    /// Inode tables, bitmaps, descriptors and superblocks; returns inodes
    /// used and blocks free.
    fn write_tables(
        &mut self,
        g: &Geometry,
        placements: &HashMap<u32, Placement>,
        fs_seed: Option<u32>,
        uuid: [u8; 16],
        hash_seed: [u32; 4],
    ) -> Result<(u64, u64)> {
        let ipg = g.inodes_per_group;
        let desc_size = g.desc_size as usize;
        let bs = self.blocks.size as usize;
        let mut gdt = vec![0u8; g.gdt_blocks as usize * bs];
        let free_runs: Vec<(u64, u64)> = self.alloc.free_runs().collect();
        let mut run = 0;
        let (mut free_blocks, mut free_inodes) = (0u64, 0u64);
        let inode_end = u64::from(self.tree.inode_end());
        for group in 0..g.groups {
            // Inodes.
            let first = group * ipg + 1;
            let end = (first + ipg).min(inode_end.max(first));
            let mut table = vec![0u8; ((end - first) * INODE_SIZE) as usize];
            let mut ibitmap = vec![0u8; bs];
            mark(&mut ibitmap, ipg, bs as u64 * 8, true);
            let (mut used, mut dirs, mut last_used) = (0u64, 0u64, 0u64);
            for ino in first..end {
                let local = ino - first;
                let ino32 = ino as u32;
                if ino32 < FIRST_INODE && ino32 != ROOT_INODE {
                    mark(&mut ibitmap, local, local + 1, true);
                    used += 1;
                    last_used = local + 1;
                    if let Some(p) = placements.get(&ino32).filter(|_| ino32 == JOURNAL_INODE) {
                        let node = Node {
                            meta: Metadata::new(0o600, self.options.root.mtime),
                            body: Body::File {
                                size: p.size,
                                extents: Vec::new(),
                            },
                            links: 1,
                            layer: 0,
                        };
                        let inode =
                            inode_build::build(&node, 1, Some(p), Vec::new(), self.blocks.size);
                        let at = (local * INODE_SIZE) as usize;
                        inode.encode(&mut table[at..at + INODE_SIZE as usize], ino32, fs_seed);
                    }
                    continue;
                }
                let Some(node) = self.tree.get(ino32) else {
                    continue;
                };
                mark(&mut ibitmap, local, local + 1, true);
                used += 1;
                last_used = local + 1;
                let links = match &node.body {
                    Body::Dir { children, .. } => {
                        dirs += 1;
                        let subdirs = children
                            .values()
                            .filter(|&&c| self.tree.get(c).is_some_and(Node::is_dir))
                            .count() as u64;
                        if 2 + subdirs >= u64::from(LINK_MAX) {
                            1
                        } else {
                            (2 + subdirs) as u16
                        }
                    }
                    _ => node.links.min(LINK_MAX) as u16,
                };
                let placement = placements.get(&ino32);
                let raw = inode_build::check_xattrs(b"", &node.meta.xattrs, self.blocks.size)?;
                let inline = if placement.is_some_and(|p| p.file_acl != 0) {
                    Vec::new()
                } else {
                    inode_build::inline_area(&raw).unwrap_or_default()
                };
                let inode = inode_build::build(node, links, placement, inline, self.blocks.size);
                let at = (local * INODE_SIZE) as usize;
                inode.encode(&mut table[at..at + INODE_SIZE as usize], ino32, fs_seed);
            }
            if !table.is_empty() {
                let write = self
                    .spool
                    .write(g.inode_table[group as usize], &pad(table, bs));
                write.map_err(self.io_error("cannot write an inode table to"))?;
            }
            let write = self.spool.write(g.inode_bitmap[group as usize], &ibitmap);
            write.map_err(self.io_error("cannot write a bitmap to"))?;
            // Blocks.
            let start = self.blocks.group_start(group);
            let stop = (start + self.blocks.per_group()).min(g.blocks);
            let mut bbitmap = vec![0xFFu8; bs];
            while run < free_runs.len() && free_runs[run].0 + free_runs[run].1 <= start {
                run += 1;
            }
            let mut r = run;
            while r < free_runs.len() && free_runs[r].0 < stop {
                let (s, l) = free_runs[r];
                mark(
                    &mut bbitmap,
                    s.max(start) - start,
                    (s + l).min(stop) - start,
                    false,
                );
                r += 1;
            }
            if crate::format::group_has_superblock(group) {
                let excess_from = start + 1 + g.gdt_blocks;
                let excess_to = (start + 1 + self.gdt_reserve).min(stop);
                if excess_from < excess_to {
                    mark(&mut bbitmap, excess_from - start, excess_to - start, false);
                }
            }
            let group_free = count_zeros(&bbitmap, stop - start);
            let write = self.spool.write(g.block_bitmap[group as usize], &bbitmap);
            write.map_err(self.io_error("cannot write a bitmap to"))?;
            let desc = crate::format::group_desc::GroupDesc {
                block_bitmap: g.block_bitmap[group as usize],
                inode_bitmap: g.inode_bitmap[group as usize],
                inode_table: g.inode_table[group as usize],
                free_blocks: group_free as u32,
                free_inodes: (ipg - used) as u32,
                used_dirs: dirs as u32,
                flags: crate::format::group_desc::FLAG_INODE_ZEROED,
                block_bitmap_csum: fs_seed.map_or(0, |s| checksum::raw(s, &bbitmap)),
                inode_bitmap_csum: fs_seed
                    .map_or(0, |s| checksum::raw(s, &ibitmap[..(ipg / 8) as usize])),
                itable_unused: (ipg - last_used) as u32,
            };
            let at = group as usize * desc_size;
            desc.encode(&mut gdt[at..at + desc_size], group as u32, fs_seed);
            free_blocks += group_free;
            free_inodes += ipg - used;
        }
        let mut sb = self.superblock(g, free_blocks, free_inodes, uuid, hash_seed);
        if let Some(p) = placements.get(&JOURNAL_INODE) {
            sb.feature_compat |= crate::format::compat::HAS_JOURNAL;
            sb.journal_inum = JOURNAL_INODE;
            for (i, word) in p.block.chunks_exact(4).enumerate() {
                sb.journal_blocks[i] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            }
            sb.journal_blocks[15] = (p.size >> 32) as u32;
            sb.journal_blocks[16] = p.size as u32;
            sb.jnl_backup_type = journal::BACKUP_BLOCKS;
        }
        for group in (0..g.groups).filter(|&gr| crate::format::group_has_superblock(gr)) {
            let start = self.blocks.group_start(group);
            let mut copy = sb.clone();
            copy.block_group_nr = group as u16;
            let bytes = copy.encode();
            let mut block0 = vec![0u8; bs];
            // The primary superblock is always at byte 1024: inside block 0
            // with larger blocks, block 1 itself with 1 KiB blocks.
            if group == 0 && self.blocks.first_data_block() == 0 {
                block0[1024..2048].copy_from_slice(&bytes);
            } else {
                block0[..1024].copy_from_slice(&bytes);
            }
            self.spool
                .write(start, &block0)
                .map_err(self.io_error("cannot write a superblock to"))?;
            self.spool
                .write(start + 1, &gdt)
                .map_err(self.io_error("cannot write descriptors to"))?;
        }
        let used_inodes = g.groups * ipg - free_inodes;
        Ok((used_inodes, free_blocks))
    }

    fn superblock(
        &self,
        g: &Geometry,
        free_blocks: u64,
        free_inodes: u64,
        uuid: [u8; 16],
        hash_seed: [u32; 4],
    ) -> Superblock {
        use crate::format::{compat, incompat, ro_compat};
        let now = self
            .options
            .root
            .mtime
            .seconds
            .clamp(0, i64::from(u32::MAX)) as u32;
        let mut volume_name = [0u8; 16];
        let label = self.options.label.as_bytes();
        let n = label.len().min(16);
        volume_name[..n].copy_from_slice(&label[..n]);
        let mut seed_bytes = [0u8; 16];
        for (i, w) in hash_seed.iter().enumerate() {
            seed_bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        let sixty_four = g.desc_size == 64;
        let mut ro = ro_compat::SPARSE_SUPER
            | ro_compat::LARGE_FILE
            | ro_compat::HUGE_FILE
            | ro_compat::DIR_NLINK
            | ro_compat::EXTRA_ISIZE;
        if self.options.metadata_csum {
            ro |= ro_compat::METADATA_CSUM;
        }
        Superblock {
            inodes_count: (g.groups * g.inodes_per_group) as u32,
            blocks_count: g.blocks,
            reserved_blocks_count: 0,
            free_blocks_count: free_blocks,
            free_inodes_count: free_inodes as u32,
            first_data_block: self.blocks.first_data_block() as u32,
            log_block_size: self.blocks.log(),
            blocks_per_group: self.blocks.per_group() as u32,
            inodes_per_group: g.inodes_per_group as u32,
            mtime: 0,
            wtime: now,
            state: 1,
            rev_level: 1,
            first_ino: FIRST_INODE,
            inode_size: INODE_SIZE as u16,
            block_group_nr: 0,
            feature_compat: compat::EXT_ATTR | compat::DIR_INDEX,
            feature_incompat: incompat::FILETYPE
                | incompat::EXTENTS
                | incompat::FLEX_BG
                | if sixty_four {
                    incompat::SIXTY_FOUR_BIT
                } else {
                    0
                },
            feature_ro_compat: ro,
            uuid,
            volume_name,
            journal_inum: 0,
            hash_seed: seed_bytes,
            def_hash_version: crate::format::superblock::HASH_HALF_MD4,
            desc_size: if sixty_four { 64 } else { 0 },
            default_mount_opts: 0,
            mkfs_time: now,
            journal_blocks: [0; 17],
            jnl_backup_type: 0,
            min_extra_isize: crate::format::EXTRA_ISIZE,
            want_extra_isize: crate::format::EXTRA_ISIZE,
            flags: crate::format::superblock::FLAG_SIGNED_HASH,
            log_groups_per_flex: 4,
            checksum_type: u8::from(self.options.metadata_csum),
            checksum_seed: 0,
        }
    }
}

/// Pads `bytes` with zeros to whole blocks.
fn pad(mut bytes: Vec<u8>, bs: usize) -> Vec<u8> {
    let len = bytes.len().div_ceil(bs) * bs;
    bytes.resize(len, 0);
    bytes
}

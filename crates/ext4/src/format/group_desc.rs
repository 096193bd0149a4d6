//! Block group descriptors: where each group's bitmaps and inode table are,
//! its free counts, and (with `metadata_csum`) the bitmaps' checksums.

use super::checksum;
use super::endian::{get_u16, get_u32, hi32, lo32, put_u16, put_u32};

/// `bg_flags`: the inode table is known to be zeroed.
pub(crate) const FLAG_INODE_ZEROED: u16 = 0x4;

/// One group descriptor, with 64-bit block numbers and 32-bit counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupDesc {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
    pub free_blocks: u32,
    pub free_inodes: u32,
    pub used_dirs: u32,
    pub flags: u16,
    pub block_bitmap_csum: u32,
    pub inode_bitmap_csum: u32,
    pub itable_unused: u32,
}

impl GroupDesc {
    /// Encodes into `out` (32 or 64 bytes), with the descriptor checksum of
    /// group `group` when `csum_seed` is given.
    pub fn encode(&self, out: &mut [u8], group: u32, csum_seed: Option<u32>) {
        out.fill(0);
        put_u32(out, 0x0, lo32(self.block_bitmap));
        put_u32(out, 0x4, lo32(self.inode_bitmap));
        put_u32(out, 0x8, lo32(self.inode_table));
        put_u16(out, 0xC, self.free_blocks as u16);
        put_u16(out, 0xE, self.free_inodes as u16);
        put_u16(out, 0x10, self.used_dirs as u16);
        put_u16(out, 0x12, self.flags);
        put_u16(out, 0x18, self.block_bitmap_csum as u16);
        put_u16(out, 0x1A, self.inode_bitmap_csum as u16);
        put_u16(out, 0x1C, self.itable_unused as u16);
        if out.len() >= 64 {
            put_u32(out, 0x20, hi32(self.block_bitmap));
            put_u32(out, 0x24, hi32(self.inode_bitmap));
            put_u32(out, 0x28, hi32(self.inode_table));
            put_u16(out, 0x2C, (self.free_blocks >> 16) as u16);
            put_u16(out, 0x2E, (self.free_inodes >> 16) as u16);
            put_u16(out, 0x30, (self.used_dirs >> 16) as u16);
            put_u16(out, 0x32, (self.itable_unused >> 16) as u16);
            put_u16(out, 0x38, (self.block_bitmap_csum >> 16) as u16);
            put_u16(out, 0x3A, (self.inode_bitmap_csum >> 16) as u16);
        }
        if let Some(seed) = csum_seed {
            let crc = checksum::raw(seed, &group.to_le_bytes());
            let crc = checksum::raw(crc, out);
            put_u16(out, 0x1E, (crc & 0xFFFF) as u16);
        }
    }

    /// Decodes a 32- or 64-byte descriptor.
    pub fn decode(b: &[u8]) -> Self {
        let wide = b.len() >= 64;
        let hi = |at: usize| {
            if wide {
                u64::from(get_u32(b, at)) << 32
            } else {
                0
            }
        };
        let hi_16 = |at: usize| {
            if wide {
                u32::from(get_u16(b, at)) << 16
            } else {
                0
            }
        };
        Self {
            block_bitmap: u64::from(get_u32(b, 0x0)) | hi(0x20),
            inode_bitmap: u64::from(get_u32(b, 0x4)) | hi(0x24),
            inode_table: u64::from(get_u32(b, 0x8)) | hi(0x28),
            free_blocks: u32::from(get_u16(b, 0xC)) | hi_16(0x2C),
            free_inodes: u32::from(get_u16(b, 0xE)) | hi_16(0x2E),
            used_dirs: u32::from(get_u16(b, 0x10)) | hi_16(0x30),
            flags: get_u16(b, 0x12),
            block_bitmap_csum: u32::from(get_u16(b, 0x18)) | hi_16(0x38),
            inode_bitmap_csum: u32::from(get_u16(b, 0x1A)) | hi_16(0x3A),
            itable_unused: u32::from(get_u16(b, 0x1C)) | hi_16(0x32),
        }
    }
}

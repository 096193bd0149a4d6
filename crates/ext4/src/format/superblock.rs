//! The superblock: 1024 bytes at byte offset 1024, copied into backup groups.
//!
//! Only the fields this crate writes or reads are named here; every other
//! field stays zero, which ext4 defines as "unused" or "default".

use super::checksum;
use super::endian::{get_u8, get_u16, get_u32, hi32, lo32, put_u8, put_u16, put_u32};

/// Size of the encoded superblock.
pub(crate) const SUPERBLOCK_SIZE: usize = 1024;
/// Byte offset of the primary superblock in the image.
pub(crate) const SUPERBLOCK_OFFSET: u64 = 1024;
const MAGIC: u16 = 0xEF53;
/// `s_flags`: directory hashes treat name bytes as signed chars.
pub(crate) const FLAG_SIGNED_HASH: u32 = 0x1;
/// `s_def_hash_version` for half MD4.
pub(crate) const HASH_HALF_MD4: u8 = 1;

/// The superblock fields this crate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub reserved_blocks_count: u64,
    pub free_blocks_count: u64,
    pub free_inodes_count: u32,
    pub first_data_block: u32,
    pub log_block_size: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub mtime: u32,
    pub wtime: u32,
    pub state: u16,
    pub rev_level: u32,
    pub first_ino: u32,
    pub inode_size: u16,
    pub block_group_nr: u16,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub uuid: [u8; 16],
    pub volume_name: [u8; 16],
    pub journal_inum: u32,
    pub hash_seed: [u8; 16],
    pub def_hash_version: u8,
    pub desc_size: u16,
    pub default_mount_opts: u32,
    pub mkfs_time: u32,
    pub journal_blocks: [u32; 17],
    pub jnl_backup_type: u8,
    pub min_extra_isize: u16,
    pub want_extra_isize: u16,
    pub flags: u32,
    pub log_groups_per_flex: u8,
    pub checksum_type: u8,
    pub checksum_seed: u32,
}

impl Superblock {
    /// The block size in bytes.
    pub fn block_size(&self) -> u64 {
        1024u64 << self.log_block_size
    }

    /// Number of block groups.
    pub fn group_count(&self) -> u64 {
        let data = self.blocks_count - u64::from(self.first_data_block);
        data.div_ceil(u64::from(self.blocks_per_group))
    }

    /// Bytes per group descriptor.
    pub fn descriptor_size(&self) -> usize {
        if self.feature_incompat & super::incompat::SIXTY_FOUR_BIT != 0 && self.desc_size >= 64 {
            usize::from(self.desc_size)
        } else {
            32
        }
    }

    /// True when `metadata_csum` is on.
    pub fn has_metadata_csum(&self) -> bool {
        self.feature_ro_compat & super::ro_compat::METADATA_CSUM != 0
    }

    /// The seed every metadata checksum starts from.
    #[allow(dead_code)] // for checksum verification in the reader
    pub fn checksum_seed(&self) -> u32 {
        if self.feature_incompat & super::incompat::CSUM_SEED != 0 {
            self.checksum_seed
        } else {
            checksum::fs_seed(&self.uuid)
        }
    }

    /// The 1024 on-disk bytes, checksum included.
    pub fn encode(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        put_u32(&mut b, 0x0, self.inodes_count);
        put_u32(&mut b, 0x4, lo32(self.blocks_count));
        put_u32(&mut b, 0x8, lo32(self.reserved_blocks_count));
        put_u32(&mut b, 0xC, lo32(self.free_blocks_count));
        put_u32(&mut b, 0x10, self.free_inodes_count);
        put_u32(&mut b, 0x14, self.first_data_block);
        put_u32(&mut b, 0x18, self.log_block_size);
        put_u32(&mut b, 0x1C, self.log_block_size);
        put_u32(&mut b, 0x20, self.blocks_per_group);
        put_u32(&mut b, 0x24, self.blocks_per_group);
        put_u32(&mut b, 0x28, self.inodes_per_group);
        put_u32(&mut b, 0x2C, self.mtime);
        put_u32(&mut b, 0x30, self.wtime);
        put_u16(&mut b, 0x36, 0xFFFF); // s_max_mnt_count: -1, no forced checks
        put_u16(&mut b, 0x38, MAGIC);
        put_u16(&mut b, 0x3A, self.state);
        put_u16(&mut b, 0x3C, 1); // s_errors: continue
        put_u32(&mut b, 0x40, self.mkfs_time); // s_lastcheck
        put_u32(&mut b, 0x4C, self.rev_level);
        put_u32(&mut b, 0x54, self.first_ino);
        put_u16(&mut b, 0x58, self.inode_size);
        put_u16(&mut b, 0x5A, self.block_group_nr);
        put_u32(&mut b, 0x5C, self.feature_compat);
        put_u32(&mut b, 0x60, self.feature_incompat);
        put_u32(&mut b, 0x64, self.feature_ro_compat);
        b[0x68..0x78].copy_from_slice(&self.uuid);
        b[0x78..0x88].copy_from_slice(&self.volume_name);
        put_u32(&mut b, 0xE0, self.journal_inum);
        b[0xEC..0xFC].copy_from_slice(&self.hash_seed);
        put_u8(&mut b, 0xFC, self.def_hash_version);
        put_u8(&mut b, 0xFD, self.jnl_backup_type);
        put_u16(&mut b, 0xFE, self.desc_size);
        put_u32(&mut b, 0x100, self.default_mount_opts);
        put_u32(&mut b, 0x108, self.mkfs_time);
        for (i, word) in self.journal_blocks.iter().enumerate() {
            put_u32(&mut b, 0x10C + 4 * i, *word);
        }
        put_u32(&mut b, 0x150, hi32(self.blocks_count));
        put_u32(&mut b, 0x154, hi32(self.reserved_blocks_count));
        put_u32(&mut b, 0x158, hi32(self.free_blocks_count));
        put_u16(&mut b, 0x15C, self.min_extra_isize);
        put_u16(&mut b, 0x15E, self.want_extra_isize);
        put_u32(&mut b, 0x160, self.flags);
        put_u8(&mut b, 0x174, self.log_groups_per_flex);
        put_u8(&mut b, 0x175, self.checksum_type);
        put_u32(&mut b, 0x270, self.checksum_seed);
        if self.has_metadata_csum() {
            let crc = checksum::raw(!0, &b[..0x3FC]);
            put_u32(&mut b, 0x3FC, crc);
        }
        b
    }

    /// Parses the 1024 superblock bytes; `None` when the magic is wrong.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < SUPERBLOCK_SIZE || get_u16(b, 0x38) != MAGIC {
            return None;
        }
        let wide =
            |lo: usize, hi: usize| u64::from(get_u32(b, lo)) | (u64::from(get_u32(b, hi)) << 32);
        let sixty_four = get_u32(b, 0x60) & super::incompat::SIXTY_FOUR_BIT != 0;
        let pick = |lo: usize, hi: usize| {
            if sixty_four {
                wide(lo, hi)
            } else {
                u64::from(get_u32(b, lo))
            }
        };
        let mut journal_blocks = [0u32; 17];
        for (i, word) in journal_blocks.iter_mut().enumerate() {
            *word = get_u32(b, 0x10C + 4 * i);
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x68..0x78]);
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(&b[0x78..0x88]);
        let mut hash_seed = [0u8; 16];
        hash_seed.copy_from_slice(&b[0xEC..0xFC]);
        Some(Self {
            inodes_count: get_u32(b, 0x0),
            blocks_count: pick(0x4, 0x150),
            reserved_blocks_count: pick(0x8, 0x154),
            free_blocks_count: pick(0xC, 0x158),
            free_inodes_count: get_u32(b, 0x10),
            first_data_block: get_u32(b, 0x14),
            log_block_size: get_u32(b, 0x18),
            blocks_per_group: get_u32(b, 0x20),
            inodes_per_group: get_u32(b, 0x28),
            mtime: get_u32(b, 0x2C),
            wtime: get_u32(b, 0x30),
            state: get_u16(b, 0x3A),
            rev_level: get_u32(b, 0x4C),
            first_ino: get_u32(b, 0x54),
            inode_size: get_u16(b, 0x58),
            block_group_nr: get_u16(b, 0x5A),
            feature_compat: get_u32(b, 0x5C),
            feature_incompat: get_u32(b, 0x60),
            feature_ro_compat: get_u32(b, 0x64),
            uuid,
            volume_name,
            journal_inum: get_u32(b, 0xE0),
            hash_seed,
            def_hash_version: get_u8(b, 0xFC),
            jnl_backup_type: get_u8(b, 0xFD),
            desc_size: get_u16(b, 0xFE),
            default_mount_opts: get_u32(b, 0x100),
            mkfs_time: get_u32(b, 0x108),
            journal_blocks,
            min_extra_isize: get_u16(b, 0x15C),
            want_extra_isize: get_u16(b, 0x15E),
            flags: get_u32(b, 0x160),
            log_groups_per_flex: get_u8(b, 0x174),
            checksum_type: get_u8(b, 0x175),
            checksum_seed: get_u32(b, 0x270),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Superblock;

    #[test]
    fn encode_then_decode_keeps_every_named_field() {
        let sb = Superblock {
            inodes_count: 65_536,
            blocks_count: (1 << 32) + 7,
            free_blocks_count: 1 << 33,
            log_block_size: 2,
            blocks_per_group: 32_768,
            inodes_per_group: 8192,
            feature_incompat: super::super::incompat::SIXTY_FOUR_BIT,
            feature_ro_compat: super::super::ro_compat::METADATA_CSUM,
            desc_size: 64,
            uuid: [7; 16],
            ..Superblock::default()
        };
        let back = Superblock::decode(&sb.encode()).expect("magic");
        assert_eq!(back.blocks_count, sb.blocks_count);
        assert_eq!(back.free_blocks_count, sb.free_blocks_count);
        assert_eq!(back.uuid, sb.uuid);
        assert_eq!(back.descriptor_size(), 64);
    }
}

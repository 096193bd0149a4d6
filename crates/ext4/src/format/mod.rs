//! The ext4 on-disk format: constants, structures and their encodings.
//!
//! Each file holds one structure (superblock, group descriptor, inode, extent
//! tree node, directory entry, extended attributes) as a plain Rust value with
//! `encode` into and `decode` from its little-endian bytes. The writer and the
//! reader share these, so what one writes the other reads the same way. The
//! reference is the kernel's `Documentation/filesystems/ext4`.

pub(crate) mod acl;
pub(crate) mod checksum;
pub(crate) mod dirent;
pub(crate) mod dx_hash;
pub(crate) mod endian;
pub(crate) mod extent;
pub(crate) mod group_desc;
pub(crate) mod inode;
pub(crate) mod superblock;
pub(crate) mod xattr;

/// Bytes per on-disk inode (room for nanosecond times and in-inode xattrs).
pub(crate) const INODE_SIZE: u64 = 256;
/// `i_extra_isize`: the fields past the 128-byte base inode that we fill.
pub(crate) const EXTRA_ISIZE: u16 = 32;
/// Inode of the root directory.
pub(crate) const ROOT_INODE: u32 = 2;
/// Inode of `/lost+found`, the first one not reserved.
pub(crate) const FIRST_INODE: u32 = 11;
/// The most hard links one inode may have (`EXT4_LINK_MAX`).
pub(crate) const LINK_MAX: u32 = 65_000;
/// The longest name of a directory entry.
pub(crate) const NAME_MAX: usize = 255;
/// Longest symlink target stored in the inode itself.
pub(crate) const INLINE_SYMLINK_MAX: usize = 59;
/// Blocks in one initialised extent at most.
pub(crate) const EXTENT_MAX_LEN: u32 = 32_768;

/// `s_feature_compat` bits (the whole set this crate knows of, some used
/// only by the reader's checks or kept for the journal).
#[allow(dead_code)]
pub(crate) mod compat {
    pub(crate) const HAS_JOURNAL: u32 = 0x4;
    pub(crate) const EXT_ATTR: u32 = 0x8;
    pub(crate) const DIR_INDEX: u32 = 0x20;
}

/// `s_feature_incompat` bits.
#[allow(dead_code)]
pub(crate) mod incompat {
    pub(crate) const FILETYPE: u32 = 0x2;
    pub(crate) const RECOVER: u32 = 0x4;
    pub(crate) const META_BG: u32 = 0x10;
    pub(crate) const EXTENTS: u32 = 0x40;
    pub(crate) const SIXTY_FOUR_BIT: u32 = 0x80;
    pub(crate) const FLEX_BG: u32 = 0x200;
    pub(crate) const CSUM_SEED: u32 = 0x2000;
    pub(crate) const LARGEDIR: u32 = 0x4000;
    pub(crate) const INLINE_DATA: u32 = 0x8000;
}

/// `s_feature_ro_compat` bits.
pub(crate) mod ro_compat {
    pub(crate) const SPARSE_SUPER: u32 = 0x1;
    pub(crate) const LARGE_FILE: u32 = 0x2;
    pub(crate) const HUGE_FILE: u32 = 0x8;
    pub(crate) const DIR_NLINK: u32 = 0x20;
    pub(crate) const EXTRA_ISIZE: u32 = 0x40;
    pub(crate) const METADATA_CSUM: u32 = 0x400;
}

/// `i_flags` bits.
#[allow(dead_code)]
pub(crate) mod inode_flags {
    pub(crate) const INDEX: u32 = 0x1000;
    pub(crate) const HUGE_FILE: u32 = 0x4_0000;
    pub(crate) const EXTENTS: u32 = 0x8_0000;
    pub(crate) const INLINE_DATA: u32 = 0x1000_0000;
}

/// File type bits of `i_mode`.
pub(crate) mod mode {
    pub(crate) const TYPE_MASK: u16 = 0o170_000;
    pub(crate) const FIFO: u16 = 0o010_000;
    pub(crate) const CHAR_DEVICE: u16 = 0o020_000;
    pub(crate) const DIRECTORY: u16 = 0o040_000;
    pub(crate) const BLOCK_DEVICE: u16 = 0o060_000;
    pub(crate) const REGULAR: u16 = 0o100_000;
    pub(crate) const SYMLINK: u16 = 0o120_000;
    pub(crate) const SOCKET: u16 = 0o140_000;
}

/// True when group `group` holds a backup superblock under `sparse_super`:
/// groups 0 and 1 and the powers of 3, 5 and 7.
pub(crate) fn group_has_superblock(group: u64) -> bool {
    if group <= 1 {
        return true;
    }
    [3u64, 5, 7].iter().any(|&base| {
        let mut power = base;
        while power < group {
            power *= base;
        }
        power == group
    })
}

#[cfg(test)]
mod tests {
    use super::group_has_superblock;

    #[test]
    fn sparse_super_backups_sit_in_groups_0_1_and_powers_of_3_5_7() {
        let groups: Vec<u64> = (0..130).filter(|&g| group_has_superblock(g)).collect();
        assert_eq!(groups, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125]);
    }
}

//! An empty jbd2 journal (inode 8), so a writable root file system survives
//! a guest crash: a contiguous run of blocks whose first block is the
//! journal superblock and the rest zeros (holes in the image file). With
//! `s_start` 0 the journal is clean: there is nothing to replay. Unlike the
//! rest of ext4, jbd2 structures are big-endian.

/// The inode ext4 reserves for the journal.
pub(crate) const JOURNAL_INODE: u32 = 8;
/// `s_jnl_backup_type`: the superblock keeps a copy of the inode's blocks.
pub(crate) const BACKUP_BLOCKS: u8 = 1;
const MAGIC: u32 = 0xC03B_3998;
const SUPERBLOCK_V2: u32 = 4;

/// Journal length in blocks for a file system of `fs_blocks` blocks, as
/// mke2fs picks it (1024 blocks at least, 256 MiB at most here).
pub(crate) fn default_blocks(fs_blocks: u64) -> u64 {
    match fs_blocks {
        0..32_768 => 1024,
        32_768..262_144 => 4096,
        262_144..524_288 => 8192,
        524_288..4_194_304 => 16_384,
        4_194_304..16_777_216 => 32_768,
        _ => 65_536,
    }
}

fn put_be32(block: &mut [u8], at: usize, value: u32) {
    block[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// The journal superblock (the journal's first block) for a journal of
/// `blocks` blocks of `block_size` bytes in the file system `uuid`.
pub(crate) fn superblock(blocks: u32, uuid: &[u8; 16], block_size: u32) -> Vec<u8> {
    let mut b = vec![0u8; block_size as usize];
    put_be32(&mut b, 0x0, MAGIC);
    put_be32(&mut b, 0x4, SUPERBLOCK_V2);
    put_be32(&mut b, 0x8, 0); // h_sequence
    put_be32(&mut b, 0xC, block_size); // s_blocksize
    put_be32(&mut b, 0x10, blocks); // s_maxlen
    put_be32(&mut b, 0x14, 1); // s_first: the log starts after this block
    put_be32(&mut b, 0x18, 1); // s_sequence: the first transaction ID
    put_be32(&mut b, 0x1C, 0); // s_start: 0 = clean, nothing to replay
    b[0x30..0x40].copy_from_slice(uuid);
    put_be32(&mut b, 0x40, 1); // s_nr_users: this file system
    b
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_journal_superblock_is_big_endian_and_clean() {
        let b = super::superblock(4096, &[9; 16], 4096);
        assert_eq!(&b[0..4], &[0xC0, 0x3B, 0x39, 0x98]);
        assert_eq!(&b[0x10..0x14], &4096u32.to_be_bytes());
        assert_eq!(&b[0x1C..0x20], &[0; 4]);
        assert_eq!(super::default_blocks(10_000), 1024);
        assert_eq!(super::default_blocks(300_000), 8192);
    }
}

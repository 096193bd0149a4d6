//! crc32c the way ext4 uses it for `metadata_csum`.
//!
//! The kernel's `ext4_chksum` continues a running crc32c register without the
//! final inversion, and seeds from the file system UUID: `seed =
//! crc(!0, uuid)`. The `crc32c` crate computes the standard, inverted form, so
//! [`raw`] undoes both inversions.

/// Continues the raw crc32c register `crc` over `data`.
pub(crate) fn raw(crc: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!crc, data)
}

/// The checksum seed of a file system with this UUID.
pub(crate) fn fs_seed(uuid: &[u8; 16]) -> u32 {
    raw(!0, uuid)
}

/// The per-inode seed: the file system seed continued over the inode number
/// and its generation, used by inodes, directory blocks and extent blocks.
pub(crate) fn inode_seed(fs_seed: u32, inode: u32, generation: u32) -> u32 {
    let crc = raw(fs_seed, &inode.to_le_bytes());
    raw(crc, &generation.to_le_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_register_matches_the_standard_crc_after_inversion() {
        // crc32c("123456789") = 0xE3069283 (the standard check value).
        assert_eq!(!super::raw(!0, b"123456789"), 0xE306_9283);
    }
}

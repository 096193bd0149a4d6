//! The 256-byte on-disk inode: the 128-byte base, 32 bytes of extra fields
//! (nanoseconds, creation time, checksum high half) and 96 bytes where small
//! extended attributes live.

use super::checksum;
use super::endian::{get_u16, get_u32, put_u16, put_u32};
use super::{EXTRA_ISIZE, INODE_SIZE};
use crate::metadata::Timestamp;

/// Where the in-inode xattr area starts: after the base and extra fields.
pub(crate) const INLINE_XATTR_OFFSET: usize = 128 + EXTRA_ISIZE as usize;
/// Bytes of the in-inode xattr area, its magic included.
pub(crate) const INLINE_XATTR_SIZE: usize = INODE_SIZE as usize - INLINE_XATTR_OFFSET;

/// One inode as this crate writes and reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inode {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Timestamp,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
    pub crtime: Timestamp,
    pub links_count: u16,
    /// `i_blocks` in 512-byte sectors (without the `HUGE_FILE` flag).
    pub sectors: u64,
    pub flags: u32,
    /// `i_block`: the extent tree root, a fast symlink or a device number.
    pub block: [u8; 60],
    pub generation: u32,
    /// Block of the extended attribute block, or 0.
    pub file_acl: u64,
    /// `i_extra_isize` (0 for a 128-byte inode).
    pub extra_isize: u16,
    /// The in-inode xattr area (magic first), or empty.
    pub inline_xattrs: Vec<u8>,
}

impl Default for Inode {
    fn default() -> Self {
        Self {
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            mtime: Timestamp::default(),
            crtime: Timestamp::default(),
            links_count: 0,
            sectors: 0,
            flags: 0,
            block: [0; 60],
            generation: 0,
            file_acl: 0,
            extra_isize: EXTRA_ISIZE,
            inline_xattrs: Vec::new(),
        }
    }
}

/// `(seconds low 32 bits, extra)`: extra holds 2 epoch bits and nanoseconds.
fn encode_time(time: Timestamp) -> (u32, u32) {
    let low = time.seconds as i32;
    let epoch = ((time.seconds - i64::from(low)) >> 32) as u32 & 3;
    (low as u32, epoch | (time.nanoseconds << 2))
}

fn decode_time(low: u32, extra: Option<u32>) -> Timestamp {
    let mut seconds = i64::from(low as i32);
    let mut nanoseconds = 0;
    if let Some(extra) = extra {
        seconds += i64::from(extra & 3) << 32;
        nanoseconds = extra >> 2;
    }
    Timestamp {
        seconds,
        nanoseconds,
    }
}

impl Inode {
    /// Encodes into `out` (`INODE_SIZE` bytes), with the checksum of inode
    /// number `number` when `csum_seed` (the file system seed) is given.
    pub fn encode(&self, out: &mut [u8], number: u32, csum_seed: Option<u32>) {
        out.fill(0);
        put_u16(out, 0x0, self.mode);
        put_u16(out, 0x2, self.uid as u16);
        put_u32(out, 0x4, self.size as u32);
        let (atime, atime_extra) = encode_time(self.atime);
        let (ctime, ctime_extra) = encode_time(self.ctime);
        let (mtime, mtime_extra) = encode_time(self.mtime);
        let (crtime, crtime_extra) = encode_time(self.crtime);
        put_u32(out, 0x8, atime);
        put_u32(out, 0xC, ctime);
        put_u32(out, 0x10, mtime);
        put_u16(out, 0x18, self.gid as u16);
        put_u16(out, 0x1A, self.links_count);
        put_u32(out, 0x1C, self.sectors as u32);
        put_u32(out, 0x20, self.flags);
        out[0x28..0x64].copy_from_slice(&self.block);
        put_u32(out, 0x64, self.generation);
        put_u32(out, 0x68, self.file_acl as u32);
        put_u32(out, 0x6C, (self.size >> 32) as u32);
        put_u16(out, 0x74, (self.sectors >> 32) as u16);
        put_u16(out, 0x76, (self.file_acl >> 32) as u16);
        put_u16(out, 0x78, (self.uid >> 16) as u16);
        put_u16(out, 0x7A, (self.gid >> 16) as u16);
        put_u16(out, 0x80, self.extra_isize);
        put_u32(out, 0x84, ctime_extra);
        put_u32(out, 0x88, mtime_extra);
        put_u32(out, 0x8C, atime_extra);
        put_u32(out, 0x90, crtime);
        put_u32(out, 0x94, crtime_extra);
        let start = 128 + usize::from(self.extra_isize);
        let area = self
            .inline_xattrs
            .len()
            .min(out.len().saturating_sub(start));
        out[start..start + area].copy_from_slice(&self.inline_xattrs[..area]);
        if let Some(seed) = csum_seed {
            let crc = checksum::inode_seed(seed, number, self.generation);
            let crc = checksum::raw(crc, out);
            put_u16(out, 0x7C, (crc & 0xFFFF) as u16);
            put_u16(out, 0x82, (crc >> 16) as u16);
        }
    }

    /// Decodes an inode of `bytes.len()` bytes (128 or more).
    pub fn decode(b: &[u8]) -> Self {
        let extra_isize = if b.len() > 128 { get_u16(b, 0x80) } else { 0 };
        let has = |field_end: usize| b.len() > 128 && 128 + usize::from(extra_isize) >= field_end;
        let extra = |at: usize| has(at + 4).then(|| get_u32(b, at));
        let mut block = [0u8; 60];
        block.copy_from_slice(&b[0x28..0x64]);
        let start = 128 + usize::from(extra_isize);
        let inline_xattrs = if b.len() > 128 && start < b.len() {
            b[start..].to_vec()
        } else {
            Vec::new()
        };
        Self {
            mode: get_u16(b, 0x0),
            uid: u32::from(get_u16(b, 0x2)) | (u32::from(get_u16(b, 0x78)) << 16),
            gid: u32::from(get_u16(b, 0x18)) | (u32::from(get_u16(b, 0x7A)) << 16),
            size: u64::from(get_u32(b, 0x4)) | (u64::from(get_u32(b, 0x6C)) << 32),
            atime: decode_time(get_u32(b, 0x8), extra(0x8C)),
            ctime: decode_time(get_u32(b, 0xC), extra(0x84)),
            mtime: decode_time(get_u32(b, 0x10), extra(0x88)),
            crtime: match extra(0x90) {
                Some(low) => decode_time(low, extra(0x94)),
                None => Timestamp::default(),
            },
            links_count: get_u16(b, 0x1A),
            sectors: u64::from(get_u32(b, 0x1C)) | (u64::from(get_u16(b, 0x74)) << 32),
            flags: get_u32(b, 0x20),
            block,
            generation: get_u32(b, 0x64),
            file_acl: u64::from(get_u32(b, 0x68)) | (u64::from(get_u16(b, 0x76)) << 32),
            extra_isize,
            inline_xattrs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Inode, Timestamp};

    #[test]
    fn times_past_2038_and_before_1970_keep_seconds_and_nanoseconds() {
        for seconds in [0, 1_700_000_000, (1 << 31) + 5, -1, -(1 << 31), 1 << 33] {
            let time = Timestamp {
                seconds,
                nanoseconds: 999_999_999,
            };
            let inode = Inode {
                mtime: time,
                uid: 100_000,
                size: 5 << 32,
                ..Inode::default()
            };
            let mut bytes = [0u8; 256];
            inode.encode(&mut bytes, 12, Some(1));
            let back = Inode::decode(&bytes);
            assert_eq!(back.mtime, time, "{seconds}");
            assert_eq!(back.uid, 100_000);
            assert_eq!(back.size, 5 << 32);
        }
    }
}

//! Extended attributes on disk: in the inode's spare bytes, then in one
//! attribute block.
//!
//! Each entry has a 16-byte header (name length, name index, value offset,
//! value inode, value size, hash), the name without its well-known prefix
//! (`user.` is index 1, `security.` 6, …) padded to 4 bytes, and a value
//! stored 4-byte aligned from the far end of the area. A zero word ends the
//! entry list.

use super::checksum;
use super::endian::{get_u8, get_u16, get_u32, put_u8, put_u16, put_u32};

/// Magic at the start of both xattr areas.
pub(crate) const MAGIC: u32 = 0xEA02_0000;
/// Bytes of the attribute block header.
pub(crate) const BLOCK_HEADER_SIZE: usize = 32;
const ENTRY_HEADER_SIZE: usize = 16;

/// Known prefixes and their name indexes, longest first so that
/// `system.posix_acl_access` wins over `system.`.
const PREFIXES: [(&str, u8); 6] = [
    ("system.posix_acl_default", 3),
    ("system.posix_acl_access", 2),
    ("security.", 6),
    ("trusted.", 4),
    ("system.", 7),
    ("user.", 1),
];

/// Name index of `system.posix_acl_access`.
const ACL_ACCESS: u8 = 2;
/// Name index of `system.posix_acl_default`.
const ACL_DEFAULT: u8 = 3;

/// An attribute as stored: the name index, the name without its prefix, the
/// value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RawXattr {
    pub index: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl RawXattr {
    /// Splits a full name like `user.fixture`; `None` when no known prefix
    /// matches.
    pub fn from_full(name: &str, value: &[u8]) -> Option<Self> {
        PREFIXES.iter().find_map(|&(prefix, index)| {
            name.strip_prefix(prefix).map(|rest| Self {
                index,
                name: rest.as_bytes().to_vec(),
                value: match index {
                    ACL_ACCESS | ACL_DEFAULT => {
                        super::acl::to_disk(value).unwrap_or_else(|| value.to_vec())
                    }
                    _ => value.to_vec(),
                },
            })
        })
    }

    /// The full name, prefix restored.
    pub fn full_name(&self) -> Vec<u8> {
        let prefix = PREFIXES
            .iter()
            .find(|&&(_, index)| index == self.index)
            .map_or("", |&(prefix, _)| prefix);
        let mut full = prefix.as_bytes().to_vec();
        full.extend_from_slice(&self.name);
        full
    }

    /// The value as user space sees it (ACLs back in `posix_acl_xattr` form).
    pub fn user_value(&self) -> Vec<u8> {
        match self.index {
            ACL_ACCESS | ACL_DEFAULT => {
                super::acl::from_disk(&self.value).unwrap_or_else(|| self.value.clone())
            }
            _ => self.value.clone(),
        }
    }

    /// Bytes the entry header and name take.
    pub fn entry_size(&self) -> usize {
        (ENTRY_HEADER_SIZE + self.name.len()).div_ceil(4) * 4
    }

    /// Bytes the value takes.
    pub fn value_size(&self) -> usize {
        self.value.len().div_ceil(4) * 4
    }

    /// The entry hash ext4 stores in `e_hash`.
    pub fn hash(&self) -> u32 {
        let mut hash: u32 = 0;
        for &byte in &self.name {
            hash = (hash << 5) ^ (hash >> 27) ^ (byte as i8 as i32 as u32);
        }
        let mut padded = self.value.clone();
        padded.resize(self.value_size(), 0);
        for word in padded.chunks_exact(4) {
            hash = (hash << 16) ^ (hash >> 16) ^ get_u32(word, 0);
        }
        hash
    }
}

/// Writes `entries` into `area` (entries from `entries_at`, values counted
/// from `values_base`, which is where value offsets are relative to). Returns
/// false when they do not fit.
fn put_entries(
    area: &mut [u8],
    entries_at: usize,
    values_base: usize,
    xattrs: &[RawXattr],
) -> bool {
    let needed: usize = xattrs.iter().map(|x| x.entry_size() + x.value_size()).sum();
    if entries_at + needed + 4 > area.len() {
        return false;
    }
    let mut at = entries_at;
    let mut value_end = area.len();
    for x in xattrs {
        value_end -= x.value_size();
        area[value_end..value_end + x.value.len()].copy_from_slice(&x.value);
        put_u8(area, at, x.name.len() as u8);
        put_u8(area, at + 1, x.index);
        let offset = if x.value.is_empty() {
            0
        } else {
            value_end - values_base
        };
        put_u16(area, at + 2, offset as u16);
        put_u32(area, at + 4, 0);
        put_u32(area, at + 8, x.value.len() as u32);
        put_u32(area, at + 12, x.hash());
        area[at + 16..at + 16 + x.name.len()].copy_from_slice(&x.name);
        at += x.entry_size();
    }
    true
}

/// The in-inode area of `area_size` bytes holding `xattrs`; `None` when they
/// do not fit.
pub(crate) fn encode_inline(xattrs: &[RawXattr], area_size: usize) -> Option<Vec<u8>> {
    let mut area = vec![0u8; area_size];
    put_u32(&mut area, 0, MAGIC);
    put_entries(&mut area, 4, 4, xattrs).then_some(area)
}

/// Bytes `xattrs` need in an attribute block.
pub(crate) fn block_size_needed(xattrs: &[RawXattr]) -> usize {
    BLOCK_HEADER_SIZE
        + xattrs
            .iter()
            .map(|x| x.entry_size() + x.value_size())
            .sum::<usize>()
        + 4
}

/// An attribute block at block number `block_nr` holding `xattrs` (sorted
/// here as the kernel keeps them); `None` when they do not fit.
pub(crate) fn encode_block(
    xattrs: &[RawXattr],
    block_size: usize,
    block_nr: u64,
    csum_seed: Option<u32>,
) -> Option<Vec<u8>> {
    let mut sorted = xattrs.to_vec();
    sorted.sort_by(|a, b| (a.index, a.name.len(), &a.name).cmp(&(b.index, b.name.len(), &b.name)));
    let mut block = vec![0u8; block_size];
    put_u32(&mut block, 0, MAGIC);
    put_u32(&mut block, 4, 1); // h_refcount
    put_u32(&mut block, 8, 1); // h_blocks
    if !put_entries(&mut block, BLOCK_HEADER_SIZE, 0, &sorted) {
        return None;
    }
    let mut hash: u32 = 0;
    for x in &sorted {
        hash = (hash << 16) ^ (hash >> 16) ^ x.hash();
    }
    put_u32(&mut block, 12, hash);
    if let Some(seed) = csum_seed {
        let crc = checksum::raw(seed, &block_nr.to_le_bytes());
        let crc = checksum::raw(crc, &block);
        put_u32(&mut block, 16, crc);
    }
    Some(block)
}

/// Decodes the entries of an area: in-inode (`entries_at` 4, values relative
/// to 4) or block (`entries_at` 32, values relative to 0). Stops at the end
/// marker or at the first malformed entry.
fn decode_entries(area: &[u8], entries_at: usize, values_base: usize) -> Vec<RawXattr> {
    let mut out = Vec::new();
    let mut at = entries_at;
    while at + ENTRY_HEADER_SIZE <= area.len() && get_u32(area, at) != 0 {
        let name_len = usize::from(get_u8(area, at));
        let index = get_u8(area, at + 1);
        let value_at = values_base + usize::from(get_u16(area, at + 2));
        let value_inode = get_u32(area, at + 4);
        let value_len = get_u32(area, at + 8) as usize;
        let name_end = at + ENTRY_HEADER_SIZE + name_len;
        if name_end > area.len() || value_inode != 0 || value_at + value_len > area.len() {
            break;
        }
        out.push(RawXattr {
            index,
            name: area[at + ENTRY_HEADER_SIZE..name_end].to_vec(),
            value: area[value_at..value_at + value_len].to_vec(),
        });
        at += (ENTRY_HEADER_SIZE + name_len).div_ceil(4) * 4;
    }
    out
}

/// The attributes in an inode's spare area (empty without the magic).
pub(crate) fn decode_inline(area: &[u8]) -> Vec<RawXattr> {
    if area.len() < 8 || get_u32(area, 0) != MAGIC {
        return Vec::new();
    }
    decode_entries(area, 4, 4)
}

/// The attributes in an attribute block (empty without the magic).
pub(crate) fn decode_block(block: &[u8]) -> Vec<RawXattr> {
    if block.len() < BLOCK_HEADER_SIZE || get_u32(block, 0) != MAGIC {
        return Vec::new();
    }
    decode_entries(block, BLOCK_HEADER_SIZE, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_round_trip_and_acl_names_use_their_own_index() {
        let x = RawXattr::from_full("system.posix_acl_access", b"v").expect("known");
        assert_eq!((x.index, x.name.as_slice()), (2, &b""[..]));
        let x = RawXattr::from_full("security.capability", b"v").expect("known");
        assert_eq!(x.full_name(), b"security.capability");
        assert!(RawXattr::from_full("unknown.x", b"v").is_none());
    }

    #[test]
    fn inline_and_block_areas_decode_to_what_was_encoded() {
        let xattrs = vec![
            RawXattr::from_full("user.a", b"1").expect("known"),
            RawXattr::from_full("user.second", b"two").expect("known"),
        ];
        let area = encode_inline(&xattrs, 96).expect("fits");
        assert_eq!(decode_inline(&area), xattrs);
        let block = encode_block(&xattrs, 4096, 9, Some(3)).expect("fits");
        assert_eq!(decode_block(&block), xattrs);
    }
}

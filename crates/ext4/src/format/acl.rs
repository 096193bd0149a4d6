//! POSIX ACLs: the kernel hands them to user space (and tar carries them) as
//! `posix_acl_xattr` (version 2, 8 bytes per entry), but ext4 stores its own
//! denser form (version 1, 4 bytes for the owner, group, mask and other
//! entries, 8 for named users and groups). The writer converts on the way in
//! and the reader on the way out.

use super::endian::{get_u16, get_u32, put_u16, put_u32};

const XATTR_VERSION: u32 = 2;
const EXT4_VERSION: u32 = 1;
const USER: u16 = 0x02;
const GROUP: u16 = 0x08;

fn has_id(tag: u16) -> bool {
    tag == USER || tag == GROUP
}

/// The ext4 form of a `posix_acl_xattr` value; `None` when it is not one.
pub(crate) fn to_disk(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() < 4 || !(value.len() - 4).is_multiple_of(8) || get_u32(value, 0) != XATTR_VERSION
    {
        return None;
    }
    let mut out = vec![0u8; 4];
    put_u32(&mut out, 0, EXT4_VERSION);
    for entry in value[4..].chunks_exact(8) {
        let tag = get_u16(entry, 0);
        let mut e = vec![0u8; if has_id(tag) { 8 } else { 4 }];
        put_u16(&mut e, 0, tag);
        put_u16(&mut e, 2, get_u16(entry, 2));
        if has_id(tag) {
            put_u32(&mut e, 4, get_u32(entry, 4));
        }
        out.extend_from_slice(&e);
    }
    Some(out)
}

/// The `posix_acl_xattr` form of an ext4 ACL; `None` when it is not one.
pub(crate) fn from_disk(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() < 4 || get_u32(value, 0) != EXT4_VERSION {
        return None;
    }
    let mut out = vec![0u8; 4];
    put_u32(&mut out, 0, XATTR_VERSION);
    let mut at = 4;
    while at + 4 <= value.len() {
        let tag = get_u16(value, at);
        let mut e = [0u8; 8];
        put_u16(&mut e, 0, tag);
        put_u16(&mut e, 2, get_u16(value, at + 2));
        if has_id(tag) {
            if at + 8 > value.len() {
                return None;
            }
            put_u32(&mut e, 4, get_u32(value, at + 4));
            at += 8;
        } else {
            put_u32(&mut e, 4, u32::MAX);
            at += 4;
        }
        out.extend_from_slice(&e);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn acls_convert_both_ways() {
        // user::rw-, user:1000:r--, group::r--, mask::r--, other::---
        let mut xattr = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, u32::MAX),
            (2, 4, 1000),
            (4, 4, u32::MAX),
            (0x10, 4, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            xattr.extend_from_slice(&tag.to_le_bytes());
            xattr.extend_from_slice(&perm.to_le_bytes());
            xattr.extend_from_slice(&id.to_le_bytes());
        }
        let disk = super::to_disk(&xattr).expect("an ACL");
        assert_eq!(disk.len(), 4 + 4 + 8 + 4 + 4 + 4);
        assert_eq!(super::from_disk(&disk).expect("an ACL"), xattr);
    }
}

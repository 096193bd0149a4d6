//! Little-endian field access on byte slices, the only byte order ext4 uses.
//!
//! Callers pass offsets from the format tables; a slice too short for the
//! field is a programming error on the writer side, and the reader checks
//! lengths before it decodes.

pub(crate) fn get_u8(bytes: &[u8], at: usize) -> u8 {
    bytes[at]
}

pub(crate) fn get_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

pub(crate) fn put_u8(bytes: &mut [u8], at: usize, value: u8) {
    bytes[at] = value;
}

pub(crate) fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// The low 32 bits of `value`.
pub(crate) fn lo32(value: u64) -> u32 {
    (value & 0xFFFF_FFFF) as u32
}

/// Bits 32..64 of `value`.
pub(crate) fn hi32(value: u64) -> u32 {
    (value >> 32) as u32
}

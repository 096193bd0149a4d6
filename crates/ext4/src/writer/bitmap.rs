//! Bitmap helpers for the block and inode bitmaps.

/// Sets bits `from..to` of `bitmap` to `used`.
pub(crate) fn mark(bitmap: &mut [u8], from: u64, to: u64, used: bool) {
    let mut bit = from;
    while bit < to {
        if bit.is_multiple_of(8) && bit + 8 <= to {
            let bytes = ((to - bit) / 8) as usize;
            let at = (bit / 8) as usize;
            bitmap[at..at + bytes].fill(if used { 0xFF } else { 0 });
            bit += bytes as u64 * 8;
            continue;
        }
        let (byte, mask) = ((bit / 8) as usize, 1u8 << (bit % 8));
        if used {
            bitmap[byte] |= mask;
        } else {
            bitmap[byte] &= !mask;
        }
        bit += 1;
    }
}

/// Zero bits among the first `bits` of `bitmap`.
pub(crate) fn count_zeros(bitmap: &[u8], bits: u64) -> u64 {
    let full = (bits / 8) as usize;
    let mut zeros: u64 = bitmap[..full]
        .iter()
        .map(|b| u64::from(b.count_zeros()))
        .sum();
    for bit in full as u64 * 8..bits {
        if bitmap[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
            zeros += 1;
        }
    }
    zeros
}

//! The directory-index name hash (half MD4), as the kernel computes it for
//! htree lookups.
//!
//! The name is cut into 32-byte chunks; each chunk becomes eight words (padded
//! with a value made from the length) and goes through a reduced MD4 round;
//! the second state word is the hash, with its low bit cleared (that bit marks
//! hash collisions continuing into the next leaf).

/// Whether name bytes count as signed or unsigned chars (`s_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signedness {
    Signed,
    #[allow(dead_code)] // images made on unsigned-char platforms
    Unsigned,
}

const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

fn chunk_words(chunk: &[u8], total_len: usize, sign: Signedness) -> [u32; 8] {
    let len = total_len as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut words = [pad; 8];
    let mut value = pad;
    let mut word = 0;
    for (i, &byte) in chunk.iter().take(32).enumerate() {
        let c = match sign {
            Signedness::Signed => i32::from(byte as i8) as u32,
            Signedness::Unsigned => u32::from(byte),
        };
        value = c.wrapping_add(value << 8);
        if i % 4 == 3 {
            words[word] = value;
            word += 1;
            value = pad;
        }
    }
    if word < 8 {
        words[word] = value;
    }
    words
}

fn half_md4(state: &mut [u32; 4], input: &[u32; 8]) {
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *state;
    macro_rules! round {
        ($fun:expr, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a
                .wrapping_add($fun($b, $c, $d))
                .wrapping_add($x)
                .rotate_left($s);
        };
    }
    let x = input;
    round!(f, a, b, c, d, x[0], 3);
    round!(f, d, a, b, c, x[1], 7);
    round!(f, c, d, a, b, x[2], 11);
    round!(f, b, c, d, a, x[3], 19);
    round!(f, a, b, c, d, x[4], 3);
    round!(f, d, a, b, c, x[5], 7);
    round!(f, c, d, a, b, x[6], 11);
    round!(f, b, c, d, a, x[7], 19);
    round!(g, a, b, c, d, x[1].wrapping_add(K2), 3);
    round!(g, d, a, b, c, x[3].wrapping_add(K2), 5);
    round!(g, c, d, a, b, x[5].wrapping_add(K2), 9);
    round!(g, b, c, d, a, x[7].wrapping_add(K2), 13);
    round!(g, a, b, c, d, x[0].wrapping_add(K2), 3);
    round!(g, d, a, b, c, x[2].wrapping_add(K2), 5);
    round!(g, c, d, a, b, x[4].wrapping_add(K2), 9);
    round!(g, b, c, d, a, x[6].wrapping_add(K2), 13);
    round!(h, a, b, c, d, x[3].wrapping_add(K3), 3);
    round!(h, d, a, b, c, x[7].wrapping_add(K3), 9);
    round!(h, c, d, a, b, x[2].wrapping_add(K3), 11);
    round!(h, b, c, d, a, x[6].wrapping_add(K3), 15);
    round!(h, a, b, c, d, x[1].wrapping_add(K3), 3);
    round!(h, d, a, b, c, x[5].wrapping_add(K3), 9);
    round!(h, c, d, a, b, x[0].wrapping_add(K3), 11);
    round!(h, b, c, d, a, x[4].wrapping_add(K3), 15);
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// The htree hash of `name` under `seed` (the superblock's `s_hash_seed`;
/// all zeros means the default seed).
pub(crate) fn half_md4_hash(name: &[u8], seed: &[u32; 4], sign: Signedness) -> u32 {
    let mut state = if seed.iter().all(|&w| w == 0) {
        DEFAULT_SEED
    } else {
        *seed
    };
    let mut rest = name;
    loop {
        let words = chunk_words(rest, rest.len(), sign);
        half_md4(&mut state, &words);
        if rest.len() <= 32 {
            break;
        }
        rest = &rest[32..];
    }
    let hash = state[1] & !1;
    if hash == 0x7FFF_FFFF << 1 {
        (0x7FFF_FFFF - 1) << 1
    } else {
        hash
    }
}

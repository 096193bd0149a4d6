//! An empty qcow2 (version 3) overlay over a raw base image, written
//! directly so that a container's writable disk costs a few small writes
//! instead of a `qemu-img create` process.
//!
//! The guest reads the base until it writes a cluster; QEMU then allocates
//! the cluster (and the L2 table that maps it) in the overlay, so the base
//! is never written. The empty overlay holds only metadata, one 64 KiB
//! cluster each:
//!
//! | cluster | content                                                       |
//! |---------|---------------------------------------------------------------|
//! | 0       | header, backing-format extension (`raw`), backing file name   |
//! | 1       | refcount table: one entry, pointing at cluster 2              |
//! | 2       | refcount block: 16-bit refcount 1 for every metadata cluster  |
//! | 3…      | L1 table, all zero: no L2 table yet, every read goes to the base |
//!
//! All numbers are big-endian, as the qcow2 specification
//! (QEMU's `docs/interop/qcow2.txt`) requires. The file is sized with
//! `set_len`, so the zero parts stay holes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// "QFI\xfb".
const MAGIC: [u8; 4] = *b"QFI\xfb";
/// The format version that has header extensions and feature bits.
const VERSION: u32 = 3;
/// 64 KiB clusters, QEMU's default.
const CLUSTER_BITS: u32 = 16;
const CLUSTER_SIZE: u64 = 1 << CLUSTER_BITS;
/// Length of the version 3 header without the optional fields (the
/// compression type is left out: it defaults to zlib).
const HEADER_LENGTH: u32 = 104;
/// Refcounts are `1 << 4` = 16 bits wide, QEMU's default: one refcount
/// block then counts 32768 clusters, more than the largest overlay's
/// metadata (3 clusters and an L1 table of at most 512).
const REFCOUNT_ORDER: u32 = 4;
/// Header extension: the backing file's format name.
const EXTENSION_BACKING_FORMAT: u32 = 0xE279_2ACA;
/// Header extension: end of the list.
const EXTENSION_END: u32 = 0;
/// The format QEMU must open the backing file with: naming it stops QEMU
/// from probing (and a guest-written qcow2 header in the base from being
/// believed).
const BACKING_FORMAT: &[u8] = b"raw";
/// QEMU refuses longer backing file names.
pub(crate) const MAX_BACKING_NAME: usize = 1023;
/// QEMU refuses L1 tables over 32 MiB (a 256 TiB disk with 64 KiB clusters).
const MAX_L1_BYTES: u64 = 32 << 20;

const REFCOUNT_TABLE_CLUSTER: u64 = 1;
const REFCOUNT_BLOCK_CLUSTER: u64 = 2;
const L1_CLUSTER: u64 = 3;

/// The bytes of an empty overlay: what to write where, and the file length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overlay {
    /// Cluster 0, up to the end of the backing file name.
    header: Vec<u8>,
    /// Clusters holding metadata (header, refcounts, L1 table).
    clusters: u64,
}

impl Overlay {
    /// An overlay of `virtual_size` bytes over the raw file `backing` (an
    /// absolute path, as bytes). Fails with a reason a user can read when
    /// the name or the size is out of what QEMU accepts.
    pub(crate) fn new(backing: &[u8], virtual_size: u64) -> Result<Self, String> {
        if backing.is_empty() || backing.len() > MAX_BACKING_NAME {
            return Err(format!(
                "the base's path is {} bytes long; qcow2 allows 1 to {MAX_BACKING_NAME}: \
                 use a shorter state folder",
                backing.len()
            ));
        }
        // One L2 table maps CLUSTER_SIZE / 8 clusters.
        let l2_span = CLUSTER_SIZE * (CLUSTER_SIZE / 8);
        let l1_entries = virtual_size.div_ceil(l2_span);
        let l1_bytes = l1_entries * 8;
        if l1_bytes > MAX_L1_BYTES {
            return Err(format!(
                "the base is {virtual_size} bytes, more than a qcow2 overlay can cover"
            ));
        }
        let l1_clusters = l1_bytes.div_ceil(CLUSTER_SIZE).max(1);
        let clusters = L1_CLUSTER + l1_clusters;

        let mut header = Vec::with_capacity(256 + backing.len());
        header.extend_from_slice(&MAGIC);
        put32(&mut header, VERSION);
        let backing_offset_at = header.len();
        put64(&mut header, 0); // backing_file_offset, filled in below
        put32(&mut header, u32_of(backing.len()));
        put32(&mut header, CLUSTER_BITS);
        put64(&mut header, virtual_size);
        put32(&mut header, 0); // crypt_method: none
        put32(&mut header, u32_of(l1_entries));
        put64(&mut header, L1_CLUSTER * CLUSTER_SIZE);
        put64(&mut header, REFCOUNT_TABLE_CLUSTER * CLUSTER_SIZE);
        put32(&mut header, 1); // refcount_table_clusters
        put32(&mut header, 0); // nb_snapshots
        put64(&mut header, 0); // snapshots_offset
        put64(&mut header, 0); // incompatible_features: none
        put64(&mut header, 0); // compatible_features: none
        put64(&mut header, 0); // autoclear_features: none
        put32(&mut header, REFCOUNT_ORDER);
        put32(&mut header, HEADER_LENGTH);
        debug_assert_eq!(header.len(), HEADER_LENGTH as usize);

        // Extensions: type, length, data padded to 8 bytes.
        put32(&mut header, EXTENSION_BACKING_FORMAT);
        put32(&mut header, u32_of(BACKING_FORMAT.len()));
        header.extend_from_slice(BACKING_FORMAT);
        header.resize(header.len().next_multiple_of(8), 0);
        put32(&mut header, EXTENSION_END);
        put32(&mut header, 0);

        let backing_offset = header.len() as u64;
        header[backing_offset_at..backing_offset_at + 8]
            .copy_from_slice(&backing_offset.to_be_bytes());
        header.extend_from_slice(backing);
        Ok(Self { header, clusters })
    }

    /// The file length: every metadata cluster, whole.
    pub(crate) fn len(&self) -> u64 {
        self.clusters * CLUSTER_SIZE
    }

    /// The refcount table: its only entry points at the refcount block.
    fn refcount_table(&self) -> [u8; 8] {
        (REFCOUNT_BLOCK_CLUSTER * CLUSTER_SIZE).to_be_bytes()
    }

    /// The start of the refcount block: refcount 1 for each metadata
    /// cluster (the rest of the block is zero: free).
    fn refcount_block(&self) -> Vec<u8> {
        (0..self.clusters)
            .flat_map(|_| 1u16.to_be_bytes())
            .collect()
    }

    /// Writes the overlay into `file`, which must be empty.
    pub(crate) fn write_to(&self, file: &File) -> io::Result<()> {
        file.set_len(self.len())?;
        file.write_all_at(&self.header, 0)?;
        file.write_all_at(
            &self.refcount_table(),
            REFCOUNT_TABLE_CLUSTER * CLUSTER_SIZE,
        )?;
        file.write_all_at(
            &self.refcount_block(),
            REFCOUNT_BLOCK_CLUSTER * CLUSTER_SIZE,
        )
    }
}

/// The backing file an overlay names, or `None` when `file` is no qcow2
/// overlay with one (a reflinked copy, another format, a short file).
pub(crate) fn backing_file(file: &mut impl std::io::Read) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut header = vec![0u8; CLUSTER_SIZE as usize];
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    header.truncate(filled);
    if header.get(..4)? != MAGIC {
        return None;
    }
    let offset = usize::try_from(u64::from_be_bytes(header.get(8..16)?.try_into().ok()?)).ok()?;
    let len = usize::try_from(u32::from_be_bytes(header.get(16..20)?.try_into().ok()?)).ok()?;
    let name = header.get(offset..offset.checked_add(len)?)?;
    (offset != 0 && !name.is_empty())
        .then(|| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(name)))
}

fn put32(buf: &mut Vec<u8>, value: u32) {
    buf.extend_from_slice(&value.to_be_bytes());
}

fn put64(buf: &mut Vec<u8>, value: u64) {
    buf.extend_from_slice(&value.to_be_bytes());
}

/// Lengths checked against [`MAX_BACKING_NAME`] and [`MAX_L1_BYTES`] fit.
fn u32_of(value: impl TryInto<u32>) -> u32 {
    value.try_into().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::{CLUSTER_SIZE, Overlay};

    fn be32(bytes: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
    }

    fn be64(bytes: &[u8], at: usize) -> u64 {
        u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
    }

    #[test]
    fn the_header_names_the_backing_file_and_its_format() {
        let overlay = Overlay::new(b"/srv/cz/rootfs/base.ext4", 4 << 30).expect("overlay");
        let h = &overlay.header;
        assert_eq!(&h[0..4], b"QFI\xfb");
        assert_eq!(be32(h, 4), 3);
        assert_eq!(be32(h, 20), 16);
        assert_eq!(be64(h, 24), 4 << 30);
        assert_eq!(be32(h, 36), 8, "4 GiB needs 8 L2 tables of 512 MiB");
        assert_eq!(be32(h, 100), 104);
        assert_eq!(be32(h, 104), 0xE279_2ACA);
        assert_eq!(be32(h, 108), 3);
        assert_eq!(&h[112..115], b"raw");
        assert_eq!(be32(h, 120), 0, "end of extensions");
        let offset = be64(h, 8) as usize;
        let len = be32(h, 16) as usize;
        assert_eq!(&h[offset..offset + len], b"/srv/cz/rootfs/base.ext4");
        assert_eq!(overlay.len(), 4 * CLUSTER_SIZE);
    }

    #[test]
    fn the_backing_file_is_read_back() {
        let overlay = Overlay::new(b"/srv/cz/rootfs/base.ext4", 4 << 30).expect("overlay");
        assert_eq!(
            super::backing_file(&mut &overlay.header[..]),
            Some("/srv/cz/rootfs/base.ext4".into())
        );
        assert_eq!(super::backing_file(&mut &b"not a qcow2 file"[..]), None);
        assert_eq!(super::backing_file(&mut &overlay.header[..30]), None);
    }

    #[test]
    fn refcounts_cover_every_metadata_cluster() {
        // 2^44 bytes need 32768 L1 entries: 256 KiB, four clusters.
        let overlay = Overlay::new(b"/b", 1 << 44).expect("overlay");
        assert_eq!(overlay.len(), 7 * CLUSTER_SIZE);
        assert_eq!(overlay.refcount_block(), [0, 1].repeat(7));
    }

    #[test]
    fn names_and_sizes_qemu_refuses_are_refused() {
        assert!(Overlay::new(&[b'a'; 1024], 1 << 30).is_err());
        assert!(Overlay::new(b"", 1 << 30).is_err());
        assert!(Overlay::new(b"/b", u64::MAX).is_err());
    }
}

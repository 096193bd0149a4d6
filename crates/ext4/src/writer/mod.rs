//! The image writer: [`Formatter`] takes entries one by one and writes an
//! ext4 image.
//!
//! File data goes into the image as it arrives (the formatter never holds a
//! whole file); everything else (names, inodes, extents) stays in memory until
//! [`Formatter::finish`] lays out directories, extent trees, inode tables,
//! bitmaps, group descriptors and superblocks in one pass. The image is
//! written to a temporary file beside the target and renamed into place only
//! when it is whole, so an error never leaves a partial image behind.

mod alloc;
mod bitmap;
mod data;
mod directory;
mod entries;
mod extent_tree;
mod finish;
mod inode_build;
mod journal;
mod layout;
mod place;
mod resolve;
mod spool;
mod tree;

use std::path::{Path, PathBuf};

pub use entries::Special;
pub(crate) use tree::{display, split_path};

use crate::format::group_has_superblock;
use crate::metadata::{Metadata, Timestamp};
use crate::{Error, Result};
use alloc::Allocator;
use spool::Spool;
use tree::Tree;

/// Largest image the writer makes, in blocks (64 TiB with 4 KiB blocks).
const MAX_BLOCKS: u64 = 1 << 34;
/// Largest image an automatically sized image may grow to, in blocks (4 TiB
/// with 4 KiB blocks): its capacity, which no file and no layer may pass.
const AUTO_MAX_BLOCKS: u64 = 1 << 30;

/// Block size and what follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocks {
    /// Bytes per block: 1024, 2048 or 4096.
    pub size: u64,
}

impl Blocks {
    /// Blocks per group: one bitmap block covers 8 blocks per byte.
    pub fn per_group(self) -> u64 {
        self.size * 8
    }

    /// The first block of group 0: 1 with 1 KiB blocks (block 0 holds the
    /// boot sector and the superblock sits in block 1), else 0.
    pub fn first_data_block(self) -> u64 {
        u64::from(self.size == 1024)
    }

    /// The first block of group `group`.
    pub fn group_start(self, group: u64) -> u64 {
        self.first_data_block() + group * self.per_group()
    }

    /// Groups in an image of `blocks` blocks.
    pub fn groups(self, blocks: u64) -> u64 {
        (blocks - self.first_data_block()).div_ceil(self.per_group())
    }

    /// `s_log_block_size`.
    pub fn log(self) -> u32 {
        (self.size / 1024).trailing_zeros()
    }
}

/// How the image is made.
#[derive(Debug, Clone)]
pub struct FormatOptions {
    /// Image size in bytes; `None` sizes the image from its content, with
    /// [`headroom_percent`](Self::headroom_percent) more room, up to 4 TiB
    /// (with 4 KiB blocks; 1 TiB with 1 KiB blocks). A file, or a layer's
    /// data, larger than the size (or that most) is refused, however much
    /// of it is holes.
    pub size: Option<u64>,
    /// Free space (and inodes) added to an automatically sized image, in
    /// percent of what the content takes.
    pub headroom_percent: u32,
    /// Protect metadata with crc32c checksums (`metadata_csum`), as mke2fs
    /// does by default.
    pub metadata_csum: bool,
    /// Volume label, 16 bytes at most.
    pub label: String,
    /// Block size in bytes: 4096 (the default), 2048 or 1024.
    pub block_size: u32,
    /// File system UUID; `None` makes one from the clock.
    pub uuid: Option<[u8; 16]>,
    /// Metadata of the root directory.
    pub root: Metadata,
    /// Use 64-bit block numbers (the `64bit` feature) even when the size
    /// does not need them, as mke2fs does by default; without it they are
    /// used only for images over 16 TiB.
    pub always_64bit: bool,
    /// Add an empty jbd2 journal (ordered mode by default when mounted), as
    /// a writable root file system wants.
    pub journal: bool,
}

impl Default for FormatOptions {
    fn default() -> Self {
        Self {
            size: None,
            headroom_percent: 20,
            metadata_csum: true,
            label: String::new(),
            uuid: None,
            block_size: 4096,
            root: Metadata::new(0o755, Timestamp::now()),
            journal: false,
            always_64bit: false,
        }
    }
}

/// What [`Formatter::finish`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The image size in bytes.
    pub size: u64,
    /// The block size in bytes.
    pub block_size: u64,
    /// Inodes in use (reserved ones included).
    pub inodes_used: u64,
    /// Inodes in the image.
    pub inodes_count: u64,
    /// Blocks in use.
    pub blocks_used: u64,
}

/// Writes an ext4 image entry by entry.
///
/// Paths are resolved inside the image as if it were `/` (a leading `/` is
/// ignored, `..` never climbs above the root, symlinks on the way are
/// followed inside the image, the last name never is); missing parent
/// directories are created with mode 0755. An entry added where one
/// exists replaces it, except a directory added over a directory, which only
/// takes the new metadata (its content stays).
#[derive(Debug)]
pub struct Formatter {
    target: PathBuf,
    temp: tempfile::TempPath,
    spool: Spool,
    alloc: Allocator,
    tree: Tree,
    options: FormatOptions,
    /// Size fixed by the caller, in blocks.
    fixed_blocks: Option<u64>,
    /// The block size.
    pub(crate) blocks: Blocks,
    /// Descriptor-table blocks kept free after each superblock copy.
    gdt_reserve: u64,
    /// Where the next data allocation starts.
    goal: u64,
    /// Read buffer for file data.
    chunk: Vec<u8>,
    /// The layer entries come from (0 outside layers).
    pub(crate) layer: u16,
}

/// Bytes of one group descriptor.
pub(crate) fn desc_size(blocks: u64, always_64bit: bool) -> u64 {
    if always_64bit || blocks > u64::from(u32::MAX) {
        64
    } else {
        32
    }
}

impl Formatter {
    /// Starts an image that [`finish`](Self::finish) will write to `target`.
    pub fn create(target: impl AsRef<Path>, options: FormatOptions) -> Result<Self> {
        let target = target.as_ref().to_path_buf();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if ![1024, 2048, 4096].contains(&options.block_size) {
            return Err(Error::UnsupportedSize {
                size: u64::from(options.block_size),
                reason: "blocks are 1024, 2048 or 4096 bytes",
            });
        }
        let geo = Blocks {
            size: u64::from(options.block_size),
        };
        let fixed_blocks = match options.size {
            Some(size) => {
                let blocks = size / geo.size;
                if blocks < 256 {
                    return Err(Error::UnsupportedSize {
                        size,
                        reason: "an image needs at least 256 blocks",
                    });
                }
                if blocks > MAX_BLOCKS {
                    return Err(Error::UnsupportedSize {
                        size,
                        reason: "the writer makes images of 64 TiB at most",
                    });
                }
                Some(blocks)
            }
            None => None,
        };
        let limit = fixed_blocks.unwrap_or(AUTO_MAX_BLOCKS);
        let gdt_reserve =
            (geo.groups(limit) * desc_size(limit, options.always_64bit)).div_ceil(geo.size);
        let mut reserved: Vec<(u64, u64)> = Vec::new();
        if geo.first_data_block() == 1 {
            reserved.push((0, 1));
        }
        reserved.extend(
            (0..geo.groups(limit))
                .filter(|&g| group_has_superblock(g))
                .map(|g| (geo.group_start(g), 1 + gdt_reserve)),
        );
        let temp = tempfile::Builder::new()
            .prefix(".ext4-")
            .tempfile_in(&dir)
            .map_err(|source| Error::Io {
                action: "cannot create a temporary image in",
                path: dir.clone(),
                source,
            })?;
        let (file, temp) = temp.into_parts();
        let bytes = limit * geo.size;
        file.set_len(bytes).map_err(|source| Error::Io {
            action: "cannot size the image",
            path: temp.to_path_buf(),
            source,
        })?;
        Ok(Self {
            target,
            temp,
            spool: Spool::new(file, geo.size),
            alloc: Allocator::new(limit, &reserved),
            tree: Tree::new(options.root.clone()),
            options,
            fixed_blocks,
            blocks: geo,
            gdt_reserve,
            goal: 0,
            chunk: vec![0; 1 << 20],
            layer: 0,
        })
    }

    /// The most the image can hold, in bytes: its configured size, or the
    /// largest an automatically sized image grows to.
    pub(crate) fn capacity(&self) -> u64 {
        self.fixed_blocks.unwrap_or(AUTO_MAX_BLOCKS) * self.blocks.size
    }

    /// The temporary file the image is being written to.
    fn temp_path(&self) -> PathBuf {
        self.temp.to_path_buf()
    }

    fn io_error(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        let path = self.temp_path();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    fn out_of_space(&self, path: &[u8]) -> Error {
        Error::OutOfSpace {
            size: self.capacity(),
            path: display(path),
        }
    }

    /// Writes every structure, checks the image is whole and renames it to
    /// the target. On error the temporary file is removed.
    pub fn finish(mut self) -> Result<Summary> {
        let summary = self.write_metadata()?;
        let target = self.target.clone();
        let path = self.temp_path();
        // A temporary file is made 0600; the image gets 0666 less the
        // umask, as any new file would.
        let umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
        rustix::process::umask(umask);
        let mode = rustix::fs::Mode::from_raw_mode(0o666 & !umask.bits());
        rustix::fs::fchmod(self.spool.file(), mode).map_err(|e| Error::Io {
            action: "cannot set the mode of",
            path: path.clone(),
            source: e.into(),
        })?;
        self.spool.file().sync_all().map_err(|source| Error::Io {
            action: "cannot flush",
            path: path.clone(),
            source,
        })?;
        self.temp.persist(&target).map_err(|e| Error::Io {
            action: "cannot rename the finished image to",
            path: target.clone(),
            source: e.error,
        })?;
        Ok(summary)
    }
}

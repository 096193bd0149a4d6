//! The crate's one error type. Each message says what failed and, where the
//! caller can act, what to change.

use std::path::PathBuf;

/// Everything that can go wrong writing or reading an ext4 image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation on the host failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot write".
        action: &'static str,
        /// The host path involved.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// Reading the content of an entry failed part way.
    #[error("cannot read the data of {}: {source}", path.display())]
    Data {
        /// The entry inside the image.
        path: PathBuf,
        /// The error the reader returned.
        source: std::io::Error,
    },
    /// The requested image size cannot hold an ext4 file system.
    #[error("an image of {size} bytes is not possible: {reason}")]
    UnsupportedSize {
        /// The size asked for.
        size: u64,
        /// Why it does not work.
        reason: &'static str,
    },
    /// The image has no free block left.
    #[error(
        "the image ({size} bytes) is full while writing {}; give a larger size",
        path.display()
    )]
    OutOfSpace {
        /// The image size.
        size: u64,
        /// The entry being written.
        path: PathBuf,
    },
    /// The image has no free inode left.
    #[error(
        "the image has room for {count} inodes and {} needs one more; ask for more inodes or a larger size",
        path.display()
    )]
    OutOfInodes {
        /// The inode count of the image.
        count: u64,
        /// The entry being created.
        path: PathBuf,
    },
    /// A path inside the image is not acceptable.
    #[error("invalid path {}: {reason}", path.display())]
    InvalidPath {
        /// The offending path.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A name is longer than ext4 allows.
    #[error(
        "the name {:?} in {} is {len} bytes long; ext4 names are 255 bytes at most",
        String::from_utf8_lossy(name), path.display()
    )]
    NameTooLong {
        /// The full path.
        path: PathBuf,
        /// The name.
        name: Vec<u8>,
        /// Its length in bytes.
        len: usize,
    },
    /// A path component that must be a directory is something else.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path of the non-directory.
        path: PathBuf,
    },
    /// Resolving a path went through more symlinks than Linux follows.
    #[error(
        "{} goes through more than 40 symbolic links on its way (a symlink loop?)",
        path.display()
    )]
    TooManySymlinks {
        /// The path being resolved.
        path: PathBuf,
    },
    /// The path does not exist in the image.
    #[error("{} does not exist in the image", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// A hard link was asked for a directory.
    #[error("cannot hard link {} to the directory {}", link.display(), target.display())]
    HardLinkToDirectory {
        /// The link being made.
        link: PathBuf,
        /// The directory it points at.
        target: PathBuf,
    },
    /// A hard link would replace the directory that holds every name of
    /// the file it is for.
    #[error(
        "{}the hard link {} points at {}, inside what it replaces: replacing {} would remove the file it links to",
        in_layer(*layer), link.display(), target.display(), link.display()
    )]
    HardLinkReplacesTarget {
        /// Which layer (1 is the lowest; 0 outside layers).
        layer: usize,
        /// The link being made.
        link: PathBuf,
        /// Its target.
        target: PathBuf,
    },
    /// One inode would get more links than ext4 counts.
    #[error("{} would have more than 65,000 hard links", path.display())]
    TooManyLinks {
        /// The entry.
        path: PathBuf,
    },
    /// A file is larger than extents map: 2^32 blocks (16 TiB with 4 KiB
    /// blocks, 4 TiB with 1 KiB blocks).
    #[error(
        "{} is {size} bytes; files are 2^32 blocks at most (16 TiB with 4 KiB blocks)",
        path.display()
    )]
    FileTooLarge {
        /// The entry.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A file is larger than the image being built can hold (its size as
    /// configured, or the most an automatically sized image grows to).
    #[error(
        "{}{} is {size} bytes, more than this image can hold ({capacity} bytes); give a larger size if the file is real",
        in_layer(*layer), path.display()
    )]
    FileBeyondImage {
        /// Which layer (1 is the lowest; 0 outside layers).
        layer: usize,
        /// The entry.
        path: PathBuf,
        /// The size it claims or reached.
        size: u64,
        /// The most the image holds, in bytes.
        capacity: u64,
    },
    /// A layer unpacks to more data than the image being built can hold: a
    /// damaged or hostile layer (a decompression bomb), or too small a size.
    #[error(
        "layer {layer}: its data passes {capacity} bytes, all this image can hold, at {}; the layer is damaged or hostile, or the image needs a larger size",
        path.display()
    )]
    LayerBeyondImage {
        /// Which layer (1 is the lowest).
        layer: usize,
        /// The entry at which it passed the capacity.
        path: PathBuf,
        /// The most the image holds, in bytes.
        capacity: u64,
    },
    /// An extended attribute name has no namespace ext4 stores.
    #[error(
        "{} has the xattr {name:?}: only user., trusted., security. and system. names are stored",
        path.display()
    )]
    XattrName {
        /// The entry.
        path: PathBuf,
        /// The attribute name.
        name: String,
    },
    /// The extended attributes of one entry do not fit the inode and one block.
    #[error("the xattrs of {} take {bytes} bytes; one inode and one block hold about 4 KiB", path.display())]
    XattrsTooLarge {
        /// The entry.
        path: PathBuf,
        /// Their encoded size.
        bytes: usize,
    },
    /// A tar stream could not be read.
    #[error("layer {layer}: cannot read the tar stream: {source}")]
    Tar {
        /// Which layer (1 is the lowest).
        layer: usize,
        /// The reading error (truncation shows up here).
        source: std::io::Error,
    },
    /// A tar entry is refused.
    #[error("layer {layer}: the entry {} is refused: {reason}", path.display())]
    UnsafeEntry {
        /// Which layer (1 is the lowest).
        layer: usize,
        /// The entry path as written in the tar.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A hard link in a layer points at nothing.
    #[error("layer {layer}: the hard link {} points at {}, which is not in the image", link.display(), target.display())]
    DanglingHardLink {
        /// Which layer.
        layer: usize,
        /// The link.
        link: PathBuf,
        /// Its target.
        target: PathBuf,
    },
    /// The file is not an ext4 image this reader understands.
    #[error("{} is not an ext4 image: {reason}", path.display())]
    NotExt4 {
        /// The image path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The image's structures are inconsistent.
    #[error("the image is damaged: {0}")]
    Corrupt(String),
}

/// "layer N: " for an error met in layer N, nothing outside layers.
fn in_layer(layer: usize) -> String {
    if layer == 0 {
        String::new()
    } else {
        format!("layer {layer}: ")
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

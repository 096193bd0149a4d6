//! What the reader returns about entries: their kind, `stat` data and
//! directory listings.

use crate::format::dirent::FileType;
use crate::format::mode;
use crate::metadata::{DeviceNumber, Metadata};

/// What kind of entry an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A regular file.
    Regular,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A unix socket.
    Socket,
}

impl FileKind {
    pub(crate) fn from_mode(m: u16) -> Option<Self> {
        Some(match m & mode::TYPE_MASK {
            mode::DIRECTORY => Self::Directory,
            mode::REGULAR => Self::Regular,
            mode::SYMLINK => Self::Symlink,
            mode::CHAR_DEVICE => Self::CharDevice,
            mode::BLOCK_DEVICE => Self::BlockDevice,
            mode::FIFO => Self::Fifo,
            mode::SOCKET => Self::Socket,
            _ => return None,
        })
    }

    pub(crate) fn from_dirent(t: FileType) -> Option<Self> {
        Some(match t {
            FileType::Directory => Self::Directory,
            FileType::Regular => Self::Regular,
            FileType::Symlink => Self::Symlink,
            FileType::CharDevice => Self::CharDevice,
            FileType::BlockDevice => Self::BlockDevice,
            FileType::Fifo => Self::Fifo,
            FileType::Socket => Self::Socket,
            FileType::Unknown => return None,
        })
    }
}

/// What `stat` says about an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Inode number.
    pub inode: u32,
    /// The kind of entry.
    pub kind: FileKind,
    /// Permissions, owner, times and xattrs.
    pub metadata: Metadata,
    /// Size in bytes.
    pub size: u64,
    /// Hard link count.
    pub links: u32,
    /// Blocks the entry owns, in 512-byte units.
    pub sectors: u64,
    /// Device number of a device node.
    pub device: Option<DeviceNumber>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name (any bytes but `/` and NUL).
    pub name: Vec<u8>,
    /// Inode number.
    pub inode: u32,
    /// The kind from the entry's type field, when the image records it.
    pub kind: Option<FileKind>,
}

//! Reading ext4 images, ours and mke2fs's: look up paths, stat entries, list
//! directories, read files, links and xattrs, and export a tree as tar.
//!
//! The reader follows extent trees of any depth and reads htree directories
//! as the plain entry lists their leaves are; it does not replay a journal
//! and refuses block-mapped (ext2/ext3 style) files and inline data.

mod entry;
mod export;

pub use entry::{DirEntry, FileKind, Stat};

use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::format::dirent;
use crate::format::extent::{self, Extent, Node};
use crate::format::group_desc::GroupDesc;
use crate::format::inode::Inode;
use crate::format::superblock::{SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};
use crate::format::{ROOT_INODE, incompat, inode_flags, mode, xattr};
use crate::metadata::{DeviceNumber, Metadata, Xattr};
use crate::writer::{display, split_path};
use crate::{Error, Result};

/// An open ext4 image.
#[derive(Debug)]
pub struct Image {
    file: File,
    path: PathBuf,
    sb: Superblock,
    groups: Vec<GroupDesc>,
    block_size: u64,
}

impl Image {
    /// Opens the image at `path` and reads its superblock and group table.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| Error::Io {
            action: "cannot open",
            path: path.clone(),
            source,
        })?;
        let not_ext4 = |reason: &str| Error::NotExt4 {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        file.read_exact_at(&mut raw, SUPERBLOCK_OFFSET)
            .map_err(|_| not_ext4("it is shorter than a superblock"))?;
        let sb = Superblock::decode(&raw).ok_or_else(|| not_ext4("no ext4 magic at byte 1080"))?;
        if sb.log_block_size > 6 || sb.blocks_per_group == 0 || sb.inodes_per_group == 0 {
            return Err(not_ext4("the superblock's geometry is impossible"));
        }
        if sb.feature_incompat & incompat::RECOVER != 0 {
            return Err(not_ext4(
                "its journal needs recovery; run e2fsck on it first",
            ));
        }
        if sb.feature_incompat & incompat::INLINE_DATA != 0 {
            return Err(not_ext4("inline_data is not supported"));
        }
        if sb.feature_incompat & incompat::META_BG != 0 {
            return Err(not_ext4("meta_bg layouts are not supported"));
        }
        let block_size = sb.block_size();
        let desc = sb.descriptor_size();
        let count = sb.group_count() as usize;
        let gdt_at = (u64::from(sb.first_data_block) + 1) * block_size;
        let mut table = vec![0u8; count * desc];
        file.read_exact_at(&mut table, gdt_at)
            .map_err(|_| not_ext4("the group descriptor table is cut short"))?;
        let groups = table.chunks_exact(desc).map(GroupDesc::decode).collect();
        Ok(Self {
            file,
            path,
            sb,
            groups,
            block_size,
        })
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    fn corrupt(&self, what: String) -> Error {
        Error::Corrupt(format!("{}: {what}", self.path.display()))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| Error::Io {
                action: "cannot read",
                path: self.path.clone(),
                source,
            })
    }

    fn read_block(&self, block: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.block_size as usize];
        self.read_at(&mut buf, block * self.block_size)?;
        Ok(buf)
    }

    pub(crate) fn inode(&self, ino: u32) -> Result<Inode> {
        if ino == 0 || ino > self.sb.inodes_count {
            return Err(self.corrupt(format!("inode {ino} is out of range")));
        }
        let ipg = self.sb.inodes_per_group;
        let group = ((ino - 1) / ipg) as usize;
        let index = u64::from((ino - 1) % ipg);
        let desc = self
            .groups
            .get(group)
            .ok_or_else(|| self.corrupt(format!("no group for inode {ino}")))?;
        let size = u64::from(self.sb.inode_size.max(128));
        let mut raw = vec![0u8; size as usize];
        self.read_at(&mut raw, desc.inode_table * self.block_size + index * size)?;
        Ok(Inode::decode(&raw))
    }

    /// The data extents of an inode, in logical order.
    pub(crate) fn extents(&self, inode: &Inode) -> Result<Vec<Extent>> {
        if inode.flags & inode_flags::EXTENTS == 0 {
            return Err(
                self.corrupt("a block-mapped file; only extent-mapped files are read".into())
            );
        }
        let mut out = Vec::new();
        self.walk(&inode.block, &mut out, 0)?;
        Ok(out)
    }

    fn walk(&self, node: &[u8], out: &mut Vec<Extent>, level: u32) -> Result<()> {
        if level > 8 {
            return Err(self.corrupt("an extent tree deeper than 8 levels".into()));
        }
        match extent::decode(node) {
            Some(Node::Leaf(extents)) => out.extend(extents),
            Some(Node::Index { entries, .. }) => {
                for e in entries {
                    let block = self.read_block(e.child)?;
                    self.walk(&block, out, level + 1)?;
                }
            }
            None => return Err(self.corrupt("a bad extent tree node".into())),
        }
        Ok(())
    }

    /// Writes the first `size` bytes of an inode's data to `out`, holes as
    /// zeros.
    fn copy_data(&self, inode: &Inode, size: u64, out: &mut dyn Write) -> Result<()> {
        let bs = self.block_size;
        let mut pos = 0u64;
        let zeros = vec![0u8; 1 << 16];
        let mut buf = Vec::new();
        let write_err = |source| Error::Io {
            action: "cannot write data read from",
            path: self.path.clone(),
            source,
        };
        let emit_zeros = |out: &mut dyn Write, mut n: u64| -> Result<()> {
            while n > 0 {
                let k = n.min(zeros.len() as u64) as usize;
                out.write_all(&zeros[..k]).map_err(write_err)?;
                n -= k as u64;
            }
            Ok(())
        };
        for e in self.extents(inode)? {
            let (len, unwritten) = if e.len > 32_768 {
                (e.len - 32_768, true)
            } else {
                (e.len, false)
            };
            let start = u64::from(e.logical) * bs;
            if start >= size {
                break;
            }
            if start > pos {
                emit_zeros(out, start - pos)?;
            }
            let bytes = (u64::from(len) * bs).min(size - start);
            if unwritten {
                emit_zeros(out, bytes)?;
            } else {
                buf.resize(bytes as usize, 0);
                self.read_at(&mut buf, e.physical * bs)?;
                out.write_all(&buf).map_err(write_err)?;
            }
            pos = start + bytes;
        }
        if pos < size {
            emit_zeros(out, size - pos)?;
        }
        Ok(())
    }

    /// The entry at `path` (relative to the root; `/` is the root).
    pub fn stat(&self, path: impl AsRef<Path>) -> Result<Stat> {
        let ino = self.lookup(path.as_ref())?;
        self.stat_inode(ino)
    }

    /// The entry with inode number `ino`.
    pub fn stat_inode(&self, ino: u32) -> Result<Stat> {
        let inode = self.inode(ino)?;
        let kind = FileKind::from_mode(inode.mode)
            .ok_or_else(|| self.corrupt(format!("inode {ino} has no file type")))?;
        let device = matches!(kind, FileKind::CharDevice | FileKind::BlockDevice).then(|| {
            let w0 = u32::from_le_bytes([
                inode.block[0],
                inode.block[1],
                inode.block[2],
                inode.block[3],
            ]);
            let w1 = u32::from_le_bytes([
                inode.block[4],
                inode.block[5],
                inode.block[6],
                inode.block[7],
            ]);
            if w0 != 0 {
                DeviceNumber {
                    major: (w0 >> 8) & 0xFF,
                    minor: w0 & 0xFF,
                }
            } else {
                DeviceNumber {
                    major: (w1 & 0xF_FF00) >> 8,
                    minor: (w1 & 0xFF) | ((w1 >> 12) & 0xF_FF00),
                }
            }
        });
        let huge = inode.flags & inode_flags::HUGE_FILE != 0;
        let sectors = if huge {
            inode.sectors * (self.block_size / 512)
        } else {
            inode.sectors
        };
        Ok(Stat {
            inode: ino,
            kind,
            metadata: Metadata {
                permissions: inode.mode & 0o7777,
                uid: inode.uid,
                gid: inode.gid,
                atime: inode.atime,
                mtime: inode.mtime,
                ctime: inode.ctime,
                crtime: inode.crtime,
                xattrs: self.xattrs_of(&inode)?,
            },
            size: inode.size,
            links: u32::from(inode.links_count),
            sectors,
            device,
        })
    }

    fn xattrs_of(&self, inode: &Inode) -> Result<Vec<Xattr>> {
        let mut raw = xattr::decode_inline(&inode.inline_xattrs);
        if inode.file_acl != 0 {
            raw.extend(xattr::decode_block(&self.read_block(inode.file_acl)?));
        }
        Ok(raw
            .into_iter()
            .map(|x| Xattr {
                name: String::from_utf8_lossy(&x.full_name()).into_owned(),
                value: x.user_value(),
            })
            .collect())
    }

    fn entries_of(&self, ino: u32) -> Result<Vec<DirEntry>> {
        let inode = self.inode(ino)?;
        if inode.mode & mode::TYPE_MASK != mode::DIRECTORY {
            return Err(Error::NotADirectory {
                path: format!("inode {ino}").into(),
            });
        }
        let mut data = Vec::with_capacity(inode.size.min(1 << 24) as usize);
        self.copy_data(&inode, inode.size, &mut data)?;
        let mut out = Vec::new();
        for block in data.chunks(self.block_size as usize) {
            let entries = dirent::decode_block(block)
                .ok_or_else(|| self.corrupt(format!("directory inode {ino} has a bad entry")))?;
            out.extend(
                entries
                    .into_iter()
                    .filter(|e| e.name != b"." && e.name != b"..")
                    .map(|e| DirEntry {
                        name: e.name,
                        inode: e.inode,
                        kind: FileKind::from_dirent(e.file_type),
                    }),
            );
        }
        Ok(out)
    }

    /// The inode number of `path`.
    pub fn lookup(&self, path: impl AsRef<Path>) -> Result<u32> {
        let bytes = path.as_ref().as_os_str().as_bytes();
        let mut at = ROOT_INODE;
        for name in split_path(bytes)? {
            let entries = self.entries_of(at).map_err(|e| match e {
                Error::NotADirectory { .. } => Error::NotADirectory {
                    path: display(bytes),
                },
                other => other,
            })?;
            at = entries
                .iter()
                .find(|e| e.name == name)
                .map(|e| e.inode)
                .ok_or_else(|| Error::NotFound {
                    path: display(bytes),
                })?;
        }
        Ok(at)
    }

    /// The entries of the directory `path`, without `.` and `..`.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> Result<Vec<DirEntry>> {
        let ino = self.lookup(path.as_ref())?;
        self.entries_of(ino).map_err(|e| match e {
            Error::NotADirectory { .. } => Error::NotADirectory {
                path: path.as_ref().to_path_buf(),
            },
            other => other,
        })
    }

    /// Writes the content of the regular file `path` to `out`; returns its
    /// size.
    pub fn copy_file(&self, path: impl AsRef<Path>, out: &mut dyn Write) -> Result<u64> {
        let ino = self.lookup(path.as_ref())?;
        self.copy_inode(ino, out)
    }

    pub(crate) fn copy_inode(&self, ino: u32, out: &mut dyn Write) -> Result<u64> {
        let inode = self.inode(ino)?;
        self.copy_data(&inode, inode.size, out)?;
        Ok(inode.size)
    }

    /// The content of the regular file `path`.
    pub fn read_file(&self, path: impl AsRef<Path>) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.copy_file(path, &mut out)?;
        Ok(out)
    }

    /// The target of the symbolic link `path`.
    pub fn read_link(&self, path: impl AsRef<Path>) -> Result<Vec<u8>> {
        let ino = self.lookup(path.as_ref())?;
        self.link_target(ino)
    }

    pub(crate) fn link_target(&self, ino: u32) -> Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        if inode.mode & mode::TYPE_MASK != mode::SYMLINK {
            return Err(self.corrupt(format!("inode {ino} is not a symlink")));
        }
        if inode.flags & inode_flags::EXTENTS == 0 && inode.size < 60 {
            return Ok(inode.block[..inode.size as usize].to_vec());
        }
        let mut out = Vec::new();
        self.copy_data(&inode, inode.size, &mut out)?;
        Ok(out)
    }
}

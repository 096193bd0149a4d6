//! Tar streams written header by header, so tests can put in what the tar
//! crate's builder refuses: `..` and absolute names, odd whiteouts, hard
//! links anywhere, sizes with no data behind them. Long names and link
//! targets get GNU long-name entries, as GNU tar writes them.

use tar::{EntryType, Header};

/// One entry of a hand-written layer.
#[derive(Debug, Clone, Copy)]
pub enum Item {
    /// A directory.
    Dir(&'static str),
    /// A regular file and its content.
    File(&'static str, &'static str),
    /// A symbolic link and its target.
    Symlink(&'static str, &'static str),
    /// A hard link and the path it points at.
    HardLink(&'static str, &'static str),
}

/// A tar stream being written.
#[derive(Debug, Default)]
pub struct RawTar {
    out: Vec<u8>,
}

impl RawTar {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A whole layer of `items`.
    pub fn layer(items: &[Item]) -> Vec<u8> {
        let mut tar = Self::new();
        for item in items {
            tar.item(*item);
        }
        tar.finish()
    }

    /// Appends one item.
    pub fn item(&mut self, item: Item) {
        match item {
            Item::Dir(name) => self.entry(EntryType::Directory, name.as_bytes(), b"", b""),
            Item::File(name, data) => {
                self.entry(EntryType::Regular, name.as_bytes(), b"", data.as_bytes())
            }
            Item::Symlink(name, target) => {
                self.entry(EntryType::Symlink, name.as_bytes(), target.as_bytes(), b"")
            }
            Item::HardLink(name, target) => {
                self.entry(EntryType::Link, name.as_bytes(), target.as_bytes(), b"")
            }
        }
    }

    /// Appends an entry with `data` after its header.
    pub fn entry(&mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) {
        let mut header = self.header(kind, name, link);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.push(header.as_bytes(), data);
    }

    /// Appends a header claiming `size` bytes of data that never come.
    pub fn header_only(&mut self, kind: EntryType, name: &[u8], size: u64) {
        let mut header = self.header(kind, name, b"");
        header.set_size(size);
        header.set_cksum();
        self.out.extend_from_slice(header.as_bytes());
    }

    /// Appends a raw 512-byte header as it is.
    pub fn raw_header(&mut self, header: &Header) {
        self.out.extend_from_slice(header.as_bytes());
    }

    /// The stream, closed with two zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0; 1024]);
        self.out
    }

    /// A GNU header for `name` and `link`, with long-name entries written
    /// before it when they do not fit.
    fn header(&mut self, kind: EntryType, name: &[u8], link: &[u8]) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(1_700_000_000);
        let fields = header.as_old_mut();
        if name.len() < fields.name.len() {
            fields.name[..name.len()].copy_from_slice(name);
        } else {
            self.long_name(EntryType::GNULongName, name);
        }
        let fields = header.as_old_mut();
        if link.len() < fields.linkname.len() {
            fields.linkname[..link.len()].copy_from_slice(link);
        } else {
            self.long_name(EntryType::GNULongLink, link);
        }
        header
    }

    fn long_name(&mut self, kind: EntryType, name: &[u8]) {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        let mut data = name.to_vec();
        data.push(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.push(header.as_bytes(), &data);
    }

    fn push(&mut self, header: &[u8], data: &[u8]) {
        self.out.extend_from_slice(header);
        self.out.extend_from_slice(data);
        self.out.resize(self.out.len().div_ceil(512) * 512, 0);
    }
}

//! ext4 file system images for containerization, written straight from
//! directories or OCI layer streams: no mount, no loop device, no root.
//!
//! [`Formatter`] writes an image entry by entry (file data goes to the image
//! as it streams in); [`Formatter::unpack_layer`] applies an OCI layer
//! (whiteouts, opaque directories, replacement rules); [`Formatter::add_dir_tree`]
//! copies a host directory; [`Image`] reads any ext4 image back.
//!
//! Images have 4 KiB blocks (or 1 KiB or 2 KiB), 256-byte inodes (nanosecond times, creation
//! time, in-inode xattrs), extent trees of any depth, `flex_bg`,
//! `sparse_super`, htree directories, `metadata_csum`, and `64bit` when the
//! size needs it (or when asked); an empty jbd2 journal on request. They are
//! sized from their content (with headroom) or given a size, written to a
//! temporary file and renamed into place only when whole. Not yet: journal
//! replay in the reader.
//!
//! ```no_run
//! use containerization_ext4::{Formatter, FormatOptions, Image, Metadata, Timestamp};
//!
//! # fn main() -> Result<(), containerization_ext4::Error> {
//! let mut image = Formatter::create("rootfs.ext4", FormatOptions::default())?;
//! let meta = Metadata::new(0o644, Timestamp::now());
//! image.add_file("etc/hostname", &meta, &mut &b"container\n"[..])?;
//! image.add_symlink("etc/localtime", &meta, "/usr/share/zoneinfo/UTC")?;
//! image.finish()?;
//!
//! let image = Image::open("rootfs.ext4")?;
//! assert_eq!(image.read_file("etc/hostname")?, b"container\n");
//! # Ok(())
//! # }
//! ```

mod error;
mod format;
mod from_dir;
mod layer_budget;
mod layers;
mod metadata;
mod reader;
mod writer;

pub use error::{Error, Result};
pub use layers::Compression;
pub use metadata::{DeviceNumber, Metadata, Timestamp, Xattr};
pub use reader::{DirEntry, FileKind, Image, Stat};
pub use writer::{FormatOptions, Formatter, Special, Summary};

//! Tar streams of a tree confined to a directory descriptor.
//!
//! `cctl cp` moves files between a host folder and a container whose
//! contents are not trusted, in both directions: into a container's root
//! in its guest, and out of it onto the host. Both ends here work inside a
//! [`Root`], a directory descriptor under which every path is resolved with
//! `openat2(RESOLVE_IN_ROOT)`: a symlink pointing at `/` or climbing with
//! `..` stays inside the root, and an archive's entries ([`unpack`]) land
//! inside the destination whatever symlinks it plants first. [`pack`]
//! walks a tree from descriptor to descriptor and never follows a symlink
//! it meets (only the path asked for, when told to).
//!
//! ```
//! use containerization_archive::{Root, UnpackOptions, pack, unpack};
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let from = tempfile::tempdir()?;
//! std::fs::create_dir(from.path().join("app"))?;
//! std::fs::write(from.path().join("app/config"), "x=1\n")?;
//! let mut archive = Vec::new();
//! pack(&Root::open(from.path())?, "app".as_ref(), "app".as_ref(), false, &mut archive)?;
//!
//! let to = tempfile::tempdir()?;
//! unpack(&Root::open(to.path())?, "".as_ref(), archive.as_slice(), &UnpackOptions::default())?;
//! assert_eq!(std::fs::read_to_string(to.path().join("app/config"))?, "x=1\n");
//! # Ok(())
//! # }
//! # demo().unwrap();
//! ```

mod error;
mod pack;
mod root;
mod unpack;

pub use error::{ArchiveError, Result};
pub use pack::pack;
pub use root::{Kind, PathInfo, Root};
pub use unpack::{Rebase, UnpackOptions, unpack};

/// The deepest tree [`pack`] walks (directories inside directories).
pub const MAX_DEPTH: usize = 1024;

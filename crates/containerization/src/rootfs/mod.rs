//! Root file systems: base ext4 images cached per manifest digest, and
//! writable clones.
//!
//! An image's layers are unpacked once into a read-only **base** (an ext4
//! file with a journal and room to write), kept in the state root's
//! `rootfs/` folder under the manifest's digest. Each container then gets
//! its own writable disk made from the base in constant time: a reflink
//! copy where the host file system shares extents, otherwise a qcow2
//! overlay whose backing file is the base. Bases are never modified, so
//! any number of containers share one. [`collect_unused`] removes the bases
//! no image and no container uses any more, and what killed builds left.
//!
//! ```no_run
//! use containerization::rootfs::{RootfsCache, writable_clone};
//! # fn main() -> Result<(), containerization::Error> {
//! # let manifest: containerization_oci::Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse()?;
//! # let layers = vec![std::path::PathBuf::from("/srv/cz/blobs/sha256/layer")];
//! let cache = RootfsCache::new("/srv/cz/rootfs");
//! let base = cache.base(&manifest, &layers)?;
//! let kind = writable_clone(&base, std::path::Path::new("/srv/cz/containers/web/rootfs.img"))?;
//! println!("{kind:?}");
//! # Ok(())
//! # }
//! ```

mod build;
mod cache;
mod clone;
mod collect;
mod lock;
mod qcow2;

pub use cache::{CachedBase, RootfsCache};
pub use clone::{CloneKind, writable_clone};
pub use collect::{RootfsCollection, RootfsUsage, collect_unused, usage};

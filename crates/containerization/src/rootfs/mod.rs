//! Root file systems: base ext4 images cached per manifest digest (or per
//! stack of containerd snapshots, see [`SnapshotKey`]), and writable
//! clones.
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
//! use containerization_oci::layer::StoredLayer;
//! use containerization_oci::store::ImageStore;
//! use containerization_oci::{Digest, Platform};
//! # fn main() -> Result<(), containerization::Error> {
//! let images = ImageStore::open(std::path::Path::new("/srv/cz"))?;
//! let image = images.resolve("docker.io/library/busybox:latest", &Platform::host())?;
//! let manifest = Digest::try_from(image.manifest_descriptor.digest())?;
//! let cache = RootfsCache::new("/srv/cz/rootfs");
//! let base = cache.base(&manifest, images.content(), &StoredLayer::of_image(&image)?)?;
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
mod snapshot;

pub use cache::{CachedBase, RootfsCache};
pub use clone::{CloneKind, writable_clone};
pub use collect::{RootfsCollection, RootfsUsage, collect_unused, usage};
pub use snapshot::SnapshotKey;
pub(crate) use snapshot::build_from_tree;

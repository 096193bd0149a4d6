//! OCI images for containerization: everything that turns an image reference
//! into bytes on disk and back.
//!
//! - Typed values: [`Digest`], [`Reference`], [`Platform`], [`media_type`].
//! - [`store::ContentStore`]: an OCI image layout that `skopeo` and `umoci`
//!   read as it is; every blob is verified before it becomes visible.
//! - [`store::ImageStore`]: image names ↔ root descriptors, GC, usage, and
//!   which registry repositories hold each blob ([`store::BlobSource`]).
//! - [`registry::RegistryClient`]: pull and push against any distribution
//!   registry, with anonymous, Basic and Bearer auth and docker credentials;
//!   blobs checked against their digests as they arrive; pushes that
//!   mount blobs across repositories and resume broken chunked uploads.
//! - [`layer`]: gzip, zstd and plain layer streams, stored layers read with
//!   their digest and `diff_id` checked as they are read
//!   ([`layer::CheckedLayer`]), and a safe unpacker.
//! - [`archive`]: `save` to and `load` from OCI layout and `docker save` tars.
//!
//! ```no_run
//! use containerization_oci::registry::{ClientConfig, RegistryClient};
//! use containerization_oci::store::ImageStore;
//! use containerization_oci::{Platform, Reference};
//!
//! # async fn demo() -> containerization_oci::Result<()> {
//! let store = ImageStore::open(std::path::Path::new("/var/lib/containerization"))?;
//! let client = RegistryClient::new(ClientConfig::default())?;
//! let reference: Reference = "alpine".parse()?; // docker.io/library/alpine:latest
//! let image = client.pull(&store, &reference, &Platform::host()).await?;
//! let resolved = store.resolve(&image.name, &Platform::host())?;
//! containerization_oci::layer::unpack_image(
//!     store.content(),
//!     &resolved.manifest,
//!     std::path::Path::new("/tmp/rootfs"),
//!     &containerization_oci::layer::UnpackOptions::default(),
//! )?;
//! # Ok(())
//! # }
//! ```

pub mod archive;
mod digest;
mod error;
pub mod layer;
pub mod limits;
pub mod manifest;
pub mod media_type;
mod platform;
pub mod progress;
mod reference;
pub mod registry;
pub mod store;

pub use digest::{Algorithm, Digest, Hasher};
pub use error::{Error, Result};
pub use platform::Platform;
pub use reference::{DEFAULT_REGISTRY, Reference, is_loopback_host};

//! Real test peers for the containerization workspace.
//!
//! Every crate's tests use this kit instead of reinventing its peers, and no
//! peer is a mock:
//!
//! - [`Registry`]: a real `docker-registry` on 127.0.0.1 with a private storage
//!   folder, anonymous, with htpasswd Basic auth, with Bearer tokens from a
//!   [`TokenIssuer`] (`auth: token`), or with TLS from a CA made for the test.
//!   It is killed when dropped, when the test panics, and (through the
//!   parent-death signal) when the test binary itself is killed.
//! - [`fixture`]: OCI images built by third-party tools only (`umoci`, `skopeo`,
//!   GNU `tar`) from Debian's `busybox-static`, cached by recipe.
//! - [`debian_rootfs`]: a minimal Debian made by `debootstrap`, cached; and
//!   [`debian_image`], the same tree as a four-layer image, for benchmarks.
//! - [`hostile_cases`]: layers written by Python's `tarfile` that try to
//!   reach the host, with the outcome every unpack path must give, and
//!   [`Sentinels`] outside the target that must stay untouched.
//! - [`Containerd`]: a private containerd (its own root, state and sockets),
//!   with our runtime configured, for the shim's tests.
//! - [`kernel_catalogue_dir`]: where `scripts/setup` put the guest kernels.
//! - [`enter_new_network_namespace`] and [`NamedNetns`]: an isolated network
//!   for each networking test, and stand-in guests.
//! - fault injection ([`corrupt_blob`], [`truncate_half`], [`edit_json`],
//!   [`Stranger`], [`SmallDisk`] and [`fill`]): damaged blobs and records, a
//!   reused PID, a full disk.
//!
//! ```no_run
//! use containerization_testkit::{fixture, Fixture, Registry};
//!
//! # fn main() -> containerization_testkit::Result<()> {
//! let registry = Registry::anonymous()?;
//! let image = fixture(Fixture::Busybox)?;
//! registry.push(&image, "demo/busybox:1")?;
//! assert_eq!(registry.tags("demo/busybox")?, ["1"]);
//! # Ok(())
//! # }
//! ```

mod cache;
mod command;
mod containerd;
mod debian;
mod error;
mod faults;
mod fixtures;
mod hostile;
mod netns;
mod paths;
mod registry;
mod request_log;
mod supervise;
mod tls;
mod token;

pub use containerd::Containerd;
pub use debian::{debian_rootfs, foreign_debian_rootfs};
pub use error::{Error, Result};
pub use faults::{SmallDisk, Stranger, blob_path, corrupt_blob, edit_json, fill, truncate_half};
pub use fixtures::{
    Compression, Fixture, FixtureImage, debian_image, fixture, foreign_debian_image, layered,
};
pub use hostile::{Expect, Found, HostileCase, Outcome, Sentinels, hostile_cases, hostile_image};
pub use netns::{NamedNetns, enter_new_network_namespace};
pub use paths::{
    kernel_catalogue_dir, own_templates, shared_state_root, state_root, test_cache_dir,
};
pub use registry::{Credentials, Registry, RegistryBuilder};
pub use request_log::LoggedRequest;
pub use supervise::Supervised;
pub use tls::TestCa;
pub use token::{IssuerControl, REGISTRY_EXPIRY_LEEWAY, TOKEN_ISSUER, TOKEN_SERVICE, TokenIssuer};

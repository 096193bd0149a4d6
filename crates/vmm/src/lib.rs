//! Lightweight virtual machines for containerization.
//!
//! This crate will own VM configuration, the hypervisor back ends (QEMU
//! `microvm` first), accelerator detection, vsock back ends, QMP, console
//! capture and the initramfs builder. What works today is the **kernel
//! catalogue**: the folder of guest kernels (`kernels/<name>/`) that
//! `scripts/setup` fills with Debian's cloud kernel and that the optimized
//! kernel build will add to.
//!
//! ```
//! use containerization_vmm::KernelCatalogue;
//!
//! # fn main() -> Result<(), containerization_vmm::VmmError> {
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let catalogue = KernelCatalogue::new(dir.path());
//! // An empty (or missing) catalogue lists no kernels.
//! assert!(catalogue.list()?.is_empty());
//! # Ok(())
//! # }
//! ```

mod catalogue;
mod error;
mod kernel;

pub use catalogue::KernelCatalogue;
pub use error::VmmError;
pub use kernel::{Kernel, KernelImageFormat};

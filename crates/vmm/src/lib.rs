//! Lightweight virtual machines for containerization.
//!
//! What works today:
//! - the **kernel catalogue** (`kernels/<name>/`): Debian's cloud kernel from
//!   `scripts/setup` and the optimized kernel from `kernel/build.sh`;
//! - the **initramfs builder** ([`build_initramfs`]): a `newc` cpio written
//!   in Rust with the static vminitd as `/init` and, for a stock kernel, the
//!   modules it needs resolved through its `modules.dep`; cached by hash;
//! - **accelerator detection** ([`Accelerator::detect`]): KVM only with the
//!   vmx/svm flag and a `/dev/kvm` that opens, `CZ_ACCEL` overrides;
//! - the **QEMU microvm back end** ([`VirtualMachine`]): one QEMU and one
//!   `vhost-device-vsock` per VM, both killed with their owner; the guest's
//!   agent is reached through the hybrid vsock socket.
//!
//! Still to come (the vmm issue): QMP, the balloon, qcow2 overlays, the
//! kernel vhost-vsock back end, `cctl vm boot` and the boot benchmark.
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

mod accel;
mod catalogue;
mod cpio;
mod error;
mod initramfs;
mod kernel;
mod qemu;

pub use accel::Accelerator;
pub use catalogue::KernelCatalogue;
pub use error::VmmError;
pub use initramfs::{WANTED_MODULES, build_initramfs};
pub use kernel::{Kernel, KernelImageFormat};
pub use qemu::{VirtualMachine, VmConfig};

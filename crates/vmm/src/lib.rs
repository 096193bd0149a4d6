//! Lightweight virtual machines for containerization.
//!
//! - the **kernel catalogue** (`kernels/<name>/`): Debian's cloud kernel from
//!   `scripts/setup` and the optimized kernel from `kernel/build.sh`;
//! - the **initramfs builder** ([`build_initramfs`]): a `newc` cpio written
//!   in Rust with the static vminitd as `/init` and, for a stock kernel, the
//!   modules it needs resolved through its `modules.dep`; cached by hash;
//! - **accelerator detection** ([`Accelerator::detect`]): KVM only with the
//!   vmx/svm flag and a `/dev/kvm` that creates a VM, `CZ_ACCEL` overrides;
//! - **configuration** ([`VmConfig`]): CPUs, memory, kernel, disks (raw or
//!   qcow2, read-only, cache mode, discard), tap-backed interfaces, vsock,
//!   balloon, console log; validated before anything starts;
//! - the **hypervisor seam** ([`Hypervisor`], [`VirtualMachine`]) and its
//!   QEMU microvm back end ([`Qemu`]): start returns once the guest's agent
//!   answers, stop is agent shutdown, then QMP `quit`, then SIGKILL; QEMU and
//!   its helper die with their owner; QEMU runs under its seccomp sandbox
//!   ([`VmConfig::sandbox`]), its QMP on a socket pair (no socket path),
//!   its run folder private (0700, sockets and files 0600); started by
//!   root, in a mount namespace that shows it only its own files
//!   ([`VmConfig::jail`]) and as an unprivileged uid of its own
//!   ([`QemuUsers`]), handed its disks, taps and sockets as descriptors;
//! - **agent transport** ([`VsockBackend`]): by default the serial transport
//!   (yamux over a virtio-serial port, served as a hybrid vsock socket by a
//!   task of the VM's owner); or the kernel's vhost-vsock with a CID per VM,
//!   or one `vhost-device-vsock` per VM speaking the hybrid protocol;
//! - **templates** ([`QemuVm::snapshot`], [`MemoryBacking`],
//!   [`VmConfig::restore_from`], [`TemplateCache`]): a VM saved with its
//!   memory in a shared file is restored copy-on-write from it, without
//!   booting; the cache builds one per VM shape on first use;
//! - **QMP** ([`Qmp`]): handshake, status, powerdown, quit, events, and
//!   descriptors passed with a command (`getfd`), which templates migrate
//!   through.
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
mod catalogue_edit;
mod config;
mod cpio;
mod error;
mod floor;
mod hypervisor;
mod initramfs;
mod kernel;
mod lease;
mod qemu;
mod qmp;
mod supervise;
mod template;
mod vsock;

pub use accel::Accelerator;
pub use catalogue::KernelCatalogue;
pub use catalogue_edit::{NewKernel, image_release};
pub use config::{
    CacheMode, DEFAULT_CONSOLE_MAX_BYTES, DEFAULT_SHARE_HELPER, DEFAULT_VIRTIOFSD, DiskBus,
    DiskConfig, DiskFormat, MAX_SHARES, MIN_MEMORY_MIB, MemoryBacking, NicConfig, SHARE_TAG,
    ShareConfig, ShareTransport, VmConfig,
};
pub use containerization_netlink::MacAddress;
pub use error::VmmError;
pub use floor::{floor_initramfs, poweroff_init};
pub use hypervisor::{Hypervisor, StopOutcome, VirtualMachine};
pub use initramfs::{InitramfsFile, WANTED_MODULES, build_initramfs, build_initramfs_with};
pub use kernel::{Kernel, KernelImageFormat};
pub use qemu::{AttachedDisk, MAX_ATTACHED_DISKS, Qemu, QemuUsers, QemuVm};
pub use qmp::{Qmp, QmpEvent, QmpStatus};
pub use template::{Origin, TemplateCache, TemplateUsage, template_mac};
pub use vsock::{CidLease, FIRST_GUEST_CID, HostListener, VsockBackend, VsockEndpoint};

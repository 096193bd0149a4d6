//! What to boot: the VM configuration and its validation.
//!
//! Everything here is checked by [`VmConfig::validate`] before any process
//! starts, so a typo in a disk path or a memory size is an error that names
//! the field, not a QEMU that dies half-way through its start.

use std::fmt;
use std::path::{Path, PathBuf};

use containerization_netlink::MacAddress;

use crate::{Accelerator, Kernel, QemuUsers, VmmError, VsockBackend};

/// The smallest guest memory that boots vminitd with either kernel.
pub const MIN_MEMORY_MIB: u32 = 64;

/// The image format of a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    /// A plain image, byte for byte the guest's block device.
    Raw,
    /// A qcow2 image, usually an overlay backed by a raw base.
    Qcow2,
}

impl fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        })
    }
}

/// How QEMU caches a disk's data on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// The host page cache, flushed when the guest flushes (QEMU's default).
    #[default]
    Writeback,
    /// No host page cache (`O_DIRECT`); flushes still reach the disk.
    None,
    /// Never flush: fast and unsafe, for throwaway disks.
    Unsafe,
}

impl fmt::Display for CacheMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CacheMode::Writeback => "writeback",
            CacheMode::None => "none",
            CacheMode::Unsafe => "unsafe",
        })
    }
}

/// Where a disk sits in the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskBus {
    /// Its own virtio-blk device (one of `microvm`'s 8 virtio-mmio slots):
    /// the virtio disks are `/dev/vda`, `/dev/vdb`, ... in their order.
    #[default]
    Virtio,
    /// A `scsi-hd` on the VM's virtio-scsi controller (one slot for up to
    /// [`crate::MAX_ATTACHED_DISKS`] disks): the SCSI disks take targets
    /// 0, 1, ... in their order, and the guest finds each by its target
    /// (the agent's `FindDisk`), as it finds disks attached later.
    Scsi,
}

/// One disk of a VM, on the bus its [`DiskConfig::bus`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The image file.
    pub path: PathBuf,
    /// Its format.
    pub format: DiskFormat,
    /// Whether the guest may only read it.
    pub read_only: bool,
    /// The host cache mode.
    pub cache: CacheMode,
    /// Whether discards from the guest free space in the image file.
    pub discard: bool,
    /// Its bus.
    pub bus: DiskBus,
}

impl DiskConfig {
    /// A writable disk whose format is read from its first bytes (qcow2
    /// images start with `QFI\xfb`), with discard on.
    ///
    /// ```no_run
    /// use containerization_vmm::{DiskConfig, DiskFormat};
    ///
    /// let disk = DiskConfig::new("/var/lib/containerization/rootfs/base.ext4");
    /// assert_eq!(disk.format, DiskFormat::Raw);
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let format = match sniff_qcow2(&path) {
            true => DiskFormat::Qcow2,
            false => DiskFormat::Raw,
        };
        Self {
            path,
            format,
            read_only: false,
            cache: CacheMode::default(),
            discard: true,
            bus: DiskBus::Virtio,
        }
    }

    /// The same disk, read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// The same disk, on the VM's virtio-scsi controller.
    pub fn on_scsi(mut self) -> Self {
        self.bus = DiskBus::Scsi;
        self
    }
}

/// Whether `path` starts with the qcow2 magic.
fn sniff_qcow2(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"QFI\xfb")
}

/// One virtio-net interface backed by a host tap device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicConfig {
    /// The tap device's name on the host (it must exist).
    pub tap: String,
    /// The guest interface's MAC address.
    pub mac: MacAddress,
}

/// The most host paths one VM shares (see [`ShareConfig`]).
pub const MAX_SHARES: usize = 64;

/// The 9p mount tag of a VM's shared host paths: share `i` of
/// [`VmConfig::shares`] is the entry named `i` at the device's root.
pub const SHARE_TAG: &str = "cz.shares";

/// A host folder or file shared with the guest over 9p: one
/// `virtio-9p-device` (tag [`SHARE_TAG`]) carries all of a VM's shares.
///
/// QEMU never opens a shared file: the device is served by a
/// `virtfs-proxy-helper` that runs as root, in a mount namespace of its
/// own where each share is a bind mount of its source (read-only for a
/// read-only share), and that chroots into them, so no path the guest
/// names, symlinks included, resolves outside them. Whether a VM has
/// shares is in a template's key, their number and sources are not: a VM
/// restored from a template gets its own paths behind the same device.
///
/// ```
/// use containerization_vmm::{SHARE_TAG, ShareConfig};
///
/// let share = ShareConfig::new("/srv/site").read_only();
/// assert!(share.read_only);
/// assert_eq!(SHARE_TAG, "cz.shares");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareConfig {
    /// The host folder or file (absolute).
    pub source: PathBuf,
    /// The guest may only read it; the host side refuses writes.
    pub read_only: bool,
}

impl ShareConfig {
    /// A writable share of `source`.
    pub fn new(source: impl Into<PathBuf>) -> Self {
        Self {
            source: source.into(),
            read_only: false,
        }
    }

    /// The same share, read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
}

/// How a VM's shares reach its guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShareTransport {
    /// 9p over virtio (`virtio-9p-device`, fstype `9p`): it migrates while
    /// unmounted, so VMs with shares start from templates. The default.
    #[default]
    NineP,
    /// virtio-fs (`vhost-user-fs-device` served by `virtiofsd`, fstype
    /// `virtiofs`): it does not migrate, so such a VM always boots cold.
    /// Opt in with `CZ_SHARES=virtiofs`.
    VirtioFs,
}

impl ShareTransport {
    /// The guest's file system type for it.
    pub fn fstype(self) -> &'static str {
        match self {
            ShareTransport::NineP => "9p",
            ShareTransport::VirtioFs => "virtiofs",
        }
    }
}

/// Where guest memory lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MemoryBacking {
    /// An anonymous shared memfd (what vhost-user devices need).
    #[default]
    Memfd,
    /// A file, mapped shared (the guest's writes land in it: a template being
    /// made) or private (copy on write: a VM restored from a template, whose
    /// pages the host shares until the guest writes them).
    File {
        /// The memory file.
        path: PathBuf,
        /// Shared or private mapping.
        shared: bool,
    },
}

/// Everything a VM is made from.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Virtual CPUs (1 to 64).
    pub cpus: u32,
    /// Guest memory in MiB (at least [`MIN_MEMORY_MIB`]).
    pub memory_mib: u32,
    /// The kernel.
    pub kernel: Kernel,
    /// The initramfs (see [`crate::build_initramfs`]).
    pub initramfs: PathBuf,
    /// Words added to the kernel command line (later words win).
    pub cmdline: Vec<String>,
    /// Disks, attached as virtio-blk in order (`/dev/vda`, ...).
    pub disks: Vec<DiskConfig>,
    /// Network interfaces, attached as virtio-net in order (`eth0`, ...).
    pub nics: Vec<NicConfig>,
    /// Host paths shared over one 9p device, in order (see [`ShareConfig`]).
    pub shares: Vec<ShareConfig>,
    /// How the shares reach the guest; 9p unless `CZ_SHARES=virtiofs`.
    pub share_transport: ShareTransport,
    /// The 9p proxy helper that serves the shares over 9p.
    pub share_helper: PathBuf,
    /// The virtio-fs daemon that serves them over virtio-fs.
    pub virtiofsd: PathBuf,
    /// How the host reaches the guest's vsock.
    pub vsock: VsockBackend,
    /// A virtio-balloon with free page reporting, so memory the guest frees
    /// goes back to the host.
    pub balloon: bool,
    /// A private folder for the VM's sockets.
    pub run_dir: PathBuf,
    /// Where the serial console goes; `run_dir/console.log` when unset.
    pub console_log: Option<PathBuf>,
    /// The size past which the console log is cut (it lies in RAM under
    /// `/run`): its first quarter (the boot) and last half stay, with a line
    /// marking the cut between them. 1 MiB unless set; at least 4 KiB.
    pub console_max_bytes: u64,
    /// The accelerator.
    pub accel: Accelerator,
    /// The `qemu-system-x86_64` binary.
    pub qemu: PathBuf,
    /// Where guest memory lives.
    pub memory: MemoryBacking,
    /// Resume from this device-state file (written by
    /// [`crate::QemuVm::snapshot`]) instead of booting. The memory must be
    /// the snapshot's memory file, and every device must be configured as
    /// it was when the snapshot was taken.
    pub restore_from: Option<PathBuf>,
    /// Confine QEMU with its seccomp sandbox (`-sandbox on` with obsolete
    /// system calls, privilege changes, process spawning and resource
    /// control denied). On unless `CZ_QEMU_SANDBOX=off` is in the
    /// environment; a QEMU built without seccomp then fails to start with
    /// [`VmmError::NoSandbox`] rather than run unconfined.
    pub sandbox: bool,
    /// Start QEMU in a mount namespace of its own that shows only this
    /// VM's files (see the `qemu::jail` module), when the caller is root.
    /// On unless `CZ_QEMU_JAIL=off` is in the environment.
    pub jail: bool,
    /// A virtio-scsi controller (one virtio-mmio slot), so disks can be
    /// given to the VM and taken from it while it runs
    /// ([`crate::QemuVm::attach_disk`]): `microvm`'s virtio-mmio bus has no
    /// hotplug, a SCSI bus does. The guest's scan of the empty controller
    /// costs a cold boot about 0.1 s under TCG, which templates pay once
    /// (`scsi_mod.scan=manual` would skip it, but then the guest ignores
    /// the disks announced later too). Off unless set.
    pub attachable_disks: bool,
    /// The unprivileged users QEMU runs as inside its jail, when the caller
    /// is root (see [`QemuUsers`]): by default this host's `cz-qemu`
    /// account and its `/etc/subuid` range, unless `CZ_QEMU_USER=off` is in
    /// the environment; `None` runs QEMU as the caller.
    pub qemu_users: Option<QemuUsers>,
}

/// QEMU's users by default: this host's `cz-qemu` account, for a root
/// caller, unless `CZ_QEMU_USER=off`.
fn qemu_users_by_default() -> Option<QemuUsers> {
    let off = std::env::var("CZ_QEMU_USER").as_deref() == Ok("off");
    match off || !rustix::process::geteuid().is_root() {
        true => None,
        false => QemuUsers::from_system(),
    }
}

/// Whether QEMU is jailed by default: yes, unless `CZ_QEMU_JAIL=off`.
fn jail_by_default() -> bool {
    std::env::var("CZ_QEMU_JAIL").as_deref() != Ok("off")
}

/// Debian's QEMU 9p proxy helper, the default [`VmConfig::share_helper`].
pub const DEFAULT_SHARE_HELPER: &str = "/usr/lib/qemu/virtfs-proxy-helper";

/// Debian's virtio-fs daemon (QEMU 7.2's), the default
/// [`VmConfig::virtiofsd`].
pub const DEFAULT_VIRTIOFSD: &str = "/usr/lib/qemu/virtiofsd";

/// Shares travel over 9p unless `CZ_SHARES=virtiofs`.
fn share_transport_by_default() -> ShareTransport {
    match std::env::var("CZ_SHARES").as_deref() {
        Ok("virtiofs") => ShareTransport::VirtioFs,
        _ => ShareTransport::NineP,
    }
}

/// The default of [`VmConfig::console_max_bytes`].
pub const DEFAULT_CONSOLE_MAX_BYTES: u64 = 1024 * 1024;

/// Whether QEMU is sandboxed by default: yes, unless `CZ_QEMU_SANDBOX=off`.
fn sandbox_by_default() -> bool {
    std::env::var("CZ_QEMU_SANDBOX").as_deref() != Ok("off")
}

impl VmConfig {
    /// One CPU, 256 MiB, the balloon on, no disks or interfaces, the
    /// detected accelerator, `qemu-system-x86_64` from `PATH` and its
    /// sandbox on (see [`VmConfig::sandbox`]).
    pub fn new(
        kernel: Kernel,
        initramfs: impl Into<PathBuf>,
        run_dir: impl Into<PathBuf>,
        vsock: VsockBackend,
    ) -> Self {
        Self {
            cpus: 1,
            memory_mib: 256,
            kernel,
            initramfs: initramfs.into(),
            cmdline: Vec::new(),
            disks: Vec::new(),
            nics: Vec::new(),
            shares: Vec::new(),
            share_transport: share_transport_by_default(),
            share_helper: PathBuf::from(DEFAULT_SHARE_HELPER),
            virtiofsd: PathBuf::from(DEFAULT_VIRTIOFSD),
            vsock,
            balloon: true,
            run_dir: run_dir.into(),
            console_log: None,
            console_max_bytes: DEFAULT_CONSOLE_MAX_BYTES,
            accel: Accelerator::detect_and_log(),
            qemu: PathBuf::from("qemu-system-x86_64"),
            memory: MemoryBacking::Memfd,
            restore_from: None,
            sandbox: sandbox_by_default(),
            jail: jail_by_default(),
            attachable_disks: false,
            qemu_users: qemu_users_by_default(),
        }
    }

    /// Whether the VM has a virtio-scsi controller: for disks attached
    /// later, or for disks on [`DiskBus::Scsi`].
    pub fn has_scsi_controller(&self) -> bool {
        self.attachable_disks || self.disks.iter().any(|d| d.bus == DiskBus::Scsi)
    }

    /// How many of its disks are on the SCSI controller (they take targets
    /// 0 to n-1).
    pub fn scsi_disk_count(&self) -> usize {
        self.disks.iter().filter(|d| d.bus == DiskBus::Scsi).count()
    }

    /// The console log file.
    pub fn console_path(&self) -> PathBuf {
        self.console_log
            .clone()
            .unwrap_or_else(|| self.run_dir.join("console.log"))
    }

    /// Checks the configuration before anything starts; the error names the
    /// field and the value.
    pub fn validate(&self) -> Result<(), VmmError> {
        let invalid = |message: String| Err(VmmError::InvalidConfig { message });
        if self.console_max_bytes < 4096 {
            return invalid(format!(
                "console_max_bytes is {}; the console log needs at least 4096 bytes",
                self.console_max_bytes
            ));
        }
        if !(1..=64).contains(&self.cpus) {
            return invalid(format!("cpus must be 1 to 64, not {}", self.cpus));
        }
        if self.memory_mib < MIN_MEMORY_MIB {
            return invalid(format!(
                "memory of {} MiB is too little: a guest needs at least {MIN_MEMORY_MIB} MiB",
                self.memory_mib
            ));
        }
        if !self.kernel.image().is_file() {
            return invalid(format!(
                "kernel image {} does not exist",
                self.kernel.image().display()
            ));
        }
        if !self.initramfs.is_file() {
            return invalid(format!(
                "initramfs {} does not exist",
                self.initramfs.display()
            ));
        }
        for disk in &self.disks {
            if !disk.path.is_file() {
                return invalid(format!("disk {} does not exist", disk.path.display()));
            }
            if disk.path.to_string_lossy().contains(',') {
                return invalid(format!(
                    "disk path {} contains a comma, which QEMU's option syntax cannot carry",
                    disk.path.display()
                ));
            }
        }
        if self.scsi_disk_count() > usize::from(crate::MAX_ATTACHED_DISKS) {
            return invalid(format!(
                "{} disks on the SCSI controller; it has {} targets",
                self.scsi_disk_count(),
                crate::MAX_ATTACHED_DISKS
            ));
        }
        if self.shares.len() > MAX_SHARES {
            return invalid(format!(
                "{} shared folders asked for; a VM can have at most {MAX_SHARES}",
                self.shares.len()
            ));
        }
        for share in &self.shares {
            if !share.source.is_absolute() {
                return invalid(format!(
                    "shared folder {} is not an absolute path",
                    share.source.display()
                ));
            }
            if std::fs::metadata(&share.source).is_err() {
                return invalid(format!(
                    "shared folder {} does not exist",
                    share.source.display()
                ));
            }
        }
        let helper = match self.share_transport {
            ShareTransport::NineP => &self.share_helper,
            ShareTransport::VirtioFs => &self.virtiofsd,
        };
        if !self.shares.is_empty()
            && self.share_transport == ShareTransport::VirtioFs
            && self.memory != MemoryBacking::Memfd
        {
            return invalid(
                "virtio-fs shares need shared anonymous guest memory; a VM restored from a \
                 template cannot have them"
                    .to_owned(),
            );
        }
        if !self.shares.is_empty()
            && self.share_transport == ShareTransport::NineP
            && self.kernel.has_9p() == Some(false)
        {
            return invalid(format!(
                "shared folders are 9p file systems, and kernel {} has no 9p over virtio \
                 (CONFIG_9P_FS, CONFIG_NET_9P_VIRTIO): use the kernel `make kernel` builds",
                self.kernel.name()
            ));
        }
        if !self.shares.is_empty() && !helper.is_file() {
            return invalid(format!(
                "shared folders need {}, which is missing (Debian's qemu-system-common \
                 has it): run scripts/setup",
                helper.display()
            ));
        }
        for (i, nic) in self.nics.iter().enumerate() {
            if nic.tap.is_empty() || nic.tap.len() > 15 || nic.tap.contains([',', '/', ' ']) {
                return invalid(format!(
                    "network interface {i}: {:?} is not a valid tap device name",
                    nic.tap
                ));
            }
            if !Path::new("/sys/class/net").join(&nic.tap).exists() {
                return invalid(format!(
                    "network interface {i}: tap device {} does not exist on the host",
                    nic.tap
                ));
            }
        }
        if let MemoryBacking::File { path, shared } = &self.memory {
            if path.to_string_lossy().contains([',', '\'']) {
                return invalid(format!(
                    "memory file {} contains a comma or a quote, which QEMU's option syntax cannot carry",
                    path.display()
                ));
            }
            if !shared && matches!(self.vsock, VsockBackend::VhostUser { .. }) {
                return invalid(
                    "a vhost-user vsock device needs shared guest memory; a private memory file \
                     (a restored VM) needs the serial transport"
                        .to_owned(),
                );
            }
        }
        if let Some(state) = &self.restore_from {
            if !state.is_file() {
                return invalid(format!("snapshot state {} does not exist", state.display()));
            }
            match &self.memory {
                MemoryBacking::File { path, .. } if path.is_file() => {}
                _ => {
                    return invalid(
                        "a restored VM's memory must be its snapshot's memory file".to_owned(),
                    );
                }
            }
        }
        if let Some(word) = self
            .cmdline
            .iter()
            .find(|w| w.contains(char::is_whitespace))
        {
            return invalid(format!(
                "kernel command line word {word:?} contains white space; pass separate words"
            ));
        }
        Ok(())
    }
}

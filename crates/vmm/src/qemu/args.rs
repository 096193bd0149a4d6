//! The QEMU command line for a [`VmConfig`]: a pure function, so what QEMU
//! is asked to do can be read (and tested) without starting it.
//!
//! - `microvm` with virtio-mmio devices. Under TCG it needs the PIT, PIC and
//!   RTC, and the kernel the TSC frequency, or boots hang now and then (see
//!   shared/FACTS.md); with KVM the minimal machine is enough.
//! - `-nodefaults -no-user-config`, and `-no-reboot`: the guest powers off by
//!   rebooting, which makes QEMU exit.
//! - Guest RAM in a shared memfd, which vhost-user devices need.
//! - QEMU's seccomp sandbox, unless the configuration turns it off: QEMU
//!   parses guest-controlled device state as root, and the filter takes
//!   away what an exploit would want next (spawning a shell, changing
//!   privileges, old system calls, CPU and scheduling control).
//! - QEMU opens by name only the kernel, the initramfs and a memory file:
//!   disks, the console log, taps, the agent's and QMP's sockets and the
//!   vhost device are descriptors its owner opened (see `handoff`), QMP
//!   and the agent's serial port on socket pairs whose other ends only the
//!   owner holds.
//! - Host paths are one 9p device whose `proxy` driver asks a helper (see
//!   `share`): QEMU opens no shared file.
//! - A kernel without ACPI (ours) finds virtio-mmio devices on its command
//!   line, where QEMU puts them only with `acpi=off`; a stock kernel reads
//!   the ACPI tables.

use std::ffi::OsString;

use super::console::option_value;
use super::handoff::Handoff;
use crate::{Accelerator, DiskFormat, Kernel, MemoryBacking, VmConfig, VsockBackend};

/// QEMU's seccomp sandbox: its default deny list plus every optional one.
/// `spawn=deny` is why templates pass a descriptor (`fd:`) to migration
/// instead of an `exec:` command.
pub(crate) const SANDBOX: &str =
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// How the VM's vsock device is wired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VsockDevice {
    /// `vhost-vsock-device` with this guest CID (the host kernel's back
    /// end), on the handed-off `/dev/vhost-vsock`.
    Kernel { cid: u32 },
    /// `vhost-user-vsock-device` on the handed-off connection to the helper.
    VhostUser,
    /// No vsock: a virtio-serial port named `cz.agent` whose chardev is the
    /// handed-off end of the host proxy's socket pair.
    Serial,
}

/// The host's TSC frequency in kHz, from `/proc/cpuinfo`.
pub(crate) fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0) as u64)
}

/// Whether the kernel's recorded configuration enables ACPI (assumed when
/// the entry carries no configuration, as for most stock kernels).
fn kernel_has_acpi(kernel: &Kernel) -> bool {
    kernel
        .config()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .is_none_or(|config| config.lines().any(|l| l == "CONFIG_ACPI=y"))
}

/// The kernel command line: ours first, then the configuration's words, so
/// a caller can override any of ours (the kernel takes the last value).
pub(crate) fn kernel_cmdline(config: &VmConfig) -> String {
    let mut words = vec![
        "console=ttyS0".to_owned(),
        "panic=-1".to_owned(),
        "reboot=t".to_owned(),
        "rdinit=/init".to_owned(),
        "quiet".to_owned(),
        // Every RCU grace period expedited, as the kernel does anyway until
        // init starts. A container's start waits on several (moving the
        // launcher into its cgroup, the launcher's mounts, network
        // configuration); a normal grace period costs ~10 ms of a TCG
        // guest's only vCPU, an expedited one a fraction. Measured: 45 ms
        // less per `cctl run`, the boot floor unchanged.
        "rcupdate.rcu_expedited=1".to_owned(),
    ];
    if config.accel == Accelerator::Tcg
        && let Some(khz) = host_tsc_khz()
    {
        words.push(format!("tsc_early_khz={khz}"));
    }
    if config.accel == Accelerator::Tcg {
        // TCG's TSC is one monotonic count for every vCPU, but the kernel's
        // boot-time sync check finds warps in it and drops the TSC; the
        // only clocksource left is jiffies, with which the idle tick never
        // stops. Measured on idle containers: 6.9 % of a host core each,
        // 0.1 % with the TSC kept.
        words.push("tsc=reliable".to_owned());
        // A tickless idle also needs a per-CPU timer: `noapictimer`, which
        // older optimized-kernel entries ask for (it saves 0.2 s of APIC
        // timer calibration per cold boot), leaves only the PIT, whose tick
        // is periodic. VM templates pay that calibration once.
        words.extend(
            config
                .kernel
                .tcg_cmdline()
                .into_iter()
                .filter(|word| word != "noapictimer"),
        );
    }
    if config.vsock == VsockBackend::Serial {
        // An unknown `key=value` reaches init as an environment variable.
        words.push("VMINITD_AGENT=serial".to_owned());
    }
    words.extend(config.cmdline.iter().cloned());
    words.join(" ")
}

/// The arguments after the QEMU binary; `handoff` holds the numbers of the
/// descriptors QEMU inherits.
pub(crate) fn qemu_args(
    config: &VmConfig,
    vsock: &VsockDevice,
    handoff: &Handoff,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |words: &[&str]| args.extend(words.iter().map(OsString::from));
    for (fd, set) in &handoff.add_fds {
        push(&["-add-fd", &format!("fd={fd},set={set}")]);
    }
    let memory = format!("{}M", config.memory_mib);
    let mut machine = match config.accel {
        Accelerator::Tcg => "microvm,pit=on,pic=on,rtc=on,memory-backend=mem".to_owned(),
        Accelerator::Kvm => "microvm,memory-backend=mem".to_owned(),
    };
    if !kernel_has_acpi(&config.kernel) {
        machine.push_str(",acpi=off");
    }
    push(&["-M", &machine, "-accel", &config.accel.to_string()]);
    if config.accel == Accelerator::Kvm {
        push(&["-cpu", "host"]);
    }
    push(&["-smp", &config.cpus.to_string(), "-m", &memory]);
    let backend = match &config.memory {
        MemoryBacking::Memfd => format!("memory-backend-memfd,id=mem,size={memory},share=on"),
        MemoryBacking::File { path, shared } => format!(
            "memory-backend-file,id=mem,size={memory},mem-path={},share={}",
            option_value(path),
            if *shared { "on" } else { "off" }
        ),
    };
    push(&["-object", &backend]);
    push(&["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
    // Named after its run folder (a container's id), so `ps` tells whose
    // VM a QEMU is: its disks and sockets are descriptors, not paths.
    if let Some(name) = config.run_dir.file_name() {
        push(&["-name", &option_value(std::path::Path::new(name))]);
    }
    if config.sandbox {
        push(&["-sandbox", SANDBOX]);
    }
    // Appended (O_APPEND), so the owner can cut the file under its cap
    // while QEMU writes (see `console`).
    push(&[
        "-chardev",
        &format!(
            "file,id=console0,path=/dev/fdset/{},append=on",
            handoff.console_set
        ),
    ]);
    push(&["-serial", "chardev:console0"]);
    // QMP on an inherited, already connected socket: there is no socket
    // path anyone else could connect to, and QMP is root on the host.
    push(&["-chardev", &format!("socket,id=qmp0,fd={}", handoff.qmp)]);
    push(&["-mon", "chardev=qmp0,mode=control"]);
    push(&["-kernel", &config.kernel.image().to_string_lossy()]);
    push(&["-initrd", &config.initramfs.to_string_lossy()]);
    push(&["-append", &kernel_cmdline(config)]);
    let agent = handoff.agent.unwrap_or(-1);
    match vsock {
        VsockDevice::Kernel { cid } => {
            let mut device = format!("vhost-vsock-device,guest-cid={cid}");
            if let Some(fd) = handoff.vhost {
                device.push_str(&format!(",vhostfd={fd}"));
            }
            push(&["-device", &device]);
        }
        VsockDevice::VhostUser => {
            push(&["-chardev", &format!("socket,id=vsock0,fd={agent}")]);
            push(&["-device", "vhost-user-vsock-device,chardev=vsock0"]);
        }
        VsockDevice::Serial => {
            push(&["-chardev", &format!("socket,id=agent0,fd={agent}")]);
            // Two ports: 0 is the console's, 1 ours. Every port costs the
            // guest two virtqueues, and the default is 31.
            push(&["-device", "virtio-serial-device,max_ports=2"]);
            push(&[
                "-device",
                &format!(
                    "virtserialport,chardev=agent0,nr=1,name={}",
                    containerization_agent::mux::SERIAL_PORT_NAME
                ),
            ]);
        }
    }
    if config.has_scsi_controller() {
        push(&[
            "-device",
            &format!("virtio-scsi-device,id={}", super::attach::CONTROLLER),
        ]);
    }
    let mut scsi_target = 0;
    for (i, (disk, fds)) in config.disks.iter().zip(&handoff.disks).enumerate() {
        let format = match disk.format {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        };
        // An error writing or reading the image (the host's disk is full)
        // goes to the guest as an I/O error; QEMU's default pauses the whole
        // VM on a full disk, and every command on the container would hang.
        let mut drive = format!(
            "id=disk{i},file=/dev/fdset/{},format={format},if=none,cache={},werror=report,rerror=report",
            fds.set, disk.cache
        );
        if let Some(set) = fds.backing_set {
            // The overlay names its base by path, which QEMU would resolve
            // against `/dev/fdset/`; the base's format stays the header's.
            drive.push_str(&format!(",backing.file.filename=/dev/fdset/{set}"));
        }
        if disk.read_only {
            drive.push_str(",readonly=on");
        }
        if disk.discard {
            drive.push_str(",discard=unmap,detect-zeroes=unmap");
        }
        push(&["-drive", &drive]);
        match disk.bus {
            crate::DiskBus::Virtio => {
                push(&["-device", &format!("virtio-blk-device,drive=disk{i}")]);
            }
            crate::DiskBus::Scsi => {
                push(&[
                    "-device",
                    &format!(
                        "scsi-hd,bus={}.0,scsi-id={scsi_target},lun=0,drive=disk{i}",
                        super::attach::CONTROLLER
                    ),
                ]);
                scsi_target += 1;
            }
        }
    }
    for (i, (nic, fd)) in config.nics.iter().zip(&handoff.taps).enumerate() {
        push(&["-netdev", &format!("tap,id=net{i},fd={fd}")]);
        push(&[
            "-device",
            &format!("virtio-net-device,netdev=net{i},mac={}", nic.mac),
        ]);
    }
    match (handoff.shares, config.share_transport) {
        (Some(fd), crate::ShareTransport::NineP) => {
            // Each share is a mount in the helper's export, so its files may
            // come from several host devices, whose inode numbers can meet in
            // the guest: QEMU 7.2's proxy driver has no `multidevs=remap`.
            push(&["-fsdev", &format!("proxy,id=fs0,sock_fd={fd}")]);
            push(&[
                "-device",
                &format!("virtio-9p-device,fsdev=fs0,mount_tag={}", crate::SHARE_TAG),
            ]);
        }
        (Some(fd), crate::ShareTransport::VirtioFs) => {
            // virtiofsd's libvhost-user serves only modern (virtio 1.0)
            // devices, and microvm's virtio-mmio transports are legacy
            // unless told otherwise.
            push(&["-global", "virtio-mmio.force-legacy=off"]);
            push(&["-chardev", &format!("socket,id=vfs0,fd={fd}")]);
            push(&[
                "-device",
                &format!("vhost-user-fs-device,chardev=vfs0,tag={}", crate::SHARE_TAG),
            ]);
        }
        (None, _) => {}
    }
    if config.restore_from.is_some() {
        // The state is loaded over QMP once the migration capabilities are set.
        push(&["-incoming", "defer"]);
    }
    if config.balloon {
        // Free page reporting discards reported pages, and QEMU discards
        // file-backed memory by punching holes in the file: in a template's
        // memory file, shared by every VM restored from it, that would zero
        // pages under them. So only anonymous memory reports free pages.
        let reporting = if config.memory == MemoryBacking::Memfd {
            "on"
        } else {
            "off"
        };
        push(&[
            "-device",
            &format!(
                "virtio-balloon-device,id=balloon0,free-page-reporting={reporting},deflate-on-oom=on"
            ),
        ]);
    }
    args
}

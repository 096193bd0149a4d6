//! The QEMU `microvm` back end: one QEMU process and one
//! `vhost-device-vsock` helper per VM, both killed with their owner.
//!
//! Under TCG the microvm machine needs the PIT, PIC and RTC, and the kernel
//! needs the TSC frequency on its command line (see shared/FACTS.md). The
//! guest shuts down by rebooting; `-no-reboot` turns that into QEMU exiting.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::io_at;
use crate::{Accelerator, Kernel, VmmError};

/// The guest context id: each VM has its own helper, so every guest can be 3.
const GUEST_CID: u32 = 3;

/// What to boot.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Virtual CPUs (1 to 64).
    pub cpus: u32,
    /// Guest memory in MiB (at least 64).
    pub memory_mib: u32,
    /// The kernel.
    pub kernel: Kernel,
    /// The initramfs (see [`crate::build_initramfs`]).
    pub initramfs: PathBuf,
    /// Words added to the kernel command line.
    pub cmdline: Vec<String>,
    /// Raw disk images, attached as virtio-blk in order (`/dev/vda`, ...).
    pub disks: Vec<PathBuf>,
    /// A private folder for the VM's sockets and console log.
    pub run_dir: PathBuf,
    /// The accelerator.
    pub accel: Accelerator,
    /// The `qemu-system-x86_64` binary.
    pub qemu: PathBuf,
    /// The `vhost-device-vsock` binary.
    pub vhost_vsock: PathBuf,
}

impl VmConfig {
    /// Checks the configuration before anything starts.
    pub fn validate(&self) -> Result<(), VmmError> {
        let invalid = |message: String| Err(VmmError::InvalidConfig { message });
        if !(1..=64).contains(&self.cpus) {
            return invalid(format!("cpus must be 1 to 64, not {}", self.cpus));
        }
        if self.memory_mib < 64 {
            return invalid(format!(
                "memory of {} MiB is too little: a guest needs at least 64 MiB",
                self.memory_mib
            ));
        }
        for (what, path) in [
            ("kernel image", self.kernel.image()),
            ("initramfs", &self.initramfs),
        ] {
            if !path.is_file() {
                return invalid(format!("{what} {} does not exist", path.display()));
            }
        }
        for disk in &self.disks {
            if !disk.is_file() {
                return invalid(format!("disk {} does not exist", disk.display()));
            }
        }
        Ok(())
    }
}

/// A running VM. Dropping it kills QEMU and its helper.
#[derive(Debug)]
pub struct VirtualMachine {
    qemu: Child,
    helper: Child,
    run_dir: PathBuf,
}

/// Makes the child die with the thread that spawned it.
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            Ok(())
        });
    }
}

/// Whether the kernel's recorded configuration enables ACPI (assumed when
/// the entry carries no configuration, as for most stock kernels).
fn kernel_has_acpi(kernel: &Kernel) -> bool {
    kernel
        .config()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .is_none_or(|config| config.lines().any(|l| l == "CONFIG_ACPI=y"))
}

/// The host's TSC frequency in kHz, from `/proc/cpuinfo`.
fn host_tsc_khz() -> Option<u64> {
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

impl VirtualMachine {
    /// Starts the vsock helper and QEMU. The guest boots in the background:
    /// reach its agent through [`VirtualMachine::vsock_socket`].
    pub fn start(config: &VmConfig) -> Result<Self, VmmError> {
        config.validate()?;
        std::fs::create_dir_all(&config.run_dir).map_err(io_at(&config.run_dir))?;
        let vhost_socket = config.run_dir.join("vhost-vsock.sock");
        let vsock_socket = config.run_dir.join("vsock.sock");
        let _ = std::fs::remove_file(&vhost_socket);
        let _ = std::fs::remove_file(&vsock_socket);
        let mut helper = Command::new(&config.vhost_vsock);
        helper
            .arg("--guest-cid")
            .arg(GUEST_CID.to_string())
            .arg("--socket")
            .arg(&vhost_socket)
            .arg("--uds-path")
            .arg(&vsock_socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut helper);
        let mut helper = helper.spawn().map_err(|source| VmmError::Spawn {
            program: config.vhost_vsock.clone(),
            source,
        })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !vhost_socket.exists() {
            if Instant::now() > deadline || helper.try_wait().ok().flatten().is_some() {
                let _ = helper.kill();
                let _ = helper.wait();
                return Err(VmmError::HelperFailed {
                    program: config.vhost_vsock.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }

        let console = config.run_dir.join("console.log");
        let mut cmdline = vec![
            "console=ttyS0".to_owned(),
            "panic=-1".to_owned(),
            "reboot=t".to_owned(),
            "rdinit=/init".to_owned(),
            "quiet".to_owned(),
        ];
        if config.accel == Accelerator::Tcg
            && let Some(khz) = host_tsc_khz()
        {
            cmdline.push(format!("tsc_early_khz={khz}"));
        }
        cmdline.extend(config.cmdline.iter().cloned());
        let memory = format!("{}M", config.memory_mib);
        let mut machine = match config.accel {
            Accelerator::Tcg => "microvm,pit=on,pic=on,rtc=on,memory-backend=mem".to_owned(),
            Accelerator::Kvm => "microvm,memory-backend=mem".to_owned(),
        };
        // A kernel without ACPI (ours) finds the virtio-mmio devices on its
        // command line, where QEMU puts them only with ACPI off; a stock
        // kernel finds them in the ACPI tables.
        if !kernel_has_acpi(&config.kernel) {
            machine.push_str(",acpi=off");
        }
        let mut qemu = Command::new(&config.qemu);
        qemu.args(["-M", &machine, "-accel", &config.accel.to_string()])
            .args(["-smp", &config.cpus.to_string(), "-m", &memory])
            .args([
                "-object",
                &format!("memory-backend-memfd,id=mem,size={memory},share=on"),
            ])
            .args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-kernel")
            .arg(config.kernel.image())
            .arg("-initrd")
            .arg(&config.initramfs)
            .args(["-append", &cmdline.join(" ")])
            .arg("-chardev")
            .arg(format!("socket,id=vsock0,path={}", vhost_socket.display()))
            .args(["-device", "vhost-user-vsock-device,chardev=vsock0"]);
        for (i, disk) in config.disks.iter().enumerate() {
            qemu.arg("-drive")
                .arg(format!(
                    "id=disk{i},file={},format=raw,if=none",
                    disk.display()
                ))
                .args(["-device", &format!("virtio-blk-device,drive=disk{i}")]);
        }
        qemu.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_parent(&mut qemu);
        let qemu = match qemu.spawn() {
            Ok(child) => child,
            Err(source) => {
                let _ = helper.kill();
                let _ = helper.wait();
                return Err(VmmError::Spawn {
                    program: config.qemu.clone(),
                    source,
                });
            }
        };
        Ok(Self {
            qemu,
            helper,
            run_dir: config.run_dir.clone(),
        })
    }

    /// The hybrid vsock socket (`CONNECT <port>\n`) that reaches the guest.
    pub fn vsock_socket(&self) -> PathBuf {
        self.run_dir.join("vsock.sock")
    }

    /// The file holding the guest's serial console.
    pub fn console_log(&self) -> PathBuf {
        self.run_dir.join("console.log")
    }

    /// The last `lines` lines of the console, for error messages.
    pub fn console_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.console_log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// QEMU's pid.
    pub fn pid(&self) -> u32 {
        self.qemu.id()
    }

    /// The helper's pid.
    pub fn helper_pid(&self) -> u32 {
        self.helper.id()
    }

    /// Whether QEMU has exited, and how.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.qemu.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for QEMU to exit (after the guest shut down).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for VirtualMachine {
    fn drop(&mut self) {
        for child in [&mut self.qemu, &mut self.helper] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

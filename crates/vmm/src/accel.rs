//! Choosing the accelerator: KVM where it works, TCG everywhere else.

use std::fmt;

/// How QEMU runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    /// Hardware virtualization through `/dev/kvm`.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

impl fmt::Display for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        })
    }
}

impl Accelerator {
    /// The accelerator to use here, and why.
    ///
    /// `CZ_ACCEL=kvm|tcg` decides when set. Otherwise KVM needs the CPU flag
    /// `vmx` or `svm` *and* a `/dev/kvm` that opens: a nested, paravirtual
    /// `/dev/kvm` without those flags exists on some clouds and cannot run a
    /// normal guest, so its presence alone proves nothing.
    pub fn detect() -> (Accelerator, String) {
        match std::env::var("CZ_ACCEL").as_deref() {
            Ok("kvm") => return (Accelerator::Kvm, "CZ_ACCEL=kvm".into()),
            Ok("tcg") => return (Accelerator::Tcg, "CZ_ACCEL=tcg".into()),
            _ => {}
        }
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .unwrap_or_default();
        let hardware = flags.split_whitespace().any(|f| f == "vmx" || f == "svm");
        if !hardware {
            return (
                Accelerator::Tcg,
                "the CPU shows no vmx/svm flag, so KVM cannot run guests here".into(),
            );
        }
        let kvm = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            Ok(kvm) => kvm,
            Err(err) => return (Accelerator::Tcg, format!("/dev/kvm does not open: {err}")),
        };
        // SAFETY: KVM_CREATE_VM takes an integer machine type (0, passed as
        // a null argument) and returns a new file descriptor, which
        // `CreateVm` takes ownership of.
        match unsafe { rustix::ioctl::ioctl(&kvm, CreateVm) } {
            Ok(_vm) => (
                Accelerator::Kvm,
                "vmx/svm present, /dev/kvm opens and creates a VM".into(),
            ),
            Err(err) => (
                Accelerator::Tcg,
                format!("/dev/kvm opens but cannot create a VM: {err}"),
            ),
        }
    }

    /// [`Accelerator::detect`] run once per process (it reads `/proc/cpuinfo`
    /// and creates a throwaway KVM VM) and said once in the log.
    pub fn detect_and_log() -> Accelerator {
        static CHOICE: std::sync::OnceLock<Accelerator> = std::sync::OnceLock::new();
        *CHOICE.get_or_init(|| {
            let (accel, why) = Self::detect();
            tracing::info!(accelerator = %accel, "{why}");
            accel
        })
    }
}

/// The `KVM_CREATE_VM` ioctl: `_IO(0xAE, 0x01)`, returning a VM descriptor.
struct CreateVm;

// SAFETY: the opcode is KVM_CREATE_VM, which reads no memory through its
// argument (a null pointer, the default machine type 0) and returns a new
// descriptor, which `output_from_ptr` wraps in an `OwnedFd` exactly once.
unsafe impl rustix::ioctl::Ioctl for CreateVm {
    type Output = std::os::fd::OwnedFd;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> rustix::ioctl::Opcode {
        rustix::ioctl::opcode::none(0xAE, 0x01)
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(
        out: rustix::ioctl::IoctlOutput,
        _arg: *mut std::ffi::c_void,
    ) -> rustix::io::Result<Self::Output> {
        use std::os::fd::FromRawFd;
        // SAFETY: a successful KVM_CREATE_VM returns a fresh descriptor that
        // nothing else owns.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(out) })
    }
}

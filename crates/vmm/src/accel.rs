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
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            Ok(_) => (
                Accelerator::Kvm,
                "vmx/svm present and /dev/kvm opens".into(),
            ),
            Err(err) => (Accelerator::Tcg, format!("/dev/kvm does not open: {err}")),
        }
    }
}

//! The QEMU `microvm` back end: one QEMU process per VM, plus one
//! `vhost-device-vsock` helper when vsock is chosen and the host has no
//! vhost-vsock.

mod args;
mod attach;
mod confine;
mod console;
mod handoff;
mod jail;
mod namespace;
mod run_folder;
mod share;
mod user;
mod vm;

use std::time::Duration;

pub(crate) use args::kernel_cmdline;
pub use attach::{AttachedDisk, MAX_ATTACHED_DISKS};
pub use user::QemuUsers;
pub use vm::QemuVm;

use crate::{Accelerator, Hypervisor, VmConfig, VmmError};

/// Boots VMs with `qemu-system-x86_64 -M microvm`.
#[derive(Debug, Clone)]
pub struct Qemu {
    ready_timeout: Duration,
}

impl Qemu {
    /// A back end that waits up to `ready_timeout` for each guest's agent.
    pub fn new(ready_timeout: Duration) -> Self {
        Self { ready_timeout }
    }

    /// How long each guest's agent is waited for.
    pub fn ready_timeout(&self) -> Duration {
        self.ready_timeout
    }
}

impl Default for Qemu {
    /// 90 s under TCG, which boots a stock kernel in 2–3 s on an idle
    /// machine and much slower on a loaded one; 30 s with KVM.
    fn default() -> Self {
        let ready_timeout = match Accelerator::detect_and_log() {
            Accelerator::Tcg => Duration::from_secs(90),
            Accelerator::Kvm => Duration::from_secs(30),
        };
        Self { ready_timeout }
    }
}

impl Hypervisor for Qemu {
    type Vm = QemuVm;

    fn name(&self) -> &'static str {
        "qemu-microvm"
    }

    async fn start(&self, config: &VmConfig) -> Result<QemuVm, VmmError> {
        QemuVm::start(config, self.ready_timeout).await
    }
}

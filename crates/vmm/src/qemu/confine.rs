//! How far QEMU is confined, chosen once per start: its own mount
//! namespace (`jail`) and, within it, its own unprivileged user (`user`)
//! when the caller is root; nothing more for other callers, who cannot
//! make either and whose QEMU runs as themselves.

use std::os::fd::OwnedFd;
use std::process::Command;
use std::sync::Once;

use super::handoff::Handoff;
use super::jail::Jail;
use super::user::{self, QemuUsers, UidLease};
use crate::error::io_at;
use crate::{Accelerator, MemoryBacking, VmConfig, VmmError};

/// What confines one QEMU.
#[derive(Debug)]
pub(crate) enum Confinement {
    /// QEMU runs as the caller and sees the host's files.
    None,
    /// Its own mount namespace, as root.
    Jail,
    /// Its own mount namespace and an unprivileged user of `QemuUsers`.
    JailAndUser(QemuUsers),
}

/// Warns once per process that QEMU runs as root for want of its account.
fn warn_no_account() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::warn!(
            "QEMU runs as root: this host has no `{}` account (scripts/setup makes it; \
             CZ_QEMU_USER=off keeps QEMU root without this warning)",
            user::ACCOUNT
        );
    });
}

impl Confinement {
    /// The confinement `config` asks for, as far as the caller can give it.
    pub(crate) fn choose(config: &VmConfig) -> Self {
        let root = rustix::process::geteuid().is_root();
        match (config.jail, root, &config.qemu_users) {
            (false, _, _) => {
                tracing::warn!("QEMU sees the host's files (CZ_QEMU_JAIL=off)");
                Self::None
            }
            (true, false, _) => {
                tracing::debug!("not root: QEMU runs as the caller, in the host's namespace");
                Self::None
            }
            (true, true, Some(users)) => Self::JailAndUser(users.clone()),
            (true, true, None) => {
                if std::env::var("CZ_QEMU_USER").as_deref() != Ok("off") {
                    warn_no_account();
                }
                Self::Jail
            }
        }
    }

    /// Leases QEMU's uid (its lock inherited by QEMU, so the uid stays
    /// taken while QEMU lives) and opens to it what it opens by name.
    pub(crate) fn prepare(
        &self,
        config: &VmConfig,
        handoff: &mut Handoff,
    ) -> Result<Option<UidLease>, VmmError> {
        let Self::JailAndUser(users) = self else {
            return Ok(None);
        };
        let lease = users.lease()?;
        let lock = lease.lock().try_clone().map_err(io_at(&config.run_dir))?;
        handoff.keep(OwnedFd::from(lock));
        for path in [config.kernel.image(), config.initramfs.as_path()] {
            user::check_readable(path, lease.uid(), lease.gid())?;
        }
        if let MemoryBacking::File { path, .. } = &config.memory {
            let bytes = u64::from(config.memory_mib) << 20;
            user::share_memory_file(path, bytes, lease.gid())?;
        }
        Ok(Some(lease))
    }

    /// Makes the child of `command` enter its jail, then become `user`.
    pub(crate) fn install(
        &self,
        config: &VmConfig,
        user: Option<&UidLease>,
        command: &mut Command,
    ) -> Result<(), VmmError> {
        if matches!(self, Self::None) {
            return Ok(());
        }
        Jail::plan(config)?.install(command);
        if let Some(user) = user {
            user.install(
                command,
                user::device_groups(config.accel == Accelerator::Kvm),
            );
        }
        Ok(())
    }

    /// The error for a QEMU that could not be started: one that failed
    /// while confining itself says so, and how to start it unconfined.
    pub(crate) fn spawn_error(&self, config: &VmConfig, source: std::io::Error) -> VmmError {
        let program = config.qemu.clone();
        match self {
            _ if source.kind() == std::io::ErrorKind::NotFound => {
                VmmError::Spawn { program, source }
            }
            Self::None => VmmError::Spawn { program, source },
            Self::Jail | Self::JailAndUser(_) => VmmError::Confine {
                program,
                user: matches!(self, Self::JailAndUser(_)),
                source,
            },
        }
    }
}

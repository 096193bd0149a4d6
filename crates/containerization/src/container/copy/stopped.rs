//! A stopped container's copy VM: its VM booted (restored from a template
//! when one fits) with its disk, volumes and host paths but no network, the
//! tree mounted as its process would see it, and no process run.
//!
//! The container is claimed first, under its state lock, the way a start
//! claims it (this process becomes its owner, with `copying` set): a start
//! or a removal meanwhile is refused with an error saying a copy holds it,
//! and the volume leases are held as a start holds them. The root disk is
//! at `/run/cz/rootfs`; each volume and host path is bound over its target
//! there, resolved inside the root (a symlink in the image cannot move a
//! bind out of it); a `--read-only` container's root is then made a
//! read-only mount, so a copy into it is refused as Docker refuses it.

use std::sync::Arc;
use std::time::Duration;

use containerization_agent::proto::v1::{CopyRoot, MountRequest, copy_root};
use containerization_vmm::VirtualMachine;

use super::super::linux_container::LinuxContainer;
use super::super::manager::Inner;
use super::super::owner;
use super::super::record::{ContainerConfig, NetworkMode};
use super::super::sandbox::{self, BootContext, GUEST_ROOTFS, Sandbox};
use super::guest::GuestView;
use crate::{Error, spec};

/// A stopped container's VM, booted for a copy.
pub(crate) struct CopyVm {
    inner: Arc<Inner>,
    config: ContainerConfig,
    sandbox: Option<Sandbox>,
    _heartbeat: Option<owner::Heartbeat>,
}

impl CopyVm {
    /// Claims stopped container `container` and boots its copy VM.
    pub async fn start(container: &LinuxContainer) -> Result<Self, Error> {
        let inner = Arc::clone(container.inner());
        let config = container.config().clone();
        let store = inner.store.clone();
        let id = config.id.clone();
        let name = config.name.clone();
        store.update_checked(&id, |s| {
            if s.owner_alive() {
                let (state, detail) = match s.copying {
                    true => (
                        "being copied to or from",
                        "another copy holds it; try again when it ends",
                    ),
                    false => ("starting", "it is being started; copy once it runs"),
                };
                return Err(Error::InvalidState {
                    container: name.clone(),
                    state: state.to_owned(),
                    detail: detail.to_owned(),
                });
            }
            s.set_owner_to_this_process();
            s.copying = true;
            Ok(())
        })?;
        let heartbeat = owner::Heartbeat::start(store.heartbeat(&id)).ok();
        let mut vm = Self {
            inner,
            config,
            sandbox: None,
            _heartbeat: heartbeat,
        };
        match vm.boot().await {
            Ok(()) => Ok(vm),
            Err(error) => {
                vm.stop().await;
                Err(error)
            }
        }
    }

    async fn boot(&mut self) -> Result<(), Error> {
        let store = &self.inner.store;
        let id = &self.config.id;
        let _ = std::fs::remove_dir_all(store.vm_dir(id));
        let vm_dir = store.prepare_vm_dir(id)?;
        // No network: a copy needs none, and takes no address.
        let mut config = self.config.clone();
        config.network = NetworkMode::None;
        config.more_networks.clear();
        config.ports.clear();
        let context = BootContext {
            root: &self.inner.root,
            vminitd: &self.inner.vminitd,
            networks: None,
            ready_timeout: self.inner.ready_timeout,
        };
        let sandbox = sandbox::boot(&context, &config, &store.disk(id), &vm_dir).await?;
        let agent = sandbox.agent.clone();
        self.sandbox = Some(sandbox);
        for (source, target) in bound_mounts(&self.config) {
            agent
                .mount(MountRequest {
                    source,
                    target,
                    fstype: "none".into(),
                    options: vec!["rbind".into()],
                    target_root: GUEST_ROOTFS.into(),
                    ..Default::default()
                })
                .await?;
        }
        if self.config.read_only {
            agent
                .mount(MountRequest {
                    source: String::new(),
                    target: GUEST_ROOTFS.into(),
                    fstype: String::new(),
                    options: vec!["remount".into(), "bind".into(), "ro".into()],
                    ..Default::default()
                })
                .await?;
        }
        Ok(())
    }

    /// The container's tree in this VM.
    pub fn view(&self) -> Result<GuestView, Error> {
        let sandbox = self.sandbox.as_ref().ok_or_else(|| Error::InvalidState {
            container: self.config.name.clone(),
            state: "stopped".to_owned(),
            detail: "its copy VM is not running".to_owned(),
        })?;
        Ok(GuestView {
            agent: sandbox.agent.clone(),
            vsock: sandbox.vm.vsock().clone(),
            root: CopyRoot {
                root: Some(copy_root::Root::Path(GUEST_ROOTFS.to_owned())),
            },
        })
    }

    /// Flushes the disks, stops the VM (the guest's power-off leaves every
    /// file system clean), lets the volumes go and gives the container back.
    pub async fn stop(mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            let Sandbox { mut vm, agent, .. } = sandbox;
            let _ = agent.sync().await;
            vm.stop(Duration::from_secs(5)).await;
        }
        let store = &self.inner.store;
        let id = &self.config.id;
        let _ = std::fs::remove_dir_all(store.vm_dir(id));
        let _ = std::fs::remove_file(store.heartbeat(id));
        let released = store.update(id, |s| {
            s.copying = false;
            s.owner_pid = None;
            s.owner_start = None;
        });
        if let Err(error) = released {
            tracing::warn!(%error, container = %id, "cannot record the end of a copy");
        }
    }
}

/// The container's volumes and host paths as (guest source, target in the
/// container), in the order its runtime spec mounts them.
fn bound_mounts(config: &ContainerConfig) -> Vec<(String, String)> {
    let volumes = format!(
        "{}/",
        spec::guest_volume_path(0)
            .trim_end_matches('0')
            .trim_end_matches('/')
    );
    let shares = format!("{}/", spec::GUEST_SHARES);
    let Some(mounts) = config.spec["mounts"].as_array() else {
        return Vec::new();
    };
    mounts
        .iter()
        .filter_map(|mount| {
            let source = mount["source"].as_str()?;
            let target = mount["destination"].as_str()?;
            (source.starts_with(&volumes) || source.starts_with(&shares))
                .then(|| (source.to_owned(), target.to_owned()))
        })
        .collect()
}

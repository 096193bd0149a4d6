//! A container in a pod: instead of booting a VM, its owner asks the pod's
//! owner to attach the container's disk to the pod's running VM (a SCSI
//! target), mounts it in the guest under `/run/cz/c/<id>/`, mounts the
//! pod's volumes it uses (shared with the pod's other containers), and
//! runs its first process there, named by the container's id, in a cgroup
//! of its own under the pod's. When it ends, the owner unmounts the disk
//! and has it detached; the pod and its other containers run on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerization_agent::proto::v1::FillVolumeRequest;
use containerization_agent::{AgentClient, Connector, HybridVsockConnector};
use containerization_vmm::VsockEndpoint;

use super::manager::Inner;
use super::record::{ContainerConfig, ContainerState};
use super::sandbox;
use crate::pod::control::{self, Reply, Request};
use crate::{ContainerId, Error, spec};

/// A container's place in its pod's running VM.
pub(crate) struct PodSlot {
    /// The pod's agent.
    pub agent: AgentClient,
    /// Where stream listeners for its processes go.
    pub vsock: VsockEndpoint,
    /// The pod's name, for messages.
    pub pod: String,
    /// The pod owner's control socket.
    pub control: PathBuf,
    /// The SCSI target of the container's disk, once attached.
    pub target: Option<u16>,
    /// The pod volumes it uses, to release.
    pub volumes: Vec<String>,
    /// Whether its disk is mounted under an overlay.
    pub read_only: bool,
    /// Its folder in the guest.
    pub guest_dir: String,
}

/// The container's folder in its pod's guest.
pub(crate) fn guest_dir(id: &ContainerId) -> String {
    format!("/run/cz/c/{}", id.as_str())
}

/// Where its root file system is mounted in the pod's guest.
pub(crate) fn guest_rootfs(id: &ContainerId) -> String {
    format!("{}/rootfs", guest_dir(id))
}

/// What [`join`] hands back: the slot, the runtime spec to start, and the
/// pod's address.
pub(crate) struct Joined {
    pub slot: PodSlot,
    pub spec: serde_json::Value,
    pub address: Option<std::net::IpAddr>,
}

impl PodSlot {
    /// The pod agent's hybrid vsock socket, through which other processes
    /// reach the container.
    pub fn vsock_socket(&self) -> Option<PathBuf> {
        match &self.vsock {
            VsockEndpoint::Hybrid(path) => Some(path.clone()),
            VsockEndpoint::Cid(_) => None,
        }
    }
}

/// Puts container `config` into its running pod `pod`: its disk attached
/// and mounted, its volumes mounted, its spec pointed at them. Whatever was
/// done is undone on error.
pub(crate) async fn join(
    inner: &Arc<Inner>,
    config: &ContainerConfig,
    pod: &ContainerId,
) -> Result<Joined, Error> {
    let pod_config = inner.pods.config(pod)?;
    let state = inner.pods.state(pod)?;
    let not_running = || Error::PodState {
        pod: pod_config.name.clone(),
        state: state.status.to_string(),
        detail: format!(
            "its containers start only while it runs: start it with `cctl pod start {}`",
            pod_config.name
        ),
    };
    if !state.is_running() || state.status != crate::pod::PodStatus::Running {
        return Err(not_running());
    }
    let (Some(socket), Some(control)) = (state.vsock.clone(), state.control.clone()) else {
        return Err(not_running());
    };
    // The agent's connection and the disk's attach, side by side.
    let connector: Arc<dyn Connector> = Arc::new(HybridVsockConnector::new(socket.clone()));
    let attach = Request::AttachDisk {
        path: inner.store.disk(&config.id),
        read_only: config.read_only,
    };
    let (agent, attached) = tokio::join!(
        AgentClient::connect(&connector, Duration::from_secs(30)),
        control::call(&pod_config.name, &control, &attach)
    );
    let target = match attached {
        Ok(Reply::Attached { target }) => Some(target),
        Ok(reply) => return Err(unexpected(&pod_config.name, &reply)),
        Err(error) => return Err(error),
    };
    let agent = match agent {
        Ok(agent) => agent,
        Err(error) => {
            if let Some(target) = target {
                let detach = Request::DetachDisk { target };
                let _ = control::call(&pod_config.name, &control, &detach).await;
            }
            return Err(error.into());
        }
    };
    let mut slot = PodSlot {
        agent,
        vsock: VsockEndpoint::Hybrid(socket.clone()),
        pod: pod_config.name.clone(),
        control,
        target,
        volumes: Vec::new(),
        read_only: config.read_only,
        guest_dir: guest_dir(&config.id),
    };
    match prepare(config, &mut slot).await {
        Ok(spec) => Ok(Joined {
            slot,
            spec,
            address: state.address,
        }),
        Err(error) => {
            leave(&slot, None).await;
            Err(error)
        }
    }
}

async fn prepare(config: &ContainerConfig, slot: &mut PodSlot) -> Result<serde_json::Value, Error> {
    let target = slot
        .target
        .ok_or_else(|| unexpected(&slot.pod, &Reply::Done))?;
    let device = slot
        .agent
        .find_disk(target, sandbox::VOLUME_DISK_WAIT)
        .await?;
    let rootfs = guest_rootfs(&config.id);
    sandbox::mount_root_disk(
        &slot.agent,
        &device,
        &rootfs,
        &slot.guest_dir,
        config.read_only,
    )
    .await?;
    for tmpfs in &config.pod_tmpfs {
        let request = Request::UseTmpfs {
            name: tmpfs.name.clone(),
            size_bytes: tmpfs.size_bytes,
            mode: tmpfs.mode,
        };
        control::call(&slot.pod, &slot.control, &request).await?;
    }
    let mut spec = config.spec.clone();
    for (index, volume) in config.volumes.iter().enumerate() {
        let reply = control::call(
            &slot.pod,
            &slot.control,
            &Request::UseVolume {
                name: volume.name.clone(),
                read_only: volume.read_only,
            },
        )
        .await?;
        let Reply::Volume { path } = reply else {
            return Err(unexpected(&slot.pod, &reply));
        };
        slot.volumes.push(volume.name.clone());
        let source = spec::guest_volume_path(index);
        let mut destination = None;
        if let Some(mounts) = spec["mounts"].as_array_mut() {
            for mount in mounts.iter_mut().filter(|m| m["source"] == source.as_str()) {
                mount["source"] = path.clone().into();
                destination = mount["destination"].as_str().map(str::to_owned);
            }
        }
        // Docker's copy-up, into a new (empty) volume only.
        if let Some(destination) = destination.filter(|_| !volume.read_only) {
            slot.agent
                .fill_volume(FillVolumeRequest {
                    root: rootfs.clone(),
                    path: destination,
                    volume: path,
                })
                .await?;
        }
    }
    Ok(spec)
}

fn unexpected(pod: &str, reply: &Reply) -> Error {
    Error::PodRequest {
        pod: pod.to_owned(),
        detail: format!("its owner answered {reply:?}"),
    }
}

/// Takes the container out of its pod's VM (its processes have ended):
/// its process entry deleted, its disk unmounted and detached, its volumes
/// released. Best effort: what fails is logged.
pub(crate) async fn leave(slot: &PodSlot, process: Option<&str>) {
    if let Some(process) = process
        && let Err(error) = slot.agent.delete_process(process).await
    {
        tracing::debug!(%error, "the container's process entry stays");
    }
    let volumes = async {
        for name in &slot.volumes {
            let release = Request::ReleaseVolume { name: name.clone() };
            if let Err(error) = control::call(&slot.pod, &slot.control, &release).await {
                tracing::warn!(volume = %name, %error, "cannot release a pod volume");
            }
        }
    };
    let disk = async {
        let Some(target) = slot.target else {
            return;
        };
        unmount(&slot.agent, &format!("{}/rootfs", slot.guest_dir)).await;
        if slot.read_only {
            unmount(&slot.agent, &format!("{}/lower", slot.guest_dir)).await;
        }
        let detach = Request::DetachDisk { target };
        if let Err(error) = control::call(&slot.pod, &slot.control, &detach).await {
            tracing::warn!(target, %error, "cannot detach the container's disk from its pod");
        }
    };
    tokio::join!(volumes, disk);
}

/// Unmounts `target`, retrying while the last of the container's processes
/// let go of it; lazily in the end.
async fn unmount(agent: &AgentClient, target: &str) {
    for _ in 0..40 {
        match agent.umount(target, false).await {
            Ok(()) => return,
            Err(error) if error.to_string().contains("busy") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => {
                tracing::debug!(%target, %error, "unmount failed");
                return;
            }
        }
    }
    if let Err(error) = agent.umount(target, true).await {
        tracing::warn!(%target, %error, "cannot unmount the container's disk");
    }
}

/// Cleans up in its pod after a container whose owner died while it ran:
/// its process killed, then [`leave`].
pub(crate) async fn release_orphan(
    inner: &Inner,
    config: &ContainerConfig,
    state: &ContainerState,
) {
    let (Some(pod), Some(target)) = (&config.pod, state.pod_disk) else {
        return;
    };
    let (Ok(pod_config), Ok(pod_state)) = (inner.pods.config(pod), inner.pods.state(pod)) else {
        return;
    };
    let (true, Some(socket), Some(control)) = (
        pod_state.is_running(),
        pod_state.vsock.clone(),
        pod_state.control.clone(),
    ) else {
        return;
    };
    let connector: Arc<dyn Connector> = Arc::new(HybridVsockConnector::new(socket.clone()));
    let Ok(agent) = AgentClient::connect(&connector, Duration::from_secs(10)).await else {
        return;
    };
    let process = config.id.as_str();
    let _ = agent.kill_process(process, 9).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), agent.wait_process(process)).await;
    let slot = PodSlot {
        agent,
        vsock: VsockEndpoint::Hybrid(socket),
        pod: pod_config.name,
        control,
        target: Some(target),
        volumes: config.volumes.iter().map(|v| v.name.clone()).collect(),
        read_only: config.read_only,
        guest_dir: guest_dir(&config.id),
    };
    leave(&slot, Some(process)).await;
}

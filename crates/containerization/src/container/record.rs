//! What is kept on disk for a container: its configuration (`config.json`,
//! written once at create) and its state (`state.json`, rewritten as it
//! starts, runs and exits).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use containerization_oci::Platform;
use serde::{Deserialize, Serialize};

use crate::ContainerId;
use crate::network::PublishedPort;

/// Which network a container joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The named network (a bridge with a subnet on the host).
    Network(String),
    /// No network: the VM has no interface but loopback.
    None,
}

/// A container's configuration, fixed at create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The container's id: 64 hexadecimal digits.
    pub id: ContainerId,
    /// Its unique name.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's manifest digest (`sha256:…`); for a container made
    /// from a bundle, its snapshot stack's digest (see
    /// [`SnapshotKey`](crate::rootfs::SnapshotKey)), or empty when its
    /// disk is a copy. Its base is kept while this names it.
    pub manifest: String,
    /// The OCI runtime spec of its first process (the root path is set in the
    /// guest).
    pub spec: serde_json::Value,
    /// The signal `stop` sends first (the image's `StopSignal`, or SIGTERM).
    pub stop_signal: i32,
    /// Its network.
    pub network: NetworkMode,
    /// Ports published on the host.
    pub ports: Vec<PublishedPort>,
    /// DNS servers given with `--dns` (otherwise the host's are used).
    pub dns: Vec<IpAddr>,
    /// The guest kernel's catalogue name; `None` takes the default kernel.
    pub kernel: Option<String>,
    /// Virtual CPUs of its VM.
    pub vcpus: u32,
    /// Memory of its VM, in MiB.
    pub vm_memory_mib: u32,
    /// The root file system is the shared base, read-only.
    pub read_only: bool,
    /// The container is removed when it exits (`--rm`).
    pub auto_remove: bool,
    /// Its root file system's changes are thrown away after it ends (see
    /// `CreateOptions::disposable`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disposable: bool,
    /// Its first process has a terminal.
    pub terminal: bool,
    /// Its first process reads standard input.
    pub interactive: bool,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The image's platform (its config's); `None` in records made before
    /// it was kept, which run natively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Its named volumes, in the order its VM gets them as disks on its
    /// SCSI controller: the first is at target 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeUse>,
    /// Its host folders and files, in the order its VM shares them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<BindUse>,
    /// The pod it runs in (its id), sharing the pod's VM and network;
    /// `None` for a container with a VM of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ContainerId>,
    /// In a pod: the pod's shared tmpfs it mounts, as first asked for
    /// (the first container to name one sets its size and mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_tmpfs: Vec<PodTmpfs>,
    /// Its labels (`--label`): the image's, then those given at create
    /// over them, as Docker merges them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// When its owner starts its first process again after it exits.
    #[serde(default, skip_serializing_if = "super::RestartPolicy::is_no")]
    pub restart: super::RestartPolicy,
    /// More names it has on its network (`--network-alias`, Compose's
    /// service name), besides its own name and short id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The networks it joins besides [`Self::network`], in the order its VM
    /// gets their cards (eth1, eth2, …): `cctl run --network a --network b`,
    /// or `network connect` of a container already on one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_networks: Vec<NetworkJoin>,
}

/// A network a container joins besides its first, and the names it has
/// there besides its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkJoin {
    /// The network's name.
    pub name: String,
    /// More names it answers to there (`--alias` of `network connect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl ContainerConfig {
    /// Every network it joins, its first first, each with the more names
    /// it has there; empty with [`NetworkMode::None`].
    ///
    /// ```
    /// # fn demo(config: &containerization::ContainerConfig) {
    /// for (network, aliases) in config.joined_networks() {
    ///     println!("{network}: {}", aliases.join(", "));
    /// }
    /// # }
    /// ```
    pub fn joined_networks(&self) -> Vec<(&str, &[String])> {
        let NetworkMode::Network(first) = &self.network else {
            return Vec::new();
        };
        std::iter::once((first.as_str(), self.aliases.as_slice()))
            .chain(
                self.more_networks
                    .iter()
                    .map(|join| (join.name.as_str(), join.aliases.as_slice())),
            )
            .collect()
    }

    /// Whether it joins network `name`.
    pub fn joins(&self, name: &str) -> bool {
        self.joined_networks()
            .iter()
            .any(|(network, _)| *network == name)
    }
}

/// A tmpfs of a pod, shared by the containers that name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodTmpfs {
    /// Its name in the pod.
    pub name: String,
    /// Its size limit in bytes, or the kernel's default.
    pub size_bytes: Option<u64>,
    /// The mode of its root (1777 unless given).
    pub mode: Option<u32>,
}

/// A host folder or file a container has mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindUse {
    /// The host path.
    pub source: std::path::PathBuf,
    /// Whether the container only reads it.
    pub read_only: bool,
}

/// A named volume a container uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeUse {
    /// The volume.
    pub name: String,
    /// Whether the container only reads it.
    pub read_only: bool,
    /// Made for this container (`-v PATH`): removed with it by `--rm` or
    /// `rm -v`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, never started, or made ready again.
    Created,
    /// Its VM is booting.
    Starting,
    /// Its first process runs.
    Running,
    /// Its first process has exited (or it could not start).
    Exited,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Exited => "exited",
        })
    }
}

/// A container's state, rewritten as it changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    /// Where it is in its life.
    pub status: Status,
    /// The host process that owns its VM while it runs (`cctl run`, or the
    /// monitor of a detached container).
    pub owner_pid: Option<u32>,
    /// When that owner started (field 22 of `/proc/<pid>/stat`, clock ticks
    /// since boot): the PID is the owner only while this matches, since PIDs
    /// are reused. A record without it has no owner that can be trusted.
    #[serde(default)]
    pub owner_start: Option<u64>,
    /// The VM's hybrid vsock socket, through which any process reaches its
    /// agent, while it runs.
    pub vsock: Option<PathBuf>,
    /// Its IPv4 address on its network while it runs.
    pub address: Option<IpAddr>,
    /// The tap on the host while it runs.
    pub tap: Option<String>,
    /// Its addresses on its more networks while it runs, in the order of
    /// [`ContainerConfig::more_networks`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_addresses: Vec<IpAddr>,
    /// Their taps on the host while it runs, in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_taps: Vec<String>,
    /// When its first process last started (ms since the Unix epoch).
    pub started_ms: Option<u64>,
    /// When its first process last exited (ms since the Unix epoch).
    pub finished_ms: Option<u64>,
    /// The exit code, as Docker reports it (128 + signal for a signal).
    pub exit_code: Option<i32>,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// Why it could not start or run, when it could not.
    pub error: Option<String>,
    /// Its owner is a copy (`cctl cp` into or out of it while stopped), not
    /// a run: its VM holds the container's disk and volumes, and a start or
    /// removal waits for the copy to end. An owner that dies while copying
    /// leaves the status as it was.
    #[serde(default)]
    pub copying: bool,
    /// In a pod: the SCSI target of its disk in the pod's VM while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disk: Option<u16>,
    /// A user stopped or killed it: its restart policy waits until it is
    /// started again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_by_user: bool,
    /// Times its restart policy started it again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_count: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ContainerState {
    /// The state of a container just created.
    pub fn created() -> Self {
        Self {
            status: Status::Created,
            owner_pid: None,
            owner_start: None,
            vsock: None,
            address: None,
            tap: None,
            more_addresses: Vec::new(),
            more_taps: Vec::new(),
            started_ms: None,
            finished_ms: None,
            exit_code: None,
            oom_killed: false,
            error: None,
            copying: false,
            pod_disk: None,
            stopped_by_user: false,
            restart_count: 0,
        }
    }

    /// Whether it runs now: its status says so and its owner lives.
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Starting) && self.owner_alive()
    }

    /// Whether its recorded owner still lives: the PID names a live process
    /// that started when the owner did (a reused PID is not the owner).
    pub fn owner_alive(&self) -> bool {
        self.owner_pid
            .is_some_and(|pid| super::owner::is_alive(pid, self.owner_start))
    }

    /// Its address on network `name` of `config`'s while it runs.
    pub fn address_on(&self, config: &ContainerConfig, name: &str) -> Option<IpAddr> {
        let index = config
            .joined_networks()
            .iter()
            .position(|(network, _)| *network == name)?;
        match index {
            0 => self.address,
            more => self.more_addresses.get(more - 1).copied(),
        }
    }

    /// Its taps on the host while it runs, its first network's first.
    pub fn taps(&self) -> impl Iterator<Item = &str> {
        self.tap.iter().chain(&self.more_taps).map(String::as_str)
    }

    /// Records this process as its owner.
    pub(crate) fn set_owner_to_this_process(&mut self) {
        let pid = std::process::id();
        self.owner_pid = Some(pid);
        self.owner_start = super::owner::start_time(pid);
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_state_without_a_live_owner_is_not_running() {
        let mut state = ContainerState::created();
        state.status = Status::Running;
        state.set_owner_to_this_process();
        assert!(state.is_running());
        state.owner_start = state.owner_start.map(|start| start + 1);
        assert!(!state.is_running(), "the PID now names another process");
        state.owner_pid = Some(u32::MAX - 1);
        assert!(!state.is_running());
    }
}

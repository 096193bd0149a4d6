//! What is kept on disk for a pod: its configuration (`config.json`, written
//! once at create) and its state (`state.json`, rewritten as its VM starts,
//! runs and stops).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ContainerId;
use crate::container::NetworkMode;
use crate::network::PublishedPort;

/// A pod's configuration, fixed at create: what its VM is and which
/// network it joins. Its containers share the VM, its address and its
/// hostname.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodConfig {
    /// The pod's id: 64 hexadecimal digits.
    pub id: ContainerId,
    /// Its unique name (among pods).
    pub name: String,
    /// The hostname its containers share.
    pub hostname: String,
    /// Its network.
    pub network: NetworkMode,
    /// Ports published on the host, to the pod's address.
    pub ports: Vec<PublishedPort>,
    /// DNS servers given with `--dns` (otherwise the host's are used).
    pub dns: Vec<IpAddr>,
    /// The guest kernel's catalogue name; `None` takes the default kernel.
    pub kernel: Option<String>,
    /// Virtual CPUs of its VM.
    pub vcpus: u32,
    /// Memory of its VM, in MiB.
    pub vm_memory_mib: u32,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodStatus {
    /// Made, its VM never started.
    Created,
    /// Its VM is booting.
    Starting,
    /// Its VM runs and takes containers.
    Running,
    /// Its VM has stopped.
    Stopped,
}

impl std::fmt::Display for PodStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopped => "stopped",
        })
    }
}

/// A pod's state, rewritten as it changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodState {
    /// Where it is in its life.
    pub status: PodStatus,
    /// The host process that owns its VM while it runs.
    pub owner_pid: Option<u32>,
    /// When that owner started (clock ticks since boot): the PID is the
    /// owner only while this matches.
    pub owner_start: Option<u64>,
    /// The VM's hybrid vsock socket, through which any process reaches its
    /// agent, while it runs.
    pub vsock: Option<PathBuf>,
    /// The owner's control socket (disks attached and detached), while it
    /// runs.
    pub control: Option<PathBuf>,
    /// Its IPv4 address on its network while it runs.
    pub address: Option<IpAddr>,
    /// The tap on the host while it runs.
    pub tap: Option<String>,
    /// When its VM last started (ms since the Unix epoch).
    pub started_ms: Option<u64>,
    /// When its VM last stopped (ms since the Unix epoch).
    pub finished_ms: Option<u64>,
    /// Why it could not start or why it stopped, when not asked to.
    pub error: Option<String>,
}

impl PodState {
    /// The state of a pod just created.
    pub fn created() -> Self {
        Self {
            status: PodStatus::Created,
            owner_pid: None,
            owner_start: None,
            vsock: None,
            control: None,
            address: None,
            tap: None,
            started_ms: None,
            finished_ms: None,
            error: None,
        }
    }

    /// Whether its VM runs now: its status says so and its owner lives.
    pub fn is_running(&self) -> bool {
        matches!(self.status, PodStatus::Running | PodStatus::Starting) && self.owner_alive()
    }

    /// This state as a user sees it: a pod whose owner died while it ran
    /// is stopped.
    pub fn as_seen(mut self) -> Self {
        if matches!(self.status, PodStatus::Running | PodStatus::Starting) && !self.is_running() {
            self.status = PodStatus::Stopped;
            self.error
                .get_or_insert_with(|| "its owner process died".to_owned());
        }
        self
    }

    /// Whether its recorded owner still lives.
    pub fn owner_alive(&self) -> bool {
        self.owner_pid
            .is_some_and(|pid| crate::container::owner::is_alive(pid, self.owner_start))
    }
}

//! [`LinuxContainer`]: one container and its VM. The process that starts it
//! owns the VM (QEMU dies with it); any other process reaches the running
//! container's agent through the VM's vsock socket recorded in its state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerization_agent::proto::v1::create_process_request::Isolation;
use containerization_agent::proto::v1::{ContainerSpec, ExecSpec};
use containerization_agent::{AgentClient, Connector, HybridVsockConnector};
use containerization_vmm::{VirtualMachine, VsockEndpoint};

use super::in_pod;
use super::manager::Inner;
use super::owner;
use super::process::{ExitStatus, LinuxProcess, StdioConfig};
use super::record::{ContainerConfig, ContainerState, Status, now_ms};
use super::sandbox::{self, BootContext, Sandbox};
use crate::volume::VolumeStore;
use crate::{ContainerId, Error, spec};

/// The agent's id for a container's first process.
const INIT_ID: &str = "init";

/// Resource use of a running container, from its cgroup in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statistics {
    /// CPU time used, in microseconds.
    pub cpu_usage_usec: u64,
    /// Memory in use, in bytes.
    pub memory_current_bytes: u64,
    /// Its memory limit in bytes (0: none).
    pub memory_limit_bytes: u64,
    /// Processes and threads now.
    pub pids_current: u64,
    /// Bytes read from block devices.
    pub io_read_bytes: u64,
    /// Bytes written to block devices.
    pub io_write_bytes: u64,
    /// Times the OOM killer struck in it.
    pub oom_kills: u64,
    /// Bytes its VM received on its network card (what the host's tap for
    /// it sent; 0 without a tap of its own, as in a pod).
    pub net_rx_bytes: u64,
    /// Bytes its VM sent on its network card (what the tap received).
    pub net_tx_bytes: u64,
    /// Packets its VM received.
    pub net_rx_packets: u64,
    /// Packets its VM sent.
    pub net_tx_packets: u64,
}

/// One container: its configuration, its state on disk and, in the process
/// that started it, its VM.
///
/// Another process (a second `cctl`, say) finds a running container by name
/// and acts on it through its agent:
///
/// ```no_run
/// use std::time::Duration;
/// use containerization::{ContainerManager, StateRoot, StdioConfig, spec};
///
/// # async fn demo() -> Result<(), containerization::Error> {
/// let root = StateRoot::from_env()?;
/// let manager = ContainerManager::new(root.clone(), root.find_vminitd()?);
/// let mut web = manager.get("web")?;
/// let ls = spec::ProcessOptions { args: vec!["ls".into(), "/".into()], ..Default::default() };
/// let stdio = StdioConfig { stdout: true, ..StdioConfig::default() };
/// let mut process = web.exec(&ls, stdio).await?;
/// let _listing = process.take_streams().stdout;
/// assert_eq!(process.wait().await?.code, 0);
/// println!("{} MiB in use", web.statistics().await?.memory_current_bytes >> 20);
/// web.stop(Duration::from_secs(10)).await?;
/// web.delete(false).await?;
/// # Ok(())
/// # }
/// ```
pub struct LinuxContainer {
    inner: Arc<Inner>,
    config: ContainerConfig,
    sandbox: Option<Sandbox>,
    /// In the owner of a container in a pod: its place in the pod's VM.
    pod_slot: Option<in_pod::PodSlot>,
    /// While this process owns the VM: its beat, for a death to be dated.
    heartbeat: Option<owner::Heartbeat>,
    agent: tokio::sync::OnceCell<AgentClient>,
}

impl std::fmt::Debug for LinuxContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxContainer")
            .field("id", &self.config.id)
            .field("name", &self.config.name)
            .field("owns_vm", &self.sandbox.is_some())
            .field("pod", &self.config.pod)
            .finish()
    }
}

impl LinuxContainer {
    pub(crate) fn new(inner: Arc<Inner>, config: ContainerConfig) -> Self {
        Self {
            inner,
            config,
            sandbox: None,
            pod_slot: None,
            heartbeat: None,
            agent: tokio::sync::OnceCell::new(),
        }
    }

    /// Its id.
    pub fn id(&self) -> &ContainerId {
        &self.config.id
    }

    /// Its configuration.
    pub fn config(&self) -> &ContainerConfig {
        &self.config
    }

    /// Its state now. A container whose owner died while it ran is reported
    /// exited.
    pub fn state(&self) -> Result<ContainerState, Error> {
        let mut state = self.inner.store.state(&self.config.id)?;
        if matches!(state.status, Status::Running | Status::Starting) && !state.is_running() {
            state.status = Status::Exited;
            state
                .error
                .get_or_insert_with(|| "its owner process died".to_owned());
        }
        Ok(state)
    }

    /// Its log of standard output and standard error.
    pub fn log_path(&self) -> PathBuf {
        self.inner.store.log(&self.config.id)
    }

    /// Where a detached container's owner takes standard input for its
    /// first process while it runs (a unix socket in its private run
    /// folder; see `cctl`'s monitor): the first connection's bytes are the
    /// process's input, and its end is the input's end.
    pub fn stdin_socket(&self) -> PathBuf {
        self.inner.store.vm_dir(&self.config.id).join("stdin.sock")
    }

    /// Boots its VM, prepares the guest and starts its first process with
    /// `stdio`. This process then owns the VM: call [`Self::wait`].
    pub async fn start(&mut self, stdio: StdioConfig) -> Result<LinuxProcess, Error> {
        let id = self.config.id.clone();
        let store = self.inner.store.clone();
        let name = self.config.name.clone();
        // Claimed under the state lock: two starts, or a start and a copy,
        // never both take the VM.
        store.update_checked(&id, |s| {
            if s.is_running() {
                return Err(invalid(&name, "running", "it is already running"));
            }
            // A monitor still alive after its container ended is finishing
            // its teardown: only a copy's claim stops a start.
            if s.copying && s.owner_alive() {
                return Err(invalid(
                    &name,
                    "being copied to or from",
                    "a copy (cctl cp) holds it; start it when the copy ends",
                ));
            }
            // A start lifts a user's hold on the restart policy; the count
            // of its restarts stays.
            let restarts = s.restart_count;
            *s = ContainerState::created();
            s.restart_count = restarts;
            s.status = Status::Starting;
            s.set_owner_to_this_process();
            Ok(())
        })?;
        self.heartbeat = match owner::Heartbeat::start(store.heartbeat(&id)) {
            Ok(beat) => Some(beat),
            Err(error) => {
                tracing::warn!(%error, "no heartbeat: a death of this process would be dated late");
                None
            }
        };
        if let Some(pod) = self.config.pod.clone() {
            return self.start_in_pod(&pod, stdio).await;
        }
        let _ = std::fs::remove_dir_all(store.vm_dir(&id));
        let networks = self.inner.networks().await;
        let context = BootContext {
            root: &self.inner.root,
            vminitd: &self.inner.vminitd,
            networks,
            ready_timeout: self.inner.ready_timeout,
        };
        let booted = match store.prepare_vm_dir(&id) {
            Ok(vm_dir) => sandbox::boot(&context, &self.config, &store.disk(&id), &vm_dir).await,
            Err(e) => Err(e),
        };
        let sandbox = match booted {
            Ok(sandbox) => sandbox,
            Err(error) => {
                self.finish(None, Some(error.to_string()), 125, now_ms())
                    .await?;
                return Err(error);
            }
        };
        store.update(&id, |s| {
            s.vsock = sandbox.vsock_socket();
            let address = |a: &crate::network::Attachment| std::net::IpAddr::V4(a.address.addr());
            let (first, more) = match sandbox.attachments.split_first() {
                Some((first, more)) => (Some(first), more),
                None => (None, &[][..]),
            };
            s.address = first.map(address);
            s.tap = first.map(|a| a.device.clone());
            s.more_addresses = more.iter().map(address).collect();
            s.more_taps = more.iter().map(|a| a.device.clone()).collect();
        })?;
        let agent = sandbox.agent.clone();
        let vsock = sandbox.vm.vsock().clone();
        self.sandbox = Some(sandbox);
        let spec = serde_json::to_vec(&self.config.spec)
            .map_err(|e| self.invalid("created", &e.to_string()))?;
        let isolation = Isolation::Container(ContainerSpec {
            oci_spec: spec,
            rootfs: String::new(),
        });
        let process = self.spawn_first(&agent, &vsock, isolation, stdio).await?;
        // The others on its network learn its name.
        super::neighbours::announce(&self.inner, &self.config).await;
        Ok(process)
    }

    /// Starts it in its running pod `pod` (see [`in_pod`]).
    async fn start_in_pod(
        &mut self,
        pod: &ContainerId,
        stdio: StdioConfig,
    ) -> Result<LinuxProcess, Error> {
        let id = self.config.id.clone();
        let joined = match in_pod::join(&self.inner, &self.config, pod).await {
            Ok(joined) => joined,
            Err(error) => {
                self.finish(None, Some(error.to_string()), 125, now_ms())
                    .await?;
                return Err(error);
            }
        };
        self.inner.store.update(&id, |s| {
            s.vsock = joined.slot.vsock_socket();
            s.address = joined.address;
            s.pod_disk = joined.slot.target;
        })?;
        let agent = joined.slot.agent.clone();
        let vsock = joined.slot.vsock.clone();
        self.pod_slot = Some(joined.slot);
        let spec = serde_json::to_vec(&joined.spec)
            .map_err(|e| self.invalid("created", &e.to_string()))?;
        let isolation = Isolation::Container(ContainerSpec {
            oci_spec: spec,
            rootfs: in_pod::guest_rootfs(&id),
        });
        self.spawn_first(&agent, &vsock, isolation, stdio).await
    }

    /// Starts its first process and records it running; on failure records
    /// the exit code Docker gives and takes down what it used.
    async fn spawn_first(
        &mut self,
        agent: &AgentClient,
        vsock: &VsockEndpoint,
        isolation: Isolation,
        stdio: StdioConfig,
    ) -> Result<LinuxProcess, Error> {
        let id = self.config.id.clone();
        let store = self.inner.store.clone();
        let process_id = self.process_id().to_owned();
        match LinuxProcess::spawn(agent, vsock, process_id, isolation, stdio).await {
            Ok(process) => {
                tracing::debug!("first process started");
                store.update(&id, |s| {
                    s.status = Status::Running;
                    s.started_ms = Some(now_ms());
                })?;
                Ok(process)
            }
            Err(error) => {
                let code = match error {
                    Error::CommandNotFound(_) => 127,
                    Error::CommandNotRunnable(_) => 126,
                    Error::ExecFormat(_) => 1,
                    _ => 125,
                };
                self.finish(None, Some(error.to_string()), code, now_ms())
                    .await?;
                Err(error)
            }
        }
    }

    /// Waits until its first process exits. In the owner this also stops the
    /// VM, releases its network and, with auto-remove, removes the
    /// container; elsewhere it watches the state.
    pub async fn wait(&mut self) -> Result<ExitStatus, Error> {
        if let Some(agent) = self.owned_agent() {
            let init = LinuxProcess::attach(agent.clone(), self.process_id());
            let status = init.wait().await;
            // It ended when the wait returned, not when the VM is down.
            let ended = now_ms();
            let status = match status {
                Ok(status) => status,
                Err(error) => {
                    self.finish(None, Some(error.to_string()), 255, ended)
                        .await?;
                    return Err(error);
                }
            };
            self.finish(Some(status), None, status.code, ended).await?;
            return Ok(status);
        }
        loop {
            let state = self.state()?;
            if !state.is_running() {
                return Ok(ExitStatus {
                    code: state.exit_code.unwrap_or(255),
                    signal: None,
                    oom_killed: state.oom_killed,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Records how the container ended (at `ended_ms`, ms since the Unix
    /// epoch) and takes down what it used.
    async fn finish(
        &mut self,
        status: Option<ExitStatus>,
        error: Option<String>,
        code: i32,
        ended_ms: u64,
    ) -> Result<(), Error> {
        let id = self.config.id.clone();
        tracing::debug!(code, "container ended; taking it down");
        let store = self.inner.store.clone();
        store.update(&id, |s| {
            s.status = Status::Exited;
            s.finished_ms = Some(ended_ms);
            s.exit_code = Some(code);
            s.oom_killed = status.is_some_and(|st| st.oom_killed);
            s.error = error;
        })?;
        if let Some(sandbox) = self.sandbox.take() {
            let Sandbox { mut vm, agent, .. } = sandbox;
            // A disk that outlives the container is flushed before QEMU
            // goes and its file system left clean. A removed container
            // keeps only its volumes: unmounting them is enough (and much
            // quicker than the guest's power-off, which remounts every
            // file system read-only first); one that will not unmount
            // falls back to that. So does a disposable one's.
            let keep_disk = !self.config.auto_remove && !self.config.disposable;
            let unmounted = keep_disk || unmount_volumes(&agent, &self.config).await;
            if keep_disk || !unmounted {
                let _ = agent.sync().await;
                vm.stop(Duration::from_secs(5)).await;
            }
            drop(vm);
        }
        if let Some(slot) = self.pod_slot.take() {
            in_pod::leave(&slot, Some(self.config.id.as_str())).await;
        } else if self.config.pod.is_some()
            && let Ok(state) = store.state(&id)
        {
            in_pod::release_orphan(&self.inner, &self.config, &state).await;
        }
        let networks = self.inner.networks().await;
        sandbox::release_networks(networks, &self.config).await?;
        // The others on its network forget its name (its state says it
        // ended, so it is not among their peers).
        super::neighbours::announce(&self.inner, &self.config).await;
        let _ = std::fs::remove_dir_all(store.vm_dir(&id));
        self.heartbeat = None;
        let _ = std::fs::remove_file(store.heartbeat(&id));
        store.update(&id, |s| {
            s.owner_pid = None;
            s.owner_start = None;
            s.vsock = None;
            s.address = None;
            s.tap = None;
            s.more_addresses = Vec::new();
            s.more_taps = Vec::new();
            s.pod_disk = None;
        })?;
        if self.config.auto_remove {
            store.remove(&id)?;
            let volumes = VolumeStore::new(self.inner.root.path().join("volumes"));
            super::manager::remove_anonymous(&volumes, &self.config.volumes);
        }
        tracing::debug!("container taken down");
        Ok(())
    }

    /// The agent's id for its first process: `init` in a VM of its own,
    /// its id in a pod's VM (which runs several).
    pub(crate) fn process_id(&self) -> &str {
        match self.config.pod {
            Some(_) => self.config.id.as_str(),
            None => INIT_ID,
        }
    }

    /// The agent of the VM this process owns it in (its own VM, or its
    /// place in its pod's).
    fn owned_agent(&self) -> Option<&AgentClient> {
        match (&self.sandbox, &self.pod_slot) {
            (Some(sandbox), _) => Some(&sandbox.agent),
            (None, Some(slot)) => Some(&slot.agent),
            (None, None) => None,
        }
    }

    /// The agent of its running VM.
    async fn agent(&self) -> Result<&AgentClient, Error> {
        if let Some(agent) = self.owned_agent() {
            return Ok(agent);
        }
        let state = self.state()?;
        let socket = match (&state.vsock, state.is_running()) {
            (Some(socket), true) => socket.clone(),
            _ => return Err(self.invalid(&state.status.to_string(), "it is not running")),
        };
        self.agent
            .get_or_try_init(|| async {
                let connector: Arc<dyn Connector> = Arc::new(HybridVsockConnector::new(socket));
                Ok::<_, Error>(AgentClient::connect(&connector, Duration::from_secs(30)).await?)
            })
            .await
    }

    /// Where stream listeners for its processes go.
    fn vsock(&self) -> Result<VsockEndpoint, Error> {
        if let Some(sandbox) = &self.sandbox {
            return Ok(sandbox.vm.vsock().clone());
        }
        if let Some(slot) = &self.pod_slot {
            return Ok(slot.vsock.clone());
        }
        let state = self.state()?;
        state
            .vsock
            .map(VsockEndpoint::Hybrid)
            .ok_or_else(|| self.invalid(&state.status.to_string(), "it is not running"))
    }

    /// Sends `signal` to its first process. A user's kill holds its
    /// restart policy off until it is started again.
    pub async fn kill(&self, signal: i32) -> Result<(), Error> {
        self.held_by_user()?;
        Ok(self
            .agent()
            .await?
            .kill_process(self.process_id(), signal)
            .await?)
    }

    /// Records that a user stopped it, so its restart policy does not
    /// start it again (until a start).
    fn held_by_user(&self) -> Result<(), Error> {
        if self.config.restart.is_no() {
            return Ok(());
        }
        self.inner
            .store
            .update(&self.config.id, |s| {
                s.stopped_by_user = true;
            })
            .map(drop)
    }

    /// Counts a start by its restart policy (after an exit); the count so
    /// far.
    pub fn record_restart(&self) -> Result<u32, Error> {
        let mut count = 0;
        self.inner.store.update(&self.config.id, |s| {
            s.restart_count += 1;
            count = s.restart_count;
        })?;
        Ok(count)
    }

    /// Stops it: its stop signal, then SIGKILL after `timeout`; if its owner
    /// does not record the exit, the owner is killed, which takes the VM
    /// with it. Stopping a container that is not running does nothing.
    pub async fn stop(&mut self, timeout: Duration) -> Result<(), Error> {
        // Between an exit and its restart it is not running, but its policy
        // must still not start it again.
        self.held_by_user()?;
        if !self.state()?.is_running() {
            return Ok(());
        }
        if self.owned_agent().is_some() {
            let _ = self.kill(self.config.stop_signal).await;
            let agent = self.agent().await?.clone();
            let init = LinuxProcess::attach(agent, self.process_id());
            if tokio::time::timeout(timeout, init.wait()).await.is_err() {
                let _ = init.kill(9).await;
            }
            self.wait().await?;
            return Ok(());
        }
        let _ = self.kill(self.config.stop_signal).await;
        if self.settled_within(timeout).await? {
            return Ok(());
        }
        let _ = self.kill(9).await;
        if self.settled_within(Duration::from_secs(10)).await? {
            return Ok(());
        }
        self.kill_owner().await
    }

    /// Whether its owner finished with it (recorded the exit and let go of
    /// the VM and network) within `timeout`.
    async fn settled_within(&self, timeout: Duration) -> Result<bool, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = match self.inner.store.state(&self.config.id) {
                Ok(state) => state,
                // An auto-remove container is gone once its owner is done.
                Err(Error::ContainerNotFound(_)) => return Ok(true),
                Err(error) => return Err(error),
            };
            if !state.owner_alive() {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process that owns the VM (QEMU dies with it) and cleans up
    /// after it. Only a process proven to be the owner (its PID and start
    /// time) is signalled.
    async fn kill_owner(&mut self) -> Result<(), Error> {
        let state = self.inner.store.state(&self.config.id)?;
        if let Some(pid) = state.owner_pid
            && pid != std::process::id()
        {
            match owner::kill(pid, state.owner_start) {
                Ok(true) => {
                    for _ in 0..100 {
                        if !state.owner_alive() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(pid, %error, container = %self.config.id, "cannot kill its owner");
                }
            }
        }
        self.reap_stale(137).await
    }

    /// Cleans up after an owner that died without doing so: the network is
    /// released, the state says exited with `code`, and an auto-remove
    /// container is removed.
    pub(crate) async fn reap_stale(&mut self, code: i32) -> Result<(), Error> {
        let state = match self.inner.store.state(&self.config.id) {
            Ok(state) => state,
            Err(Error::ContainerNotFound(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        if state.owner_alive() {
            return Ok(());
        }
        if state.copying {
            // A copy's owner died: the container is as it was before.
            self.inner.store.update(&self.config.id, |s| {
                s.copying = false;
                s.owner_pid = None;
                s.owner_start = None;
                s.vsock = None;
            })?;
            let _ = std::fs::remove_dir_all(self.inner.store.vm_dir(&self.config.id));
            let _ = std::fs::remove_file(self.inner.store.heartbeat(&self.config.id));
            return Ok(());
        }
        if matches!(state.status, Status::Running | Status::Starting) || state.owner_pid.is_some() {
            // Its VM died with the owner, whose last beat dates that closer
            // than now (a container whose owner beat no more than now).
            let now = now_ms();
            let ended = owner::last_beat_ms(&self.inner.store.heartbeat(&self.config.id))
                .map_or(now, |beat| beat.min(now));
            self.finish(None, Some("its owner process died".to_owned()), code, ended)
                .await?;
        }
        Ok(())
    }

    /// Runs a new process in it: `options.args` with its first process's
    /// environment, working directory and user unless `options` says
    /// otherwise.
    pub async fn exec(
        &self,
        options: &spec::ProcessOptions,
        stdio: StdioConfig,
    ) -> Result<LinuxProcess, Error> {
        let init: oci_spec::runtime::Process =
            serde_json::from_value(self.config.spec["process"].clone()).map_err(|e| {
                Error::CorruptState {
                    path: self.inner.store.dir(&self.config.id).join("config.json"),
                    detail: format!("process: {e}"),
                }
            })?;
        let host_env = |key: &str| std::env::var(key).ok();
        let process = spec::exec_process(&init, options, &host_env)?;
        let agent = self.agent().await?.clone();
        let vsock = self.vsock()?;
        let json = serde_json::to_vec(&process).map_err(|e| Error::InvalidOption {
            option: "exec".to_owned(),
            detail: e.to_string(),
        })?;
        let isolation = Isolation::Exec(ExecSpec {
            container_id: self.process_id().to_owned(),
            oci_process: json,
        });
        LinuxProcess::spawn(&agent, &vsock, exec_id(), isolation, stdio).await
    }

    /// Runs a new process in it from an OCI runtime spec's `process` (as
    /// containerd hands an exec to a shim).
    pub async fn exec_oci(
        &self,
        process: &serde_json::Value,
        stdio: StdioConfig,
    ) -> Result<LinuxProcess, Error> {
        let json = serde_json::to_vec(process).map_err(|e| Error::InvalidOption {
            option: "exec".to_owned(),
            detail: e.to_string(),
        })?;
        let agent = self.agent().await?.clone();
        let vsock = self.vsock()?;
        let isolation = Isolation::Exec(ExecSpec {
            container_id: self.process_id().to_owned(),
            oci_process: json,
        });
        LinuxProcess::spawn(&agent, &vsock, exec_id(), isolation, stdio).await
    }

    /// Resizes its first process's terminal.
    pub async fn resize(&self, rows: u16, columns: u16) -> Result<(), Error> {
        let agent = self.agent().await?.clone();
        LinuxProcess::attach(agent, self.process_id())
            .resize(rows, columns)
            .await
    }

    /// Closes its first process's standard input.
    pub async fn close_stdin(&self) -> Result<(), Error> {
        let agent = self.agent().await?.clone();
        LinuxProcess::attach(agent, self.process_id())
            .close_stdin()
            .await
    }

    /// Its resource use now.
    pub async fn statistics(&self) -> Result<Statistics, Error> {
        let s = self
            .agent()
            .await?
            .container_statistics(self.process_id())
            .await?;
        // The taps' counters, read on the host: what they sent the VM
        // received, and the reverse.
        let state = self.state()?;
        let counter = |name: &str| -> u64 {
            state
                .taps()
                .filter_map(|tap| {
                    std::fs::read_to_string(format!("/sys/class/net/{tap}/statistics/{name}")).ok()
                })
                .filter_map(|text| text.trim().parse::<u64>().ok())
                .sum()
        };
        Ok(Statistics {
            cpu_usage_usec: s.cpu_usage_usec,
            memory_current_bytes: s.memory_current_bytes,
            memory_limit_bytes: s.memory_limit_bytes,
            pids_current: s.pids_current,
            io_read_bytes: s.io_read_bytes,
            io_write_bytes: s.io_write_bytes,
            oom_kills: s.oom_kills,
            net_rx_bytes: counter("tx_bytes"),
            net_tx_bytes: counter("rx_bytes"),
            net_rx_packets: counter("tx_packets"),
            net_tx_packets: counter("rx_packets"),
        })
    }

    /// Removes it: its disk, its state and its log. A running container is
    /// refused unless `force`, which kills it first.
    pub async fn delete(mut self, force: bool) -> Result<(), Error> {
        if self.state()?.is_running() {
            if !force {
                return Err(self.invalid("running", "stop it first, or remove it with --force"));
            }
            if self.owned_agent().is_some() {
                let _ = self.kill(9).await;
                self.wait().await?;
            } else {
                let _ = self.kill(9).await;
                if !self.settled_within(Duration::from_secs(10)).await? {
                    self.kill_owner().await?;
                }
            }
        }
        self.reap_stale(137).await?;
        let networks = self.inner.networks().await;
        sandbox::release_networks(networks, &self.config).await?;
        self.inner
            .store
            .remove_unowned(&self.config.id, &self.config.name)
    }

    fn invalid(&self, state: &str, detail: &str) -> Error {
        invalid(&self.config.name, state, detail)
    }

    /// The shared parts a copy needs: the manager's inner state.
    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// The agent and stream endpoint of its running VM, when it runs.
    pub(super) async fn running_agent(
        &self,
    ) -> Result<Option<(AgentClient, VsockEndpoint)>, Error> {
        if !self.state()?.is_running() {
            return Ok(None);
        }
        let agent = self.agent().await?.clone();
        Ok(Some((agent, self.vsock()?)))
    }
}

/// A new exec's id, unique among the agent's processes: this host process,
/// the time and a count, so two execs at once (from here or elsewhere)
/// never clash.
fn exec_id() -> String {
    static EXECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = EXECS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("exec-{}-{:x}-{count}", std::process::id(), now_ms())
}

/// [`Error::InvalidState`] for container `name`.
fn invalid(name: &str, state: &str, detail: &str) -> Error {
    Error::InvalidState {
        container: name.to_owned(),
        state: state.to_owned(),
        detail: detail.to_owned(),
    }
}

/// Unmounts container `config`'s volumes in its guest (the container has
/// ended), which leaves their journals clean; whether all went.
async fn unmount_volumes(agent: &AgentClient, config: &ContainerConfig) -> bool {
    let mut all = true;
    for index in 0..config.volumes.len() {
        let target = crate::spec::guest_volume_path(index);
        if let Err(error) = agent.umount(&target, false).await {
            tracing::debug!(%target, %error, "a volume did not unmount");
            all = false;
        }
    }
    all
}

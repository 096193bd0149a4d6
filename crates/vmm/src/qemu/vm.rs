//! A running QEMU microvm: its processes, its QMP socket, its agent.
//!
//! Start spawns the vsock helper (when there is one) and QEMU, both with a
//! parent-death signal so they die with their owner even when the owner is
//! killed with SIGKILL, then waits until vminitd's agent answers. Stop asks
//! the agent to shut the guest down, then QMP `quit`, then SIGKILL.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use containerization_agent::mux::HostProxy;
use containerization_agent::{AgentClient, Connector, READY_PORT};

use super::args::{VsockDevice, qemu_args};
use super::attach::{AttachedDisk, AttachedDisks};
use super::confine::Confinement;
use super::console::ConsoleCap;
use super::handoff::Handoff;
use super::run_folder;
use super::share::ShareHelper;
use super::user::UidLease;
use crate::error::io_at;
use crate::supervise::spawn_owned;
use crate::{
    CidLease, HostListener, Qmp, StopOutcome, VirtualMachine, VmConfig, VmmError, VsockBackend,
    VsockEndpoint,
};

/// The guest CID behind a `vhost-device-vsock`: each VM has its own helper,
/// so every such guest can be 3.
const HELPER_GUEST_CID: u32 = 3;

/// How long each agent call but `wait` may take.
const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// The name QEMU knows a migration's file descriptor by (`getfd`, `fd:`).
const STATE_FD: &str = "cz-state";

/// What QEMU says when it was built without seccomp and is given `-sandbox`.
const NO_SECCOMP_MARK: &str = "-sandbox support is not enabled";

/// What marks a kernel panic on the console.
const PANIC_MARK: &str = "Kernel panic - not syncing";

/// A running QEMU VM. Dropping it kills QEMU and its helper.
#[derive(Debug)]
pub struct QemuVm {
    qemu: Child,
    /// The QEMU binary, for errors.
    program: PathBuf,
    helper: Option<Child>,
    /// The 9p helper of its shared host paths.
    shares: ShareHelper,
    /// The host end of the serial transport.
    proxy: Option<HostProxy>,
    _cid: Option<CidLease>,
    /// QEMU's uid, when it runs as its own user.
    _user: Option<UidLease>,
    memory: crate::MemoryBacking,
    endpoint: VsockEndpoint,
    ready: Option<HostListener>,
    qmp: Option<Qmp>,
    /// Disks given to it while it runs.
    attached: AttachedDisks,
    agent: Option<AgentClient>,
    console: PathBuf,
    /// Keeps `console` under its size cap while the VM lives.
    _console_cap: ConsoleCap,
    stderr: PathBuf,
    ready_after: Duration,
}

/// The migration capability that leaves shared RAM (the memory file) out of
/// the stream.
fn ignore_shared() -> serde_json::Value {
    serde_json::json!({
        "capabilities": [{ "capability": "x-ignore-shared", "state": true }]
    })
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of `text`.
fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The last `lines` lines of a text file, or nothing.
fn tail(path: &Path, lines: usize) -> String {
    last_lines(
        &String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()),
        lines,
    )
}

/// Starts `vhost-device-vsock` and waits for its vhost-user socket.
fn start_helper(program: &Path, run_dir: &Path) -> Result<(Child, PathBuf), VmmError> {
    let vhost_socket = run_dir.join("vhost-vsock.sock");
    let hybrid = run_dir.join("vsock.sock");
    let _ = std::fs::remove_file(&vhost_socket);
    let _ = std::fs::remove_file(&hybrid);
    let mut command = Command::new(program);
    command
        .arg("--guest-cid")
        .arg(HELPER_GUEST_CID.to_string())
        .arg("--socket")
        .arg(&vhost_socket)
        .arg("--uds-path")
        .arg(&hybrid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut helper = spawn_owned(command).map_err(|source| VmmError::Spawn {
        program: program.to_path_buf(),
        source,
    })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !vhost_socket.exists() {
        if Instant::now() > deadline || helper.try_wait().ok().flatten().is_some() {
            kill_and_reap(&mut helper);
            return Err(VmmError::HelperFailed {
                program: program.to_path_buf(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let private = run_folder::private_socket(&vhost_socket).and_then(|()| match hybrid.exists() {
        true => run_folder::private_socket(&hybrid),
        false => Ok(()),
    });
    if let Err(err) = private {
        kill_and_reap(&mut helper);
        return Err(err);
    }
    Ok((helper, vhost_socket))
}

/// The vsock helper while QEMU starts: killed if the start fails.
struct HelperGuard(Option<Child>);

impl Drop for HelperGuard {
    fn drop(&mut self) {
        if let Some(helper) = self.0.as_mut() {
            kill_and_reap(helper);
        }
    }
}

/// Connects to the helper's vhost-user socket: the file appears when the
/// helper binds it, a moment before it listens, so a refusal is retried for
/// a while.
fn connect_helper(socket: &Path) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match UnixStream::connect(socket) {
            Err(err)
                if err.kind() == std::io::ErrorKind::ConnectionRefused
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

impl QemuVm {
    /// Starts the VM and waits (up to `ready_timeout`) until its agent answers.
    pub(crate) async fn start(
        config: &VmConfig,
        ready_timeout: Duration,
    ) -> Result<Self, VmmError> {
        let started = Instant::now();
        let mut vm = Self::launch(config)?;
        if let Some(state) = &config.restore_from {
            vm.load_state(state)?;
        }
        vm.agent = Some(vm.wait_for_agent(started, ready_timeout).await?);
        vm.ready_after = started.elapsed();
        tracing::debug!(ready_after = ?vm.ready_after, "agent ready");
        Ok(vm)
    }

    /// Starts the VM without waiting for an agent, for guests that run
    /// something else as init (the boot floor of [`crate::floor_initramfs`]).
    /// [`VirtualMachine::agent`] is `None` for such a VM.
    pub fn launch(config: &VmConfig) -> Result<Self, VmmError> {
        config.validate()?;
        run_folder::prepare(&config.run_dir)?;
        let hybrid = config.run_dir.join("vsock.sock");
        // Killed on any early return below; taken by the VM once it runs.
        let mut helper = HelperGuard(None);
        let (mut cid, mut proxy, mut agent_fd) = (None, None, None);
        let endpoint = match &config.vsock {
            VsockBackend::VhostUser { program } => {
                let (child, socket) = start_helper(program, &config.run_dir)?;
                helper.0 = Some(child);
                // Connected here and handed to QEMU: QEMU needs no path.
                let stream = connect_helper(&socket).map_err(io_at(&socket))?;
                agent_fd = Some(OwnedFd::from(stream));
                VsockEndpoint::Hybrid(hybrid)
            }
            VsockBackend::Kernel => {
                let lease = CidLease::acquire(&CidLease::default_dir())?;
                let endpoint = VsockEndpoint::Cid(lease.cid());
                cid = Some(lease);
                endpoint
            }
            VsockBackend::Serial => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(VmmError::InvalidConfig {
                        message: "the serial transport's host end runs on a tokio runtime; \
                                  start the VM from within one"
                            .to_owned(),
                    });
                }
                let (host, vm_end) = HostProxy::pair(&hybrid).map_err(io_at(&hybrid))?;
                proxy = Some(host);
                agent_fd = Some(OwnedFd::from(vm_end));
                run_folder::private_socket(&hybrid)?;
                VsockEndpoint::Hybrid(hybrid)
            }
        };
        let device = match (&config.vsock, &cid) {
            (VsockBackend::Serial, _) => VsockDevice::Serial,
            (VsockBackend::VhostUser { .. }, _) => VsockDevice::VhostUser,
            (VsockBackend::Kernel, Some(lease)) => VsockDevice::Kernel { cid: lease.cid() },
            (VsockBackend::Kernel, None) => unreachable!("the kernel back end leases a CID"),
        };
        // Listen for vminitd's ready call before the guest can make it.
        let ready = match &endpoint {
            VsockEndpoint::Hybrid(_) => Some(endpoint.listen(READY_PORT)?),
            VsockEndpoint::Cid(_) => None,
        };
        if !config.sandbox {
            tracing::warn!("QEMU runs without its seccomp sandbox (CZ_QEMU_SANDBOX=off)");
        }
        let console = config.console_path();
        // QEMU keeps the mode of a console file that exists.
        drop(run_folder::private_file(&console)?);
        let stderr = config.run_dir.join("qemu.stderr");
        let stderr_file = run_folder::private_file(&stderr)?;
        let (qmp_stream, qemu_end) = UnixStream::pair().map_err(io_at(&config.run_dir))?;
        let mut handoff = Handoff::open(
            config,
            qemu_end.into(),
            agent_fd,
            matches!(device, VsockDevice::Kernel { .. }),
            &console,
        )?;
        // Killed on any early return below, like the vsock helper.
        let (shares, share_end) = ShareHelper::start(config)?;
        if let Some(end) = share_end {
            handoff.add_share(end);
        }
        let confinement = Confinement::choose(config);
        let user = confinement.prepare(config, &mut handoff)?;
        let mut command = Command::new(&config.qemu);
        command
            .args(qemu_args(config, &device, &handoff))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr_file);
        handoff.install(&mut command);
        confinement.install(config, user.as_ref(), &mut command)?;
        let spawned = spawn_owned(command);
        // QEMU has its copies; with ours closed, its exit closes the pairs.
        drop(handoff);
        let qemu = match spawned {
            Ok(child) => child,
            Err(source) => return Err(confinement.spawn_error(config, source)),
        };
        let mut vm = Self {
            qemu,
            program: config.qemu.clone(),
            helper: helper.0.take(),
            shares,
            proxy,
            _cid: cid,
            _user: user,
            memory: config.memory.clone(),
            endpoint,
            ready,
            qmp: None,
            attached: AttachedDisks::new(config.attachable_disks, config.scsi_disk_count()),
            agent: None,
            _console_cap: ConsoleCap::watch(console.clone(), config.console_max_bytes),
            console,
            stderr,
            ready_after: Duration::ZERO,
        };
        vm.qmp = Some(vm.connect_qmp(qmp_stream)?);
        Ok(vm)
    }

    /// Greets QEMU's monitor on our end of the pair; a QEMU that failed to
    /// start closes its end, and the error then says why it exited.
    fn connect_qmp(&mut self, stream: UnixStream) -> Result<Qmp, VmmError> {
        let err = match Qmp::handshake(stream) {
            Ok(qmp) => return Ok(qmp),
            Err(err) => err,
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit() {
                return Err(self.exited_early(status));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(VmmError::Qmp {
            message: format!("{err}; QEMU's errors: {}", tail(&self.stderr, 10)),
        })
    }

    /// The error for a QEMU that exited before the agent answered: a kernel
    /// panic quotes its line; otherwise QEMU's own errors and the console.
    fn exited_early(&self, status: ExitStatus) -> VmmError {
        let stderr = tail(&self.stderr, 10);
        if stderr.contains(NO_SECCOMP_MARK) {
            return VmmError::NoSandbox {
                qemu: self.program.clone(),
            };
        }
        let console = std::fs::read(&self.console).unwrap_or_default();
        let console = String::from_utf8_lossy(&console);
        if let Some(line) = console.lines().find(|l| l.contains(PANIC_MARK)) {
            return VmmError::KernelPanic {
                line: line.trim().to_owned(),
                console: last_lines(&console, 20),
            };
        }
        VmmError::GuestExited {
            status: status.to_string(),
            stderr,
            console: last_lines(&console, 20),
        }
    }

    async fn wait_for_agent(
        &mut self,
        started: Instant,
        timeout: Duration,
    ) -> Result<AgentClient, VmmError> {
        if let Some(ready) = self.ready.take() {
            // Dial only once the guest says it listens; see READY_PORT.
            loop {
                if let Some(status) = self.try_exit() {
                    return Err(self.exited_early(status));
                }
                if started.elapsed() >= timeout {
                    return Err(VmmError::NotReady {
                        timeout,
                        console: tail(&self.console, 20),
                    });
                }
                let wait = tokio::time::timeout(Duration::from_millis(50), ready.accept());
                if let Ok(Ok(_call)) = wait.await {
                    break;
                }
            }
        }
        let connector = self.endpoint.connector();
        loop {
            if let Some(status) = self.try_exit() {
                return Err(self.exited_early(status));
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(VmmError::NotReady {
                    timeout,
                    console: tail(&self.console, 20),
                });
            }
            // A dial can stall when the guest's vsock is half up (the hybrid
            // helper waits for an answer that never comes), so every attempt,
            // handshake and first call included, has its own time limit.
            let attempt = left.min(Duration::from_secs(5));
            let dial = async {
                let agent = AgentClient::connect(&connector, CALL_DEADLINE).await?;
                agent.version().await?;
                Ok::<_, containerization_agent::AgentError>(agent)
            };
            if let Ok(Ok(agent)) = tokio::time::timeout(attempt, dial).await {
                return Ok(agent);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The QMP connection, or an error saying it is needed for `what`.
    fn qmp_for(&mut self, what: &str) -> Result<&mut Qmp, VmmError> {
        self.qmp.as_mut().ok_or_else(|| VmmError::Qmp {
            message: format!("no QMP connection for {what}"),
        })
    }

    /// Loads a snapshot's device state into a VM started with
    /// `-incoming defer`; the guest runs on once it is in. Memory is not in
    /// the state (`x-ignore-shared`): it is the snapshot's memory file.
    ///
    /// The state file is opened here and handed to QEMU over QMP (`getfd`,
    /// then `fd:` as the migration URI): QEMU runs no command to read it.
    fn load_state(&mut self, state: &Path) -> Result<(), VmmError> {
        let file = std::fs::File::open(state).map_err(io_at(state))?;
        self.migrate("migrate-incoming", STATE_FD, &file)?;
        Ok(())
    }

    /// Runs `command` (`migrate` or `migrate-incoming`) on `file`, passed to
    /// QEMU as `name`, with shared memory left out of the stream.
    fn migrate(
        &mut self,
        command: &str,
        name: &str,
        file: &std::fs::File,
    ) -> Result<&mut Qmp, VmmError> {
        let qmp = self.qmp_for(command)?;
        qmp.execute("migrate-set-capabilities", Some(ignore_shared()))?;
        qmp.execute_with_fd(
            "getfd",
            Some(serde_json::json!({ "fdname": name })),
            file.as_fd(),
        )?;
        let uri = format!("fd:{name}");
        qmp.execute(command, Some(serde_json::json!({ "uri": uri })))?;
        Ok(qmp)
    }

    /// Gives the running VM `disk`, at the lowest free SCSI target of its
    /// virtio-scsi controller (the VM must have been started with
    /// [`crate::VmConfig::attachable_disks`]). The guest finds it by
    /// [`AttachedDisk::target`] (the agent's `FindDisk`). At most
    /// [`crate::MAX_ATTACHED_DISKS`] at once; on error nothing of the disk
    /// stays in QEMU.
    ///
    /// ```no_run
    /// # async fn demo(vm: &mut containerization_vmm::QemuVm) -> Result<(), containerization_vmm::VmmError> {
    /// use containerization_vmm::DiskConfig;
    ///
    /// let disk = vm.attach_disk(&DiskConfig::new("/var/lib/cz/disk.ext4"))?;
    /// println!("SCSI target {}", disk.target());
    /// // ... the guest mounts it, uses it and unmounts it ...
    /// vm.detach_disk(&disk)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn attach_disk(&mut self, disk: &crate::DiskConfig) -> Result<AttachedDisk, VmmError> {
        let qmp = self.qmp.as_mut().ok_or_else(|| VmmError::Qmp {
            message: "no QMP connection to attach a disk".to_owned(),
        })?;
        self.attached.attach(qmp, disk)
    }

    /// Takes `disk` from the running VM: the device goes (QEMU waits for
    /// the guest to let it go), then its nodes and descriptors, so QEMU
    /// holds nothing of the file. The guest must have unmounted it.
    pub fn detach_disk(&mut self, disk: &AttachedDisk) -> Result<(), VmmError> {
        let qmp = self.qmp.as_mut().ok_or_else(|| VmmError::Qmp {
            message: "no QMP connection to detach a disk".to_owned(),
        })?;
        self.attached.detach(qmp, disk)
    }

    /// Saves this VM as a template: its device state to `state`, while its
    /// memory stays in the shared memory file it was started with. The host
    /// end of the serial transport is closed first, so the snapshot holds no
    /// host connection and a restored guest waits for a new one; the VM is
    /// left paused, to be stopped.
    ///
    /// Restore with the same configuration, the memory file mapped private,
    /// and [`VmConfig::restore_from`] set to `state`.
    pub async fn snapshot(&mut self, state: &Path) -> Result<(), VmmError> {
        if self.attached.count() > 0 {
            return Err(VmmError::InvalidConfig {
                message: "a VM with attached disks cannot be saved as a template: a VM \
                          restored from it would lack them"
                    .to_owned(),
            });
        }
        if !matches!(self.memory, crate::MemoryBacking::File { shared: true, .. })
            || self.proxy.is_none()
        {
            return Err(VmmError::InvalidConfig {
                message: "only a VM with a shared memory file and the serial transport can be \
                          saved as a template"
                    .to_owned(),
            });
        }
        self.agent = None;
        self.proxy = None;
        // Let the guest see its host go and end the session.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let partial = state.with_extension("partial");
        // The device state can hold guest secrets (device buffers, CPU
        // registers): for the owner's eyes only.
        let file = std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io_at(&partial))?;
        let qmp = self.migrate("migrate", STATE_FD, &file)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = qmp.execute("query-migrate", None)?;
            match status["status"].as_str() {
                Some("completed") => break,
                Some("failed" | "cancelled") => {
                    return Err(VmmError::Qmp {
                        message: format!(
                            "saving the snapshot failed: {}",
                            status["error-desc"].as_str().unwrap_or("no reason given")
                        ),
                    });
                }
                _ if Instant::now() > deadline => {
                    return Err(VmmError::Qmp {
                        message: "saving the snapshot took over 60 s".to_owned(),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        // QEMU wrote through its copy of the descriptor; ours reaches the
        // same file, so the state is on disk before it is published.
        file.sync_all().map_err(io_at(&partial))?;
        std::fs::rename(&partial, state).map_err(io_at(state))?;
        Ok(())
    }

    /// QEMU's pid.
    pub fn pid(&self) -> u32 {
        self.qemu.id()
    }

    /// The vsock helper's pid, when the back end has one.
    pub fn helper_pid(&self) -> Option<u32> {
        self.helper.as_ref().map(Child::id)
    }

    /// The pid of its shared host paths' 9p helper, when it has one.
    pub fn share_helper_pid(&self) -> Option<u32> {
        self.shares.pid()
    }

    /// The QMP connection.
    pub fn qmp(&mut self) -> Option<&mut Qmp> {
        self.qmp.as_mut()
    }

    /// How long start took until the agent answered.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// Whether QEMU has exited, and how.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.qemu.try_wait().ok().flatten()
    }

    /// QEMU's resident memory in KiB (`VmRSS`), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn reap_helper(&mut self) {
        if let Some(helper) = self.helper.as_mut() {
            kill_and_reap(helper);
        }
        self.shares.reap();
    }
}

impl VirtualMachine for QemuVm {
    fn vsock(&self) -> &VsockEndpoint {
        &self.endpoint
    }

    fn connector(&self) -> Arc<dyn Connector> {
        self.endpoint.connector()
    }

    fn agent(&self) -> Option<&AgentClient> {
        self.agent.as_ref()
    }

    fn console_log(&self) -> &Path {
        &self.console
    }

    fn console_tail(&self, lines: usize) -> String {
        tail(&self.console, lines)
    }

    async fn stop(&mut self, timeout: Duration) -> StopOutcome {
        if self.try_exit().is_none() {
            if let Some(agent) = &self.agent
                && agent.shutdown().await.is_ok()
                && self.wait_exit(timeout).await.is_some()
            {
                self.reap_helper();
                return StopOutcome::Graceful;
            }
            if let Some(qmp) = self.qmp.as_mut()
                && qmp.quit().is_ok()
                && self.wait_exit(Duration::from_secs(2)).await.is_some()
            {
                self.reap_helper();
                return StopOutcome::Quit;
            }
            kill_and_reap(&mut self.qemu);
            self.reap_helper();
            return StopOutcome::Killed;
        }
        self.reap_helper();
        StopOutcome::AlreadyStopped
    }

    async fn wait(&mut self) -> Option<ExitStatus> {
        loop {
            match self.qemu.try_wait() {
                Ok(Some(status)) => {
                    self.reap_helper();
                    return Some(status);
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => return None,
            }
        }
    }
}

impl Drop for QemuVm {
    fn drop(&mut self) {
        kill_and_reap(&mut self.qemu);
        self.reap_helper();
    }
}

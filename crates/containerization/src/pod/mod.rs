//! Pods: several containers in one VM, sharing its network address, its
//! hostname and its volumes, as Apple's `LinuxPod` and a Kubernetes pod.
//!
//! - [`LinuxPod`] is one pod. Its VM has no disk at boot, only a SCSI
//!   controller; the process that owns the VM ([`LinuxPod::run`]) attaches
//!   each container's disk while the VM runs, asked over a private control
//!   socket by the container's owner.
//! - A container joins a pod at create ([`crate::CreateOptions::pod`], or
//!   [`LinuxPod::add`]); it then starts, stops, execs and is removed as any
//!   [`crate::LinuxContainer`], while the pod and its other containers run
//!   on. Its first process runs in a cgroup of its own under the pod's.
//! - Its configuration and state live under `pods/<id>/` ([`PodStore`]).

pub(crate) mod control;
mod owner;
mod record;
mod store;

use std::sync::Arc;
use std::time::Duration;

pub use record::{PodConfig, PodState, PodStatus};
pub use store::PodStore;

use crate::container::{Inner, LinuxContainer, NetworkMode, now_ms};
use crate::host::HostResources;
use crate::network::PublishedPort;
use crate::{
    ContainerConfig, ContainerManager, ContainerState, CreateOptions, DEFAULT_NETWORK, Error,
};

/// What a new pod is made with.
#[derive(Debug, Clone, Default)]
pub struct PodOptions {
    /// A unique name; `None` gives the first 12 digits of the id.
    pub name: Option<String>,
    /// The hostname its containers share; `None` is the pod's name.
    pub hostname: Option<String>,
    /// Its network: `None` is [`DEFAULT_NETWORK`].
    pub network: Option<NetworkMode>,
    /// Ports to publish to the pod's address.
    pub ports: Vec<PublishedPort>,
    /// DNS servers; empty takes the host's.
    pub dns: Vec<std::net::IpAddr>,
    /// The guest kernel; `None` is the catalogue's default.
    pub kernel: Option<String>,
    /// CPUs of its VM (rounded up); `None` is the default.
    pub cpus: Option<f64>,
    /// Memory its containers may use together, in bytes; its VM gets this
    /// plus room for the guest kernel.
    pub memory_bytes: Option<u64>,
}

/// One pod: its configuration, its state, and in the process that runs it,
/// its VM.
///
/// ```no_run
/// use containerization::pod::PodOptions;
/// use containerization::{ContainerManager, CreateOptions, StateRoot, StdioConfig};
///
/// # async fn demo() -> Result<(), containerization::Error> {
/// let root = StateRoot::from_env()?;
/// let manager = ContainerManager::new(root.clone(), root.find_vminitd()?);
/// let pod = manager.create_pod(PodOptions { name: Some("web".into()), ..Default::default() }).await?;
/// // This process owns the pod's VM until the future given to `run` ends.
/// let owner = pod.clone();
/// let running = tokio::spawn(async move { owner.run(std::future::pending()).await });
/// // ... once `pod.state()?` says running, from this or any other process:
/// let mut options = CreateOptions { image: "docker.io/library/busybox:latest".into(), ..Default::default() };
/// options.container.process.args = vec!["true".into()];
/// let mut container = pod.add(options).await?;
/// container.start(StdioConfig::default()).await?;
/// assert_eq!(container.wait().await?.code, 0);
/// pod.stop(std::time::Duration::from_secs(10)).await?;
/// # let _ = running.await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LinuxPod {
    inner: Arc<Inner>,
    manager: ContainerManager,
    config: PodConfig,
}

impl std::fmt::Debug for LinuxPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxPod")
            .field("id", &self.config.id)
            .field("name", &self.config.name)
            .finish()
    }
}

impl LinuxPod {
    /// Its id.
    pub fn id(&self) -> &crate::ContainerId {
        &self.config.id
    }

    /// Its configuration.
    pub fn config(&self) -> &PodConfig {
        &self.config
    }

    /// Its state now; a pod whose owner died is reported stopped.
    pub fn state(&self) -> Result<PodState, Error> {
        Ok(self.inner.pods.state(&self.config.id)?.as_seen())
    }

    /// Where its owner writes its own errors.
    pub fn owner_log(&self) -> std::path::PathBuf {
        self.inner.pods.owner_log(&self.config.id)
    }

    /// Boots its VM and owns it (this process must live as long as the pod
    /// runs) until `stop` ends or [`Self::stop`] is called from anywhere;
    /// then kills what still runs in it, stops the VM and releases its
    /// network.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        owner::run(&self.inner, &self.config, stop).await
    }

    /// Its containers, oldest first.
    pub fn containers(&self) -> Result<Vec<(ContainerConfig, ContainerState)>, Error> {
        Ok(self
            .inner
            .store
            .list()?
            .into_iter()
            .filter(|(config, _)| config.pod.as_ref() == Some(&self.config.id))
            .collect())
    }

    /// Creates a container in this pod (see [`ContainerManager::create`]).
    pub async fn add(&self, mut options: CreateOptions) -> Result<LinuxContainer, Error> {
        options.pod = Some(self.config.id.to_string());
        self.manager.create(options).await
    }

    /// Stops it: each running container gets its stop signal, then SIGKILL
    /// after `timeout`; then the owner stops the VM. An owner that does not
    /// go is killed. Stopping a pod that is not running does nothing.
    pub async fn stop(&self, timeout: Duration) -> Result<(), Error> {
        let state = self.inner.pods.state(&self.config.id)?;
        if !state.is_running() {
            reap(&self.inner, &self.config).await;
            return Ok(());
        }
        // Its containers stop side by side, each with its own timeout.
        let mut running = Vec::new();
        for (config, state) in self.containers()? {
            if state.is_running() {
                running.push(LinuxContainer::new(Arc::clone(&self.inner), config));
            }
        }
        let stops = running.iter_mut().map(|container| async move {
            let name = container.config().name.clone();
            (name, container.stop(timeout).await)
        });
        for (name, result) in futures::future::join_all(stops).await {
            if let Err(error) = result {
                tracing::warn!(container = %name, %error, "a container of the pod did not stop");
            }
        }
        if let Some(socket) = &state.control {
            let _ = control::call(&self.config.name, socket, &control::Request::Stop).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.inner.pods.state(&self.config.id)?.owner_alive() {
            if tokio::time::Instant::now() >= deadline {
                if let Err(error) =
                    crate::container::owner::kill(state.owner_pid.unwrap_or(0), state.owner_start)
                {
                    tracing::warn!(%error, pod = %self.config.name, "cannot kill its owner");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        reap(&self.inner, &self.config).await;
        Ok(())
    }

    /// Removes it and its containers. A running pod is refused unless
    /// `force`, which stops it first (its containers killed at once).
    pub async fn delete(self, force: bool) -> Result<(), Error> {
        if self.state()?.is_running() {
            if !force {
                return Err(Error::PodState {
                    pod: self.config.name.clone(),
                    state: "running".to_owned(),
                    detail: "stop it first, or remove it with --force".to_owned(),
                });
            }
            self.stop(Duration::ZERO).await?;
        }
        for (config, _) in self.containers()? {
            let name = config.name.clone();
            LinuxContainer::new(Arc::clone(&self.inner), config)
                .delete(true)
                .await
                .map_err(|error| Error::PodState {
                    pod: self.config.name.clone(),
                    state: "being removed".to_owned(),
                    detail: format!("its container {name} cannot be removed: {error}"),
                })?;
        }
        self.inner.pods.remove(&self.config.id)
    }
}

/// Cleans up after the owner of pod `config` if it died while the pod ran:
/// its network released, its state stopped.
async fn reap(inner: &Inner, config: &PodConfig) {
    let Ok(state) = inner.pods.state(&config.id) else {
        return;
    };
    let stale = matches!(state.status, PodStatus::Running | PodStatus::Starting)
        || state.owner_pid.is_some();
    if stale && !state.owner_alive() {
        owner::finish(
            inner,
            config,
            None,
            Some("its owner process died".to_owned()),
        )
        .await;
    }
}

/// [`reap`] for every pod.
pub(crate) async fn reap_stale(inner: &Inner) {
    if let Ok(pods) = inner.pods.list() {
        for (config, _) in pods {
            reap(inner, &config).await;
        }
    }
}

/// Checks what a container joining pod `name` asks for: what the pod fixes
/// for all its containers (network, ports, DNS, kernel) cannot be given,
/// nor host paths (the pod's VM has no shares) or a foreign platform.
/// Returns the pod's configuration.
pub(crate) fn check_container_options(
    inner: &Inner,
    name: &str,
    options: &CreateOptions,
) -> Result<PodConfig, Error> {
    let id = inner.pods.lookup(name)?;
    let pod = inner.pods.config(&id)?;
    let refuse = |option: &str, detail: &str| {
        Err(Error::InvalidOption {
            option: option.to_owned(),
            detail: format!("{detail} (container in pod {})", pod.name),
        })
    };
    if options.network.is_some() {
        return refuse(
            "--network",
            "a pod's containers share its network; give it to `cctl pod create`",
        );
    }
    if !options.ports.is_empty() {
        return refuse(
            "--publish",
            "a pod's ports are published when it is created (`cctl pod create -p`)",
        );
    }
    if !options.dns.is_empty() {
        return refuse(
            "--dns",
            "a pod's containers share its DNS servers; give them to `cctl pod create`",
        );
    }
    if options.kernel.is_some() {
        return refuse("--kernel", "a pod's containers run on the pod's kernel");
    }
    if options
        .container
        .mounts
        .iter()
        .any(|m| matches!(m, crate::spec::Mount::Bind(_)))
    {
        return refuse(
            "--volume",
            "host paths cannot be mounted in a pod's containers yet (a VM's shared folders \
             are fixed when it boots); use a named volume",
        );
    }
    if let Some(platform) = &options.platform
        && !containerization_oci::Platform::host().runs(platform)
    {
        return refuse(
            "--platform",
            "a pod runs containers of the host's platform only",
        );
    }
    Ok(pod)
}

impl ContainerManager {
    /// Makes a pod (its VM starts with [`LinuxPod::run`]).
    pub async fn create_pod(&self, options: PodOptions) -> Result<LinuxPod, Error> {
        let inner = self.inner();
        let network = options
            .network
            .clone()
            .unwrap_or_else(|| NetworkMode::Network(DEFAULT_NETWORK.to_owned()));
        self.check_network(&network, &options.ports).await?;
        let id = crate::container::new_id()?;
        let name = match &options.name {
            Some(name) => crate::container::check_name(name)?,
            None => id.as_str()[..12].to_owned(),
        };
        let host = HostResources::detect();
        let vm_memory_mib =
            host.vm_memory_mib(options.memory_bytes)
                .map_err(|detail| Error::InvalidOption {
                    option: "--memory".to_owned(),
                    detail,
                })?;
        let vcpus = match options.cpus {
            Some(cpus) if cpus.ceil() as u32 > host.cpus => {
                return Err(Error::InvalidOption {
                    option: "--cpus".to_owned(),
                    detail: format!("{cpus} asked for, but this host has {} CPUs", host.cpus),
                });
            }
            Some(cpus) => (cpus.ceil() as u32).max(1),
            None => host.default_vcpus(),
        };
        if let Some(kernel) = &options.kernel {
            inner.root.kernels().get(kernel)?;
        }
        let config = PodConfig {
            id,
            hostname: options.hostname.clone().unwrap_or_else(|| name.clone()),
            name,
            network,
            ports: options.ports.clone(),
            dns: options.dns.clone(),
            kernel: options.kernel.clone(),
            vcpus,
            vm_memory_mib,
            created_ms: now_ms(),
        };
        inner.pods.create(&config)?;
        Ok(LinuxPod {
            inner: Arc::clone(inner),
            manager: self.clone(),
            config,
        })
    }

    /// The pod a user means by `name_or_id`.
    pub fn get_pod(&self, name_or_id: &str) -> Result<LinuxPod, Error> {
        let inner = self.inner();
        let id = inner.pods.lookup(name_or_id)?;
        Ok(LinuxPod {
            inner: Arc::clone(inner),
            manager: self.clone(),
            config: inner.pods.config(&id)?,
        })
    }

    /// Every pod with its state (as [`LinuxPod::state`] says it), oldest
    /// first.
    pub fn list_pods(&self) -> Result<Vec<(PodConfig, PodState)>, Error> {
        Ok(self
            .inner()
            .pods
            .list()?
            .into_iter()
            .map(|(config, state)| (config, state.as_seen()))
            .collect())
    }
}

//! [`ContainerManager`]: where containers are made from images and found
//! again by name or id.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerization_oci::layer::StoredLayer;
use containerization_oci::store::ImageStore;
use containerization_oci::{Digest, Platform};

use super::record::{
    BindUse, ContainerConfig, NetworkJoin, NetworkMode, PodTmpfs, VolumeUse, now_ms,
};
use super::sandbox::{GUEST_ROOTFS, etc_mounts};
use super::store::{ContainerStore, DamagedContainer, Record, new_id};
use super::{ContainerState, LinuxContainer};
use crate::host::HostResources;
use crate::network::{NetworkManager, PublishedPort};
use crate::rootfs::{RootfsCache, writable_clone};
use crate::volume::VolumeStore;
use crate::{Error, StateRoot, spec};
use containerization_vmm::MAX_SHARES;

/// The network containers join when none is named.
pub const DEFAULT_NETWORK: &str = "default";

/// What a new container is made from.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The image, as named in the image store (`cctl image ls`).
    pub image: String,
    /// The platform to take from a multi-platform image; `None` is the host's.
    pub platform: Option<Platform>,
    /// A unique name; `None` gives the first 12 digits of the id.
    pub name: Option<String>,
    /// The process and its limits (an empty hostname takes the first 12
    /// digits of the id, as Docker's does).
    pub container: spec::ContainerOptions,
    /// Its network: `None` is [`DEFAULT_NETWORK`].
    pub network: Option<NetworkMode>,
    /// Ports to publish.
    pub ports: Vec<PublishedPort>,
    /// DNS servers; empty takes the host's.
    pub dns: Vec<IpAddr>,
    /// The guest kernel; `None` is the catalogue's default.
    pub kernel: Option<String>,
    /// Remove the container when it exits.
    pub auto_remove: bool,
    /// Its root file system's changes are thrown away when it ends, by
    /// whoever removes it then (Docker's API service for `--rm`, which
    /// reads its output first): no flush and no clean power-off at the end,
    /// as with `auto_remove`, but its folder stays until removed.
    pub disposable: bool,
    /// Its first process reads standard input.
    pub interactive: bool,
    /// The pod to run it in (a name or id): it shares the pod's VM, network
    /// and hostname instead of booting a VM of its own.
    pub pod: Option<String>,
    /// Labels (`--label`), over the image's.
    pub labels: std::collections::BTreeMap<String, String>,
    /// When its first process starts again after it exits (`--restart`);
    /// refused with `auto_remove`, as Docker refuses it.
    pub restart: super::RestartPolicy,
    /// More names on its network (`--network-alias`): containers started
    /// after it on that network find it by them, as by its name.
    pub aliases: Vec<String>,
    /// More networks after `network` (Podman's repeated `--network`), each
    /// a network card of its own, with the more names it has there; its
    /// default route stays on the first.
    pub more_networks: Vec<NetworkJoin>,
}

/// The most networks one container joins (each is a network card of its
/// VM, and `microvm` has a few dozen device slots in all).
pub const MAX_NETWORKS: usize = 8;

/// The labels an image's config gives its containers.
fn image_labels(
    config: &oci_spec::image::ImageConfiguration,
) -> std::collections::BTreeMap<String, String> {
    config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .map(|labels| labels.into_iter().collect())
        .unwrap_or_default()
}

/// Removes the anonymous ones of `volumes`, once their container is gone;
/// one that cannot be removed is logged and left for `volume prune`.
pub(crate) fn remove_anonymous(store: &VolumeStore, volumes: &[VolumeUse]) {
    for volume in volumes.iter().filter(|v| v.anonymous) {
        if let Err(error) = store.remove(&volume.name) {
            tracing::warn!(volume = %volume.name, %error, "cannot remove an anonymous volume");
        }
    }
}

/// The host paths of `mounts`, checked as Docker checks them: a missing
/// `--mount type=bind` source is an error, a missing `-v` one is made as a
/// folder. At most [`MAX_SHARES`] (each is a 9p device of the VM).
fn host_binds(mounts: &[spec::Mount]) -> Result<Vec<BindUse>, Error> {
    let mut binds = Vec::new();
    for mount in mounts {
        let spec::Mount::Bind(bind) = mount else {
            continue;
        };
        let option = match bind.create_missing {
            true => "--volume",
            false => "--mount",
        };
        match std::fs::metadata(&bind.source) {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && bind.create_missing => {
                std::fs::create_dir_all(&bind.source).map_err(|source| Error::Io {
                    path: bind.source.clone(),
                    source,
                })?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::InvalidOption {
                    option: option.to_owned(),
                    detail: format!("bind source path does not exist: {}", bind.source.display()),
                });
            }
            Err(source) => {
                return Err(Error::Io {
                    path: bind.source.clone(),
                    source,
                });
            }
        }
        binds.push(BindUse {
            source: bind.source.clone(),
            read_only: bind.read_only,
        });
    }
    if binds.len() > MAX_SHARES {
        return Err(Error::InvalidOption {
            option: "--volume".to_owned(),
            detail: format!(
                "{} host paths asked for; a container can have at most {MAX_SHARES} \
                 (each is a 9p device of its VM)",
                binds.len()
            ),
        });
    }
    Ok(binds)
}

/// The pod tmpfs `mounts` name (`--mount type=tmpfs,source=NAME`), which
/// only a container in a pod (`in_pod`) can have.
fn shared_tmpfs(mounts: &[spec::Mount], in_pod: bool) -> Result<Vec<PodTmpfs>, Error> {
    let mut shared = Vec::new();
    for mount in mounts {
        if let spec::Mount::Tmpfs(tmpfs) = mount
            && let Some(name) = &tmpfs.shared
        {
            if !in_pod {
                return Err(Error::InvalidOption {
                    option: "--mount".to_owned(),
                    detail: format!(
                        "a tmpfs with a source ({name}) is shared by the containers of a pod: \
                         give --pod, or drop source= for a tmpfs of the container's own"
                    ),
                });
            }
            shared.push(PodTmpfs {
                name: name.clone(),
                size_bytes: tmpfs.size_bytes,
                mode: tmpfs.mode,
            });
        }
    }
    Ok(shared)
}

/// Refuses more named volumes than a VM's SCSI controller has targets:
/// each volume is a disk on it (one virtio slot for all of them).
fn check_volume_count(config: &ContainerConfig) -> Result<(), Error> {
    let most = usize::from(containerization_vmm::MAX_ATTACHED_DISKS);
    if config.volumes.len() > most {
        return Err(Error::InvalidOption {
            option: "--volume".to_owned(),
            detail: format!(
                "{} volumes asked for; a container can have at most {most} (each is a disk on \
                 its VM's SCSI controller, which has {most} targets)",
                config.volumes.len()
            ),
        });
    }
    Ok(())
}

pub(crate) struct Inner {
    pub root: StateRoot,
    pub vminitd: PathBuf,
    pub store: ContainerStore,
    pub rootfs: RootfsCache,
    pub pods: crate::pod::PodStore,
    pub ready_timeout: Duration,
    pub networks: tokio::sync::OnceCell<Option<NetworkManager>>,
}

impl Inner {
    /// The host's network manager, or `None` where netlink cannot be opened
    /// (not root).
    pub async fn networks(&self) -> Option<&NetworkManager> {
        self.networks
            .get_or_init(|| async {
                match containerization_netlink::Netlink::connect() {
                    Ok(netlink) => Some(NetworkManager::new(self.root.network_dir(), netlink)),
                    Err(error) => {
                        tracing::debug!(%error, "no host networking");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }
}

/// What a name or id a user gave stands for.
#[derive(Debug)]
pub enum Found {
    /// A container with readable records.
    Container(Box<LinuxContainer>),
    /// A container whose records cannot be read: it can only be removed.
    Damaged(Box<DamagedContainer>),
}

/// Makes, finds and lists containers under one state root.
///
/// ```no_run
/// use containerization::{ContainerManager, CreateOptions, StateRoot, StdioConfig};
///
/// # async fn demo() -> Result<(), containerization::Error> {
/// let root = StateRoot::from_env()?;
/// let vminitd = root.find_vminitd()?;
/// let manager = ContainerManager::new(root, vminitd);
/// let mut options = CreateOptions {
///     image: "docker.io/library/busybox:latest".into(),
///     auto_remove: true,
///     ..CreateOptions::default()
/// };
/// options.container.process.args = vec!["echo".into(), "hello".into()];
/// let mut container = manager.create(options).await?;
/// let stdio = StdioConfig { stdout: true, stderr: true, ..StdioConfig::default() };
/// let mut process = container.start(stdio).await?;
/// let _streams = process.take_streams();
/// let status = container.wait().await?;
/// assert_eq!(status.code, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ContainerManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ContainerManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerManager")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl ContainerManager {
    /// Containers under `root`, whose VMs run `vminitd` (the static guest
    /// agent) as PID 1.
    pub fn new(root: StateRoot, vminitd: impl Into<PathBuf>) -> Self {
        let store = ContainerStore::new(root.path().join("containers"), root.run_dir());
        let rootfs = root.rootfs();
        let pods = crate::pod::PodStore::new(root.path().join("pods"), root.run_dir());
        Self {
            inner: Arc::new(Inner {
                pods,
                root,
                vminitd: vminitd.into(),
                store,
                rootfs,
                ready_timeout: Duration::from_secs(90),
                networks: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The shared parts pods need.
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// The state root.
    pub fn root(&self) -> &StateRoot {
        &self.inner.root
    }

    /// The named volumes of this state root.
    pub fn volumes(&self) -> VolumeStore {
        VolumeStore::new(self.inner.root.path().join("volumes"))
    }

    /// Removes volume `name`, refused while any container (running or not)
    /// uses it, as Docker refuses: remove the containers first.
    pub fn remove_volume(&self, name: &str) -> Result<(), Error> {
        let users = self.inner.store.volume_users(name)?;
        if !users.is_empty() {
            let short: Vec<String> = users.iter().map(|id| id[..12].to_owned()).collect();
            return Err(Error::InvalidOption {
                option: "volume".to_owned(),
                detail: format!(
                    "volume {name} is in use by container(s) {}: remove them first",
                    short.join(", ")
                ),
            });
        }
        self.volumes().remove(name)
    }

    /// Removes every volume no container uses; their names.
    pub fn prune_volumes(&self) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for volume in self.volumes().list()? {
            if self.inner.store.volume_users(&volume.name)?.is_empty()
                && self.volumes().remove(&volume.name).is_ok()
            {
                removed.push(volume.name);
            }
        }
        Ok(removed)
    }

    /// The containers' folders.
    pub fn store(&self) -> &ContainerStore {
        &self.inner.store
    }

    /// Creates a container from an image in the image store: its base root
    /// file system built (once per image), its writable clone, its runtime
    /// spec from the image config and `options`, and its folder. The VM
    /// starts with [`LinuxContainer::start`].
    pub async fn create(&self, options: CreateOptions) -> Result<LinuxContainer, Error> {
        if options.auto_remove && !options.restart.is_no() {
            return Err(Error::InvalidOption {
                option: "--restart".to_owned(),
                detail: "a container removed when it exits (--rm) cannot be restarted: \
                         give one or the other"
                    .to_owned(),
            });
        }
        let images = ImageStore::open(self.inner.root.path())?;
        // The image's blobs stay until its base is built, whatever an
        // `image rm` running meanwhile does (its collection waits).
        let hold = images.content().hold_off_gc()?;
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let resolved = images.resolve(&options.image, &platform)?;
        let actual = Platform::new(
            &resolved.config.os().to_string(),
            &resolved.config.architecture().to_string(),
            resolved.config.variant().as_deref(),
        );
        // Docker warns and runs what it has.
        if options.platform.is_some() && !platform.runs(&actual) {
            tracing::warn!(
                "the image's platform ({actual}) does not match the requested platform \
                 ({platform}): {} is used as it is",
                options.image
            );
        }
        let manifest: Digest = resolved.manifest_descriptor.digest().to_string().parse()?;
        // A layer is read only to build the base, when it is not built yet.
        let base_built = self.inner.rootfs.path(&manifest).exists();
        let layers = StoredLayer::of_image(&resolved)?;
        if !base_built
            && let Some(missing) = layers
                .iter()
                .find(|layer| !images.content().contains(&layer.digest))
        {
            return Err(Error::Rootfs {
                image: options.image.clone(),
                detail: format!(
                    "its layer {} is missing from the image store: pull the image again \
                     (`cctl image pull {}`)",
                    missing.digest, options.image
                ),
            });
        }
        let pod = match &options.pod {
            Some(name) => Some(crate::pod::check_container_options(
                &self.inner,
                name,
                &options,
            )?),
            None => None,
        };
        let network = match (&options.network, &pod) {
            (_, Some(_)) => NetworkMode::None,
            (Some(mode), None) => mode.clone(),
            (None, None) => NetworkMode::Network(DEFAULT_NETWORK.to_owned()),
        };
        if pod.is_none() {
            self.check_network(&network, &options.ports).await?;
        }
        let more_networks = self.check_more_networks(&network, &options).await?;
        let id = new_id()?;
        let name = match &options.name {
            Some(name) => check_name(name)?,
            None => id.as_str()[..12].to_owned(),
        };
        let mut container_options = options.container.clone();
        // Docker's default hostname: the first 12 characters of the id,
        // whatever the name.
        // In a pod, the pod's.
        if container_options.hostname.is_empty() {
            container_options.hostname = match &pod {
                Some(pod) => pod.hostname.clone(),
                None => id.as_str()[..12].to_owned(),
            };
        }
        let host = HostResources::detect();
        let vm_memory_mib =
            host.vm_memory_mib(container_options.memory_bytes)
                .map_err(|detail| Error::InvalidOption {
                    option: "--memory".to_owned(),
                    detail,
                })?;
        let vcpus = match container_options.cpus {
            Some(cpus) => {
                let wanted = cpus.ceil().max(1.0) as u32;
                if wanted > host.cpus {
                    return Err(Error::InvalidOption {
                        option: "--cpus".to_owned(),
                        detail: format!("{cpus} asked for, but this host has {} CPUs", host.cpus),
                    });
                }
                wanted
            }
            // Docker shows a container every CPU of its host.
            None => host.default_vcpus(),
        };
        let binds = host_binds(&container_options.mounts)?;
        let pod_tmpfs = shared_tmpfs(&container_options.mounts, pod.is_some())?;
        let host_env = |key: &str| std::env::var(key).ok();
        let runtime = spec::container_spec(&resolved.config, &container_options, &host_env)?;
        let mut spec_json = serde_json::to_value(&runtime).map_err(|e| Error::InvalidOption {
            option: "runtime spec".to_owned(),
            detail: e.to_string(),
        })?;
        spec_json["root"]["path"] = GUEST_ROOTFS.into();
        if let Some(mounts) = spec_json["mounts"].as_array_mut()
            && let Some(extra) = etc_mounts().as_array()
        {
            mounts.extend(extra.iter().cloned());
        }
        let stop_signal = spec::stop_signal(&resolved.config)
            .map(|name| parse_signal(&name))
            .transpose()?
            .unwrap_or(15);
        let mut volumes = Vec::new();
        for mount in &container_options.mounts {
            if let spec::Mount::Volume(volume) = mount {
                volumes.push(VolumeUse {
                    // An anonymous volume gets a name like an id, as Docker
                    // names one.
                    name: match &volume.name {
                        Some(name) => name.clone(),
                        None => new_id()?.to_string(),
                    },
                    read_only: volume.read_only,
                    anonymous: volume.name.is_none(),
                });
            }
        }
        let config = ContainerConfig {
            id: id.clone(),
            name,
            image: options.image.clone(),
            manifest: manifest.to_string(),
            spec: spec_json,
            stop_signal,
            network,
            ports: options.ports.clone(),
            dns: options.dns.clone(),
            kernel: options.kernel.clone(),
            // A pod's container has its pod's VM (its own limits are its
            // cgroup's, in the spec).
            vcpus: pod.as_ref().map_or(vcpus, |pod| pod.vcpus),
            vm_memory_mib: pod.as_ref().map_or(vm_memory_mib, |pod| pod.vm_memory_mib),
            read_only: container_options.read_only,
            auto_remove: options.auto_remove,
            disposable: options.disposable,
            terminal: container_options.process.terminal,
            interactive: options.interactive,
            created_ms: now_ms(),
            platform: Some(actual),
            volumes,
            binds,
            pod: pod.as_ref().map(|pod| pod.id.clone()),
            pod_tmpfs,
            labels: image_labels(&resolved.config)
                .into_iter()
                .chain(options.labels.clone())
                .collect(),
            restart: options.restart,
            aliases: options.aliases.clone(),
            more_networks,
        };
        check_volume_count(&config)?;
        // A platform that cannot run here is refused before anything is
        // made; only a foreign one needs the kernel's configuration.
        let named_kernel = match &config.kernel {
            Some(name) => Some(self.inner.root.kernels().get(name)?),
            None => None,
        };
        if !super::sandbox::runs_natively(&config) {
            let kernel = match named_kernel {
                Some(kernel) => kernel,
                None => self.inner.root.kernels().default_kernel()?.0,
            };
            if let Some(emulator) = super::sandbox::emulator(&config, &kernel)? {
                emulator.initramfs_file()?;
            }
        }
        // Volumes are made on first use, as Docker makes them.
        for volume in &config.volumes {
            self.volumes().create(&volume.name)?;
        }
        let rootfs = self.inner.rootfs.clone();
        let content = images.content().clone();
        let base = tokio::task::spawn_blocking(move || rootfs.base(&manifest, &content, &layers))
            .await
            .map_err(|e| Error::Rootfs {
                image: options.image.clone(),
                detail: e.to_string(),
            })??;
        self.inner.store.create(&config)?;
        // The record names the manifest now, which keeps its base.
        drop(hold);
        let disk = self.inner.store.disk(&id);
        let made = if config.read_only {
            std::os::unix::fs::symlink(&base, &disk).map_err(|source| Error::Io {
                path: disk.clone(),
                source,
            })
        } else {
            writable_clone(&base, &disk).map(drop)
        };
        if let Err(error) = made {
            let _ = self.inner.store.remove(&id);
            return Err(error);
        }
        tracing::debug!(id = %config.id, "container created");
        Ok(LinuxContainer::new(Arc::clone(&self.inner), config))
    }

    /// Gives the container `name_or_id` names the name `name` (Docker's
    /// rules: letters, digits, `_`, `.`, `-`; not one another container
    /// has). Its VM, running or not, is not touched.
    pub fn rename(&self, name_or_id: &str, name: &str) -> Result<(), Error> {
        let name = check_name(name)?;
        let container = self.get(name_or_id)?;
        self.inner.store.rename(container.id(), &name)
    }

    /// Puts a container that is not running on `network` too (Docker's
    /// `network connect`), known there by `aliases` as well: its first
    /// network when it has none, a card of its own after the others
    /// otherwise. A network that does not exist is refused, and so is a
    /// running container: its VM's network cards are chosen when it boots,
    /// and `microvm` has no hotplug. So is a pod's container, which has its
    /// pod's network.
    ///
    /// ```no_run
    /// use containerization::{ContainerManager, StateRoot};
    ///
    /// # async fn demo() -> Result<(), containerization::Error> {
    /// let root = StateRoot::from_env()?;
    /// let manager = ContainerManager::new(root.clone(), root.find_vminitd()?);
    /// manager.connect_network("web", "backend", vec!["api".into()]).await?;
    /// manager.disconnect_network("web", "default")?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_network(
        &self,
        name_or_id: &str,
        network: &str,
        aliases: Vec<String>,
    ) -> Result<(), Error> {
        self.check_network(&NetworkMode::Network(network.to_owned()), &[])
            .await?;
        self.change_networks(name_or_id, |config| {
            if config.joins(network) {
                return Err(Error::InvalidOption {
                    option: "network".to_owned(),
                    detail: format!("{} is already on network {network}", config.name),
                });
            }
            match config.network {
                NetworkMode::None => {
                    config.network = NetworkMode::Network(network.to_owned());
                    config.aliases = aliases;
                }
                NetworkMode::Network(_) => {
                    if config.joined_networks().len() >= MAX_NETWORKS {
                        return Err(Error::InvalidOption {
                            option: "network".to_owned(),
                            detail: format!(
                                "{} is on {MAX_NETWORKS} networks, the most a container joins",
                                config.name
                            ),
                        });
                    }
                    config.more_networks.push(NetworkJoin {
                        name: network.to_owned(),
                        aliases,
                    });
                }
            }
            Ok(())
        })
    }

    /// Takes a container that is not running off `network` (Docker's
    /// `network disconnect`): the next of its networks becomes its first,
    /// or it is left on none. Refused as [`Self::connect_network`] is, and
    /// with [`Error::NotAttached`] for a network it is not on.
    pub fn disconnect_network(&self, name_or_id: &str, network: &str) -> Result<(), Error> {
        self.change_networks(name_or_id, |config| {
            if !config.joins(network) {
                return Err(Error::NotAttached {
                    container: config.name.clone(),
                    network: network.to_owned(),
                });
            }
            if let Some(index) = config.more_networks.iter().position(|j| j.name == network) {
                config.more_networks.remove(index);
            } else if config.more_networks.is_empty() {
                config.network = NetworkMode::None;
                config.aliases = Vec::new();
            } else {
                let next = config.more_networks.remove(0);
                config.network = NetworkMode::Network(next.name);
                config.aliases = next.aliases;
            }
            Ok(())
        })
    }

    /// Changes the networks of a container that is not running and not in
    /// a pod with `change`, under its state lock.
    fn change_networks(
        &self,
        name_or_id: &str,
        change: impl FnOnce(&mut ContainerConfig) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let container = self.get(name_or_id)?;
        let name = container.config().name.clone();
        if container.config().pod.is_some() {
            return Err(Error::InvalidOption {
                option: "network".to_owned(),
                detail: format!("{name} is in a pod: it has its pod's network"),
            });
        }
        let allowed =
            |state: &super::ContainerState| match state.is_running() || state.owner_alive() {
                true => Err(Error::InvalidState {
                    container: name.clone(),
                    state: "running".to_owned(),
                    detail: "its VM's network cards are chosen when it boots (microvm has no \
                         hotplug): stop it, change its networks, start it"
                        .to_owned(),
                }),
                false => Ok(()),
            };
        self.inner
            .store
            .change_config(container.id(), allowed, change)
    }

    /// The container a user means by `name_or_id` (a name, an id or an id's
    /// unique prefix); a damaged one is [`Error::ContainerDamaged`].
    pub fn get(&self, name_or_id: &str) -> Result<LinuxContainer, Error> {
        match self.find(name_or_id)? {
            Found::Container(container) => Ok(*container),
            Found::Damaged(damaged) => Err(Error::ContainerDamaged {
                id: damaged.id.to_string(),
                detail: damaged.problem.clone(),
            }),
        }
    }

    /// The container a user means by `name_or_id`, sound or damaged.
    pub fn find(&self, name_or_id: &str) -> Result<Found, Error> {
        let id = self.inner.store.lookup(name_or_id)?;
        match self.inner.store.record(&id) {
            Record::Sound(config, _) => Ok(Found::Container(Box::new(LinuxContainer::new(
                Arc::clone(&self.inner),
                config,
            )))),
            Record::Damaged(damaged) => Ok(Found::Damaged(Box::new(damaged))),
            Record::InFlux => Err(Error::ContainerNotFound(name_or_id.to_owned())),
        }
    }

    /// Removes the container a user means by `name_or_id` (see
    /// [`LinuxContainer::delete`]); a damaged one goes with what it held
    /// released as far as can be known, its live owner killed only with
    /// `force`.
    pub async fn remove(&self, name_or_id: &str, force: bool) -> Result<(), Error> {
        self.remove_with_volumes(name_or_id, force, false).await
    }

    /// [`Self::remove`], and with `anonymous_volumes` the container's
    /// anonymous volumes too (`docker rm -v`).
    pub async fn remove_with_volumes(
        &self,
        name_or_id: &str,
        force: bool,
        anonymous_volumes: bool,
    ) -> Result<(), Error> {
        match self.find(name_or_id)? {
            Found::Container(container) => {
                let volumes = container.config().volumes.clone();
                container.delete(force).await?;
                if anonymous_volumes {
                    remove_anonymous(&self.volumes(), &volumes);
                }
                Ok(())
            }
            Found::Damaged(damaged) => super::damaged::remove(&self.inner, &damaged, force).await,
        }
    }

    /// Every container with its state, oldest first (damaged ones are in
    /// [`Self::list_damaged`]).
    pub fn list(&self) -> Result<Vec<(ContainerConfig, ContainerState)>, Error> {
        self.inner.store.list()
    }

    /// Every container whose records cannot be read (Docker's `Dead`).
    pub fn list_damaged(&self) -> Result<Vec<DamagedContainer>, Error> {
        self.inner.store.list_damaged()
    }

    /// Cleans up after containers whose owner died while they ran (a
    /// foreground `cctl run` that was killed, say): their network is
    /// released, their state says exited (137), and auto-remove ones go.
    /// One container that cannot be cleaned up is logged and left for its
    /// own commands to report: it never blocks commands on the others.
    pub async fn reap_stale(&self) -> Result<(), Error> {
        crate::pod::reap_stale(&self.inner).await;
        for (config, state) in self.inner.store.list()? {
            let stale = matches!(
                state.status,
                super::Status::Running | super::Status::Starting
            ) || state.owner_pid.is_some();
            // Running or not, a live owner is still in charge of it.
            if stale && !state.owner_alive() {
                let (id, name) = (config.id.clone(), config.name.clone());
                let reaped = LinuxContainer::new(Arc::clone(&self.inner), config)
                    .reap_stale(137)
                    .await;
                if let Err(error) = reaped {
                    tracing::warn!(%id, %name, %error, "cannot clean up after a dead owner");
                }
            }
        }
        Ok(())
    }

    /// The more networks `options` names, each checked as the first one is:
    /// none with no first network, in a pod, twice or past
    /// [`MAX_NETWORKS`].
    async fn check_more_networks(
        &self,
        first: &NetworkMode,
        options: &CreateOptions,
    ) -> Result<Vec<NetworkJoin>, Error> {
        if options.more_networks.is_empty() {
            return Ok(Vec::new());
        }
        let refuse = |detail: String| Error::InvalidOption {
            option: "--network".to_owned(),
            detail,
        };
        let NetworkMode::Network(first) = first else {
            return Err(refuse(
                "a container on network none or in a pod joins no other network".to_owned(),
            ));
        };
        if options.pod.is_some() {
            return Err(refuse("a pod's container has its pod's network".to_owned()));
        }
        let mut joined = vec![first.as_str()];
        for join in &options.more_networks {
            if joined.contains(&join.name.as_str()) {
                return Err(refuse(format!("network {} is named twice", join.name)));
            }
            joined.push(&join.name);
        }
        if joined.len() > MAX_NETWORKS {
            return Err(refuse(format!(
                "{} networks asked for; a container joins at most {MAX_NETWORKS}",
                joined.len()
            )));
        }
        for join in &options.more_networks {
            self.check_network(&NetworkMode::Network(join.name.clone()), &[])
                .await?;
        }
        Ok(options.more_networks.clone())
    }

    /// Refuses an unknown network, or one that cannot be used here, before
    /// anything is made; makes the default network on first use.
    pub(crate) async fn check_network(
        &self,
        network: &NetworkMode,
        ports: &[PublishedPort],
    ) -> Result<(), Error> {
        let NetworkMode::Network(name) = network else {
            if !ports.is_empty() {
                return Err(Error::InvalidOption {
                    option: "--publish".to_owned(),
                    detail: "ports cannot be published without a network".to_owned(),
                });
            }
            return Ok(());
        };
        let Some(networks) = self.inner.networks().await else {
            return Err(Error::InvalidNetwork(format!(
                "network {name:?} needs root (bridges and taps); use --network none"
            )));
        };
        match networks.get(name) {
            Ok(_) => Ok(()),
            Err(Error::NetworkNotFound(_)) if name == DEFAULT_NETWORK => {
                match networks.create(DEFAULT_NETWORK, None, None).await {
                    Ok(_) | Err(Error::NetworkExists(_)) => Ok(()),
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }
}

/// Docker's rule for names: a letter or digit, then letters, digits, `_`,
/// `.` or `-`.
pub(crate) fn check_name(name: &str) -> Result<String, Error> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128;
    if ok {
        Ok(name.to_owned())
    } else {
        Err(Error::InvalidOption {
            option: "--name".to_owned(),
            detail: format!(
                "{name:?}: use letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
        })
    }
}

/// A signal by name (`SIGTERM`, `TERM`) or number.
pub fn parse_signal(text: &str) -> Result<i32, Error> {
    const NAMES: [(&str, i32); 17] = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("CONT", 18),
        ("STOP", 19),
    ];
    let upper = text.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Ok(number) = bare.parse::<i32>()
        && (1..=64).contains(&number)
    {
        return Ok(number);
    }
    NAMES
        .iter()
        .find(|(name, _)| *name == bare)
        .map(|(_, number)| *number)
        .ok_or_else(|| Error::InvalidOption {
            option: "signal".to_owned(),
            detail: format!("{text:?} is not a signal; use a name such as SIGTERM or a number"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(check_name("web_1.a-b").is_ok());
        assert!(check_name("-web").is_err());
        assert!(check_name("a/b").is_err());
    }
}

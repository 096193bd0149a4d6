//! A container's VM, from nothing to a guest ready for its process: a tap on
//! its network, QEMU with the kernel, the initramfs and the container's disk,
//! then, through the agent, the root file system mounted, eth0 configured and
//! the container's `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname`
//! written where the runtime spec bind-mounts them from.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerization_agent::AgentClient;
use containerization_agent::proto::v1::{
    ConfigureDnsRequest, ConfigureHostsRequest, ConfigureInterfaceRequest, FillVolumeRequest,
    HostsEntry, InterfaceSelector, LinkSetRequest, MountRequest, WriteFileRequest,
};
use containerization_vmm::{
    DiskConfig, Kernel, NicConfig, Qemu, QemuVm, SHARE_TAG, ShareConfig, ShareTransport,
    TemplateCache, VirtualMachine, VmConfig, VsockBackend, VsockEndpoint, build_initramfs_with,
    template_mac,
};

use super::record::{ContainerConfig, NetworkMode};
use crate::emulation::{Emulator, emulator_for, kernel_runs_32_bit};
use crate::network::{Attachment, Endpoint, NetworkManager};
use crate::volume::{VolumeLease, VolumeStore};
use crate::{ContainerId, Error, StateRoot, spec};
use containerization_oci::Platform;

/// Where the container's disk is mounted in the guest.
pub(crate) const GUEST_ROOTFS: &str = "/run/cz/rootfs";
/// The folder whose `etc/` holds the container's resolv.conf, hosts and
/// hostname in the guest.
pub(crate) const GUEST_ETC_ROOT: &str = "/run/cz/files";

/// What a running container's VM is made of.
pub(crate) struct Sandbox {
    /// The VM.
    pub vm: QemuVm,
    /// Its agent.
    pub agent: AgentClient,
    /// Its places on its networks, its first network's first (eth0).
    pub attachments: Vec<Attachment>,
    /// Its volumes, held while the VM runs.
    pub _volumes: Vec<VolumeLease>,
}

impl Sandbox {
    /// The hybrid vsock socket other processes reach the agent through.
    pub fn vsock_socket(&self) -> Option<PathBuf> {
        match self.vm.vsock() {
            VsockEndpoint::Hybrid(path) => Some(path.clone()),
            VsockEndpoint::Cid(_) => None,
        }
    }
}

/// What booting needs from the manager.
pub(crate) struct BootContext<'a> {
    pub root: &'a StateRoot,
    pub vminitd: &'a Path,
    pub networks: Option<&'a NetworkManager>,
    pub ready_timeout: Duration,
}

/// Boots container `config`'s VM on `disk` with its run folder `vm_dir`.
/// Nothing is left behind on error: the tap goes back and QEMU is killed.
pub(crate) async fn boot(
    context: &BootContext<'_>,
    config: &ContainerConfig,
    disk: &Path,
    vm_dir: &Path,
) -> Result<Sandbox, Error> {
    let attachments = attach_networks(context.networks, config).await?;
    let volumes = match lease_volumes(context, config) {
        Ok(volumes) => volumes,
        Err(error) => {
            detach_all(context.networks, &attachments, &config.id).await;
            return Err(error);
        }
    };
    match start_vm(context, config, disk, vm_dir, &attachments).await {
        Ok((vm, agent)) => Ok(Sandbox {
            vm,
            agent,
            attachments,
            _volumes: volumes,
        }),
        Err(error) => {
            detach_all(context.networks, &attachments, &config.id).await;
            Err(error)
        }
    }
}

/// A tap on each network container `config` joins, its first network's
/// first (its ports are published there); none without a network. Nothing
/// is left behind on error.
async fn attach_networks(
    networks: Option<&NetworkManager>,
    config: &ContainerConfig,
) -> Result<Vec<Attachment>, Error> {
    let mut attachments = Vec::new();
    for (index, (name, _)) in config.joined_networks().into_iter().enumerate() {
        let ports = match index {
            0 => config.ports.as_slice(),
            _ => &[],
        };
        let mode = NetworkMode::Network(name.to_owned());
        match attach_network(networks, &mode, &config.id, ports).await {
            Ok(attachment) => attachments.extend(attachment),
            Err(error) => {
                detach_all(networks, &attachments, &config.id).await;
                return Err(error);
            }
        }
    }
    Ok(attachments)
}

/// Gives back what [`attach_networks`] took after a failed start.
async fn detach_all(
    networks: Option<&NetworkManager>,
    attachments: &[Attachment],
    id: &ContainerId,
) {
    let Some(networks) = networks else {
        return;
    };
    for attachment in attachments {
        if let Err(more) = networks.detach(&attachment.network, id).await {
            tracing::warn!(%more, network = attachment.network, "releasing a network after a failed start");
        }
    }
}

/// A tap on `network` for VM `id`, with `ports` published to it; `None`
/// without a network.
pub(crate) async fn attach_network(
    networks: Option<&NetworkManager>,
    network: &NetworkMode,
    id: &ContainerId,
    ports: &[crate::network::PublishedPort],
) -> Result<Option<Attachment>, Error> {
    match (network, networks) {
        (NetworkMode::None, _) => Ok(None),
        (NetworkMode::Network(name), Some(networks)) => {
            Ok(Some(networks.attach(name, id, Endpoint::Tap, ports).await?))
        }
        (NetworkMode::Network(name), None) => Err(Error::InvalidNetwork(format!(
            "network {name:?} needs host networking, which needs root"
        ))),
    }
}

/// Holds each of the container's volumes (one writer or many readers).
fn lease_volumes(
    context: &BootContext<'_>,
    config: &ContainerConfig,
) -> Result<Vec<VolumeLease>, Error> {
    let store = VolumeStore::new(context.root.path().join("volumes"));
    config
        .volumes
        .iter()
        .map(|volume| store.lease(&volume.name, volume.read_only))
        .collect()
}

async fn start_vm(
    context: &BootContext<'_>,
    config: &ContainerConfig,
    disk: &Path,
    vm_dir: &Path,
    attachments: &[Attachment],
) -> Result<(QemuVm, AgentClient), Error> {
    let started = std::time::Instant::now();
    let kernel = kernel_named(context.root, config.kernel.as_deref())?;
    let emulator = emulator(config, &kernel)?;
    let extras = match emulator {
        Some(emulator) => vec![emulator.initramfs_file()?],
        None => Vec::new(),
    };
    let mut vm_config = base_vm_config(
        context,
        kernel,
        &extras,
        vm_dir,
        (config.vcpus, config.vm_memory_mib),
        attachments,
    )?;
    // `CZ_ATTACHABLE_DISKS=1` gives the VM the SCSI controller pods use even
    // without volumes: what the mechanism costs a single container is
    // measured with it (`bench/pods/run`).
    vm_config.attachable_disks = std::env::var("CZ_ATTACHABLE_DISKS").is_ok_and(|v| v == "1");
    let mut disk_config = DiskConfig::new(disk);
    if config.read_only {
        disk_config = disk_config.read_only();
    }
    vm_config.disks.push(disk_config);
    let volumes = VolumeStore::new(context.root.path().join("volumes"));
    for volume in &config.volumes {
        let found = volumes
            .get(&volume.name)?
            .ok_or_else(|| Error::InvalidOption {
                option: "volume".to_owned(),
                detail: format!("volume {} no longer exists: create it again", volume.name),
            })?;
        let mut disk = DiskConfig::new(&found.disk).on_scsi();
        if volume.read_only {
            disk = disk.read_only();
        }
        vm_config.disks.push(disk);
    }
    vm_config.shares = config
        .binds
        .iter()
        .map(|bind| {
            let share = ShareConfig::new(&bind.source);
            match bind.read_only {
                true => share.read_only(),
                false => share,
            }
        })
        .collect();
    let transport = vm_config.share_transport;
    tracing::debug!(since_start = ?started.elapsed(), "VM configured");
    let (vm, agent) = start_from_template(context, &vm_config, attachments).await?;
    tracing::debug!(since_start = ?started.elapsed(), "agent ready");
    if let Some(emulator) = emulator {
        emulator.register(&agent).await?;
    }
    let peers = network_peers(context.root, config);
    prepare_guest(&agent, config, attachments, transport, &peers).await?;
    tracing::debug!(since_start = ?started.elapsed(), "guest prepared");
    Ok((vm, agent))
}

/// The catalogue's kernel `name`, or its default.
pub(crate) fn kernel_named(root: &StateRoot, name: Option<&str>) -> Result<Kernel, Error> {
    let catalogue = root.kernels();
    Ok(match name {
        Some(name) => catalogue.get(name)?,
        None => catalogue.default_kernel()?.0,
    })
}

/// What every VM of this state root starts from: `kernel` with the
/// initramfs of vminitd (and `extras`), its run folder `vm_dir`, `cpus`
/// (no more than the kernel brings up: more would only cost host threads)
/// and memory in MiB, and a NIC for each of `attachments`. `CZ_GUEST_LOG=debug`
/// (a tracing filter) turns up vminitd's log in the console log.
pub(crate) fn base_vm_config(
    context: &BootContext<'_>,
    kernel: Kernel,
    extras: &[containerization_vmm::InitramfsFile],
    vm_dir: &Path,
    (cpus, memory_mib): (u32, u32),
    attachments: &[Attachment],
) -> Result<VmConfig, Error> {
    let initramfs = build_initramfs_with(
        &kernel,
        context.vminitd,
        extras,
        &context.root.path().join("initramfs"),
    )?;
    let (vsock, _) = VsockBackend::detect(context.root.tools_bin().join("vhost-device-vsock"));
    let mut vm_config = VmConfig::new(kernel, initramfs, vm_dir, vsock);
    vm_config.cpus = match vm_config.kernel.max_cpus() {
        Some(max) if max < cpus => {
            tracing::debug!(wanted = cpus, max, "kernel brings up fewer CPUs");
            max.max(1)
        }
        _ => cpus,
    };
    if let Ok(filter) = std::env::var("CZ_GUEST_LOG")
        && !filter.is_empty()
        && !filter.contains(char::is_whitespace)
    {
        vm_config.cmdline.push(format!("VMINITD_LOG={filter}"));
    }
    vm_config.memory_mib = memory_mib;
    vm_config.nics = attachments
        .iter()
        .map(|attachment| NicConfig {
            tap: attachment.device.clone(),
            mac: attachment.mac,
        })
        .collect();
    Ok(vm_config)
}

/// Starts `vm_config`'s VM, restored from its template when there is one
/// (made first when not), and makes a restored guest its own (see
/// [`reset_restored_guest`]); the VM and its agent.
pub(crate) async fn start_from_template(
    context: &BootContext<'_>,
    vm_config: &VmConfig,
    attachments: &[Attachment],
) -> Result<(QemuVm, AgentClient), Error> {
    let templates = TemplateCache::new(context.root.path().join("templates"));
    let (vm, origin) = templates
        .start(&Qemu::new(context.ready_timeout), vm_config)
        .await?;
    tracing::debug!(?origin, "VM started");
    let agent = vm.agent().cloned().ok_or_else(|| {
        Error::Vmm(containerization_vmm::VmmError::Qmp {
            message: "the VM started without an agent".to_owned(),
        })
    })?;
    if origin.restored() {
        reset_restored_guest(&agent, attachments).await?;
    }
    Ok((vm, agent))
}

/// The emulator container `config`'s image needs under `kernel`, if any.
pub(crate) fn emulator(
    config: &ContainerConfig,
    kernel: &Kernel,
) -> Result<Option<&'static Emulator>, Error> {
    match &config.platform {
        // The common case reads no kernel configuration.
        Some(platform) if !runs_natively(config) => {
            emulator_for(&Platform::host(), platform, kernel_runs_32_bit(kernel))
        }
        _ => Ok(None),
    }
}

/// Whether the host runs container `config`'s image without an emulator
/// (records made before the platform was kept run natively).
pub(crate) fn runs_natively(config: &ContainerConfig) -> bool {
    config
        .platform
        .as_ref()
        .is_none_or(|platform| Platform::host().runs(platform))
}

/// What a guest restored from a template shares with the template and
/// every other VM restored from it, made its own: fresh host randomness
/// into its random generator (reseeded), the host's wall clock, and each
/// card's MAC (card `i` has the template's, [`template_mac`]`(i)`, which
/// finds it).
pub(crate) async fn reset_restored_guest(
    agent: &AgentClient,
    attachments: &[Attachment],
) -> Result<(), Error> {
    let mut entropy = vec![0u8; 64];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut entropy))
        .map_err(|source| Error::Io {
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
    let entropy = agent.add_entropy(entropy);
    let clock = agent.set_time(std::time::SystemTime::now());
    let macs = attachments.iter().enumerate().map(|(index, attachment)| {
        agent.link_set(LinkSetRequest {
            interface: Some(InterfaceSelector::by_mac(template_mac(index))),
            mac: attachment.mac.to_string(),
            ..Default::default()
        })
    });
    let macs = futures::future::try_join_all(macs);
    let (entropy, clock, macs) = tokio::join!(entropy, clock, macs);
    entropy?;
    clock?;
    macs?;
    Ok(())
}

/// The containers running on the networks `config` joins, each with its
/// address there and the names it answers to there (its name, its short
/// id, its aliases on that network): its `/etc/hosts` lists them, so it
/// finds them by name, as Docker's embedded DNS lets it (`neighbours`
/// writes it again as others start and end). Its first network's come
/// first.
pub(crate) fn network_peers(
    root: &StateRoot,
    config: &ContainerConfig,
) -> Vec<(IpAddr, Vec<String>)> {
    let networks = config.joined_networks();
    if networks.is_empty() {
        return Vec::new();
    }
    let store = super::ContainerStore::new(root.path().join("containers"), root.run_dir());
    let running: Vec<_> = store
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|(peer, state)| peer.id != config.id && state.is_running())
        .collect();
    let mut peers = Vec::new();
    for (network, _) in networks {
        for (peer, state) in &running {
            let Some(aliases) = peer
                .joined_networks()
                .into_iter()
                .find_map(|(name, aliases)| (name == network).then_some(aliases))
            else {
                continue;
            };
            let Some(address) = state.address_on(peer, network) else {
                continue;
            };
            let short: String = peer.id.as_str().chars().take(12).collect();
            let mut names = vec![peer.name.clone(), short];
            names.extend(aliases.iter().cloned());
            peers.push((address, names));
        }
    }
    peers
}

/// Mounts the disk, configures the network cards, and writes the files the
/// spec binds.
async fn prepare_guest(
    agent: &AgentClient,
    config: &ContainerConfig,
    attachments: &[Attachment],
    transport: ShareTransport,
    peers: &[(IpAddr, Vec<String>)],
) -> Result<(), Error> {
    let mount = async {
        mount_rootfs(agent, config.read_only).await?;
        mount_volumes(agent, config).await?;
        fill_new_volumes(agent, config).await?;
        mount_shares(agent, config, transport).await
    };
    let network = configure_interfaces(agent, attachments);
    let hostname = config.spec["hostname"].as_str().unwrap_or_default();
    let files = write_etc_files(agent, hostname, &config.dns, attachments.first(), peers);
    let (mounted, networked, written) = tokio::join!(mount, network, files);
    mounted?;
    networked?;
    written
}

/// Gives each of the guest's cards (found by its MAC) its address; the
/// first card's network has the default route, the others reach only their
/// own subnets, as Docker routes a container on several networks.
pub(crate) async fn configure_interfaces(
    agent: &AgentClient,
    attachments: &[Attachment],
) -> Result<(), Error> {
    let configured = attachments.iter().enumerate().map(|(index, attachment)| {
        agent.configure_interface(ConfigureInterfaceRequest {
            interface: Some(InterfaceSelector::by_mac(attachment.mac)),
            address: attachment.address.to_string(),
            mtu: 1500,
            gateway: match index {
                0 => attachment.gateway.to_string(),
                _ => String::new(),
            },
        })
    });
    futures::future::try_join_all(configured).await?;
    Ok(())
}

/// How long the guest may take to show a volume's disk.
pub(crate) const VOLUME_DISK_WAIT: Duration = Duration::from_secs(10);

/// Mounts each volume's disk (the SCSI disk at the volume's index) where
/// the container's spec binds it from.
async fn mount_volumes(agent: &AgentClient, config: &ContainerConfig) -> Result<(), Error> {
    for (index, volume) in config.volumes.iter().enumerate() {
        let target = u16::try_from(index).map_err(|_| Error::InvalidOption {
            option: "--volume".to_owned(),
            detail: format!(
                "volume {} is past the SCSI controller's targets",
                volume.name
            ),
        })?;
        let device = agent.find_disk(target, VOLUME_DISK_WAIT).await?;
        let options: &[&str] = match volume.read_only {
            true => &["ro", "noatime"],
            false => &["noatime", "discard"],
        };
        let mounted = agent
            .mount(MountRequest {
                source: device,
                target: spec::guest_volume_path(index),
                fstype: "ext4".into(),
                options: options.iter().map(|o| (*o).to_owned()).collect(),
                create_target: true,
                ..Default::default()
            })
            .await;
        match mounted {
            Ok(()) => {}
            // A journal to replay cannot be replayed on a read-only disk.
            Err(err) if volume.read_only && err.to_string().contains("Read-only file system") => {
                return Err(Error::InvalidOption {
                    option: "volume".to_owned(),
                    detail: format!(
                        "volume {} was left unclean by a VM that did not stop cleanly; \
                         mount it read-write once (its journal is replayed then)",
                        volume.name
                    ),
                });
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Docker's copy-up: each writable volume that is new (empty) is filled
/// with what the image has where it is mounted.
async fn fill_new_volumes(agent: &AgentClient, config: &ContainerConfig) -> Result<(), Error> {
    for (index, volume) in config.volumes.iter().enumerate() {
        let source = spec::guest_volume_path(index);
        let target = config.spec["mounts"].as_array().and_then(|mounts| {
            mounts
                .iter()
                .find(|m| m["source"] == source.as_str())
                .and_then(|m| m["destination"].as_str())
        });
        let Some(target) = target.filter(|_| !volume.read_only) else {
            continue;
        };
        let entries = agent
            .fill_volume(FillVolumeRequest {
                root: GUEST_ROOTFS.to_owned(),
                path: target.to_owned(),
                volume: source,
            })
            .await?;
        if entries > 0 {
            tracing::debug!(volume = %volume.name, entries, "filled a new volume from the image");
        }
    }
    Ok(())
}

/// The 9p options of a shared host path: the 9P2000.L dialect, 512 KiB
/// messages (the most virtio carries in one request), the page cache only
/// for mapped files (so `mmap` and `exec` work and host changes show at
/// once), permissions checked by the guest as on a local file system.
const SHARE_OPTIONS: &[&str] = &[
    "trans=virtio",
    "version=9p2000.L",
    "msize=512000",
    "cache=mmap",
    "access=client",
    "nosuid",
    "nodev",
];

/// Mounts the shared host paths (one 9p file system whose entry `i` is
/// the container's `i`th host path) where the container's spec binds them
/// from. Read-only ones are read-only mounts on the host already, and
/// bound read-only in the container.
async fn mount_shares(
    agent: &AgentClient,
    config: &ContainerConfig,
    transport: ShareTransport,
) -> Result<(), Error> {
    if config.binds.is_empty() {
        return Ok(());
    }
    let options = match transport {
        ShareTransport::NineP => SHARE_OPTIONS.iter().map(|o| (*o).to_owned()).collect(),
        ShareTransport::VirtioFs => vec!["nosuid".to_owned(), "nodev".to_owned()],
    };
    agent
        .mount(MountRequest {
            source: SHARE_TAG.to_owned(),
            target: spec::GUEST_SHARES.to_owned(),
            fstype: transport.fstype().to_owned(),
            options,
            create_target: true,
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// Mounts the container's disk at [`GUEST_ROOTFS`] (see [`mount_root_disk`]).
async fn mount_rootfs(agent: &AgentClient, read_only: bool) -> Result<(), Error> {
    mount_root_disk(agent, "/dev/vda", GUEST_ROOTFS, "/run/cz", read_only).await
}

/// Mounts a container's root disk `device` at `target`. A read-only
/// container's disk is the shared base: it is mounted read-only at
/// `<scratch>/lower` under an overlay whose upper layer is empty, in guest
/// memory (`<scratch>/upper`), so the runtime can still create the targets
/// of its bind mounts before it makes the root read-only.
pub(crate) async fn mount_root_disk(
    agent: &AgentClient,
    device: &str,
    target: &str,
    scratch: &str,
    read_only: bool,
) -> Result<(), Error> {
    let disk = |target: &str, options: &[&str]| MountRequest {
        source: device.into(),
        target: target.into(),
        fstype: "ext4".into(),
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        create_target: true,
        ..Default::default()
    };
    if !read_only {
        agent.mount(disk(target, &["noatime", "discard"])).await?;
        return Ok(());
    }
    let lower = format!("{scratch}/lower");
    agent.mount(disk(&lower, &["ro", "noatime"])).await?;
    agent
        .mkdir(&format!("{scratch}/upper/data"), 0o755, true)
        .await?;
    agent
        .mkdir(&format!("{scratch}/upper/work"), 0o755, true)
        .await?;
    agent
        .mount(MountRequest {
            source: "overlay".into(),
            target: target.into(),
            fstype: "overlay".into(),
            options: vec![
                format!("lowerdir={lower}"),
                format!("upperdir={scratch}/upper/data"),
                format!("workdir={scratch}/upper/work"),
            ],
            create_target: true,
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// Writes the guest's `/etc/resolv.conf` (the servers of `dns`, or the
/// host's), `/etc/hosts` and `/etc/hostname` under [`GUEST_ETC_ROOT`], where
/// container specs bind them from.
pub(crate) async fn write_etc_files(
    agent: &AgentClient,
    hostname: &str,
    dns: &[IpAddr],
    attachment: Option<&Attachment>,
    peers: &[(IpAddr, Vec<String>)],
) -> Result<(), Error> {
    let hostname = hostname.to_owned();
    let address: Option<IpAddr> = attachment.map(|a| IpAddr::V4(a.address.addr()));
    let has_ipv6 = attachment.is_some_and(|a| a.address6.is_some());
    let dns = spec::dns_for_container(&spec::host_resolv_conf(), dns, has_ipv6);
    let dns = agent.configure_dns(ConfigureDnsRequest {
        root: GUEST_ETC_ROOT.into(),
        nameservers: dns.nameservers.iter().map(ToString::to_string).collect(),
        search_domains: dns.search,
        options: dns.options,
    });
    let hosts = write_hosts(agent, &hostname, address, peers);
    let name = agent.write_file(WriteFileRequest {
        path: format!("{GUEST_ETC_ROOT}/etc/hostname"),
        data: format!("{hostname}\n").into_bytes(),
        mode: 0o644,
        append: false,
    });
    // The three land in one folder: it is made first, then they go at once.
    agent
        .mkdir(&format!("{GUEST_ETC_ROOT}/etc"), 0o755, true)
        .await?;
    let (dns, hosts, name) = tokio::join!(dns, hosts, name);
    dns?;
    hosts?;
    name?;
    Ok(())
}

/// Writes the guest's `/etc/hosts` (under [`GUEST_ETC_ROOT`]): localhost,
/// `hostname` at `address`, and `peers`. The agent writes it in place, so a
/// running container's bind mount of it sees the new one.
pub(crate) async fn write_hosts(
    agent: &AgentClient,
    hostname: &str,
    address: Option<IpAddr>,
    peers: &[(IpAddr, Vec<String>)],
) -> Result<(), Error> {
    agent
        .configure_hosts(ConfigureHostsRequest {
            root: GUEST_ETC_ROOT.into(),
            localhost: true,
            entries: spec::hosts_entries(hostname, address)
                .into_iter()
                .chain(peers.iter().cloned())
                .map(|(ip, hostnames)| HostsEntry {
                    ip: ip.to_string(),
                    hostnames,
                })
                .collect(),
        })
        .await?;
    Ok(())
}

/// The bind mounts of the container's `/etc` files, for its runtime spec.
pub(crate) fn etc_mounts() -> serde_json::Value {
    let bind = |name: &str| {
        serde_json::json!({
            "destination": format!("/etc/{name}"),
            "type": "bind",
            "source": format!("{GUEST_ETC_ROOT}/etc/{name}"),
            "options": ["rbind", "rprivate"]
        })
    };
    serde_json::json!([bind("resolv.conf"), bind("hosts"), bind("hostname")])
}

/// Releases what [`boot`] took on the host for container `config` on each
/// of its networks (the VM is stopped by its owner). A network removed
/// meanwhile holds nothing of it any more.
pub(crate) async fn release_networks(
    networks: Option<&NetworkManager>,
    config: &ContainerConfig,
) -> Result<(), Error> {
    let Some(networks) = networks else {
        return Ok(());
    };
    for (name, _) in config.joined_networks() {
        match networks.detach(name, &config.id).await {
            Ok(()) | Err(Error::NotAttached { .. } | Error::NetworkNotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

//! The process that owns a pod's VM: it boots the VM (from a template when
//! one matches), holds its QMP connection, and serves the pod's control
//! socket, through which the owners of the pod's containers have their
//! disks attached and detached and the pod's volumes mounted. Told to stop
//! (a `Stop` request, or the future it was given), it kills what still runs
//! in the pod, lets the containers' owners take their disks back, then
//! stops the VM and releases the pod's network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerization_agent::AgentClient;
use containerization_agent::proto::v1::MountRequest;
use containerization_vmm::{AttachedDisk, DiskConfig, QemuVm, VirtualMachine, VsockEndpoint};
use tokio::net::UnixListener;

use super::control::{Reply, Request, serve_one};
use super::record::{PodConfig, PodStatus};
use crate::container::owner::Heartbeat;
use crate::container::{Inner, NetworkMode, now_ms, sandbox};
use crate::network::Attachment;
use crate::volume::{VolumeLease, VolumeStore};
use crate::{ContainerId, Error};

/// Where the pod's volumes are mounted in its guest: `<this>/<name>`.
pub(crate) const GUEST_POD_VOLUMES: &str = "/run/cz/pod/volumes";

/// How long the owner of a stopping pod waits for its containers' owners to
/// take their disks back before it stops the VM anyway.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// A volume mounted in the pod's VM.
struct PodVolume {
    disk: AttachedDisk,
    read_only: bool,
    users: usize,
    _lease: VolumeLease,
}

/// What the control socket's requests act on.
struct Shared {
    pod: String,
    root_dirs: Vec<PathBuf>,
    vm: Arc<Mutex<QemuVm>>,
    agent: AgentClient,
    disks: tokio::sync::Mutex<HashMap<u16, AttachedDisk>>,
    /// Detaches under way: a container's owner does not wait for QEMU's
    /// wait on the guest (most of a detach), the pod's stop does.
    detaching: Arc<std::sync::atomic::AtomicUsize>,
    volumes: tokio::sync::Mutex<HashMap<String, PodVolume>>,
    volume_store: VolumeStore,
    /// The shared tmpfs mounted so far.
    tmpfs: tokio::sync::Mutex<std::collections::HashSet<String>>,
    stop: tokio::sync::Notify,
}

/// Owns pod `config`'s VM until it is told to stop (by `stop`, or a `Stop`
/// request), then takes everything down and records it stopped.
pub(crate) async fn run(
    inner: &Arc<Inner>,
    config: &PodConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let id = &config.id;
    let pods = &inner.pods;
    pods.update_checked(id, |s| {
        if s.is_running() {
            return Err(Error::PodState {
                pod: config.name.clone(),
                state: s.status.to_string(),
                detail: "it is already running".to_owned(),
            });
        }
        *s = super::PodState::created();
        s.status = PodStatus::Starting;
        let pid = std::process::id();
        s.owner_pid = Some(pid);
        s.owner_start = crate::container::owner::start_time(pid);
        Ok(())
    })?;
    let _heartbeat = Heartbeat::start(pods.heartbeat(id)).ok();
    let _ = std::fs::remove_dir_all(pods.vm_dir(id));
    let booted = match pods.prepare_vm_dir(id) {
        Ok(vm_dir) => boot(inner, config, &vm_dir).await,
        Err(error) => Err(error),
    };
    let (vm, agent, attachment) = match booted {
        Ok(booted) => booted,
        Err(error) => {
            finish(inner, config, None, Some(error.to_string())).await;
            return Err(error);
        }
    };
    let socket = pods.vm_dir(id).join("control.sock");
    let listener = match UnixListener::bind(&socket) {
        Ok(listener) => listener,
        Err(source) => {
            let error = Error::Io {
                path: socket,
                source,
            };
            drop(vm);
            finish(inner, config, attachment.as_ref(), Some(error.to_string())).await;
            return Err(error);
        }
    };
    let vsock = match vm.vsock() {
        VsockEndpoint::Hybrid(path) => Some(path.clone()),
        VsockEndpoint::Cid(_) => None,
    };
    let shared = Arc::new(Shared {
        pod: config.name.clone(),
        root_dirs: vec![
            inner.root.path().join("containers"),
            inner.root.path().join("rootfs"),
        ],
        vm: Arc::new(Mutex::new(vm)),
        agent,
        disks: tokio::sync::Mutex::new(HashMap::new()),
        detaching: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        volumes: tokio::sync::Mutex::new(HashMap::new()),
        volume_store: VolumeStore::new(inner.root.path().join("volumes")),
        tmpfs: tokio::sync::Mutex::new(std::collections::HashSet::new()),
        stop: tokio::sync::Notify::new(),
    });
    pods.update(id, |s| {
        s.status = PodStatus::Running;
        s.started_ms = Some(now_ms());
        s.vsock = vsock;
        s.control = Some(socket.clone());
        s.address = attachment
            .as_ref()
            .map(|a| std::net::IpAddr::V4(a.address.addr()));
        s.tap = attachment.as_ref().map(|a| a.device.clone());
    })?;
    tracing::debug!(pod = %config.name, "pod running");
    let mut connections = tokio::task::JoinSet::new();
    let serve = |connections: &mut tokio::task::JoinSet<()>, stream| {
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let handled = serve_one(stream, |request| handle(&shared, request)).await;
            if let Err(error) = handled {
                tracing::debug!(%error, "a control connection failed");
            }
        });
    };
    let mut why = None;
    {
        tokio::pin!(stop);
        let mut check = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => serve(&mut connections, stream),
                    Err(error) => tracing::warn!(%error, "control socket accept failed"),
                },
                () = &mut stop => break,
                () = shared.stop.notified() => break,
                _ = check.tick() => {
                    let exited = shared.vm.lock().map(|mut vm| vm.try_exit()).unwrap_or(None);
                    if let Some(status) = exited {
                        why = Some(format!("its VM exited ({status})"));
                        break;
                    }
                }
            }
            while connections.try_join_next().is_some() {}
        }
    }
    tracing::debug!(pod = %config.name, "pod stopping");
    if why.is_none() {
        kill_containers(inner, id, &shared.agent).await;
        // The containers' owners unmount and detach their disks: keep
        // answering them for a while.
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        loop {
            let busy = !shared.disks.lock().await.is_empty()
                || shared.detaching.load(std::sync::atomic::Ordering::SeqCst) > 0;
            if !busy || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        serve(&mut connections, stream);
                    }
                }
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
    drop(listener);
    connections.shutdown().await;
    // Detaches under way end before the VM stops.
    while shared.detaching.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_file(&socket);
    // Volumes still mounted are unmounted so their journals are clean.
    let mut clean = shared.disks.lock().await.is_empty();
    for (name, volume) in shared.volumes.lock().await.drain() {
        let target = format!("{GUEST_POD_VOLUMES}/{name}");
        clean &= shared.agent.umount(&target, false).await.is_ok();
        drop(volume);
    }
    // With every container's disk gone and the volumes unmounted, nothing
    // in the guest needs a clean power-off: the VM is simply ended, as a
    // removed container's is. Anything still mounted gets the power-off.
    let vm = Arc::clone(&shared.vm);
    if !clean {
        let _ = shared.agent.sync().await;
    }
    drop(shared);
    if let Ok(vm) = Arc::try_unwrap(vm) {
        let mut vm = vm
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !clean {
            vm.stop(Duration::from_secs(5)).await;
        }
        drop(vm);
    }
    finish(inner, config, attachment.as_ref(), why).await;
    Ok(())
}

/// Kills the first process of every container of pod `id` that still runs
/// in it; their owners then record their ends and give their disks back.
async fn kill_containers(inner: &Inner, id: &ContainerId, agent: &AgentClient) {
    let Ok(containers) = inner.store.list() else {
        return;
    };
    for (config, state) in containers {
        if config.pod.as_ref() == Some(id) && state.is_running() {
            let _ = agent.kill_process(config.id.as_str(), 9).await;
        }
    }
}

/// Records the pod stopped and releases its network.
pub(crate) async fn finish(
    inner: &Inner,
    config: &PodConfig,
    attachment: Option<&Attachment>,
    error: Option<String>,
) {
    let id = &config.id;
    if let (NetworkMode::Network(name), Some(networks)) = (&config.network, inner.networks().await)
        && (attachment.is_some() || inner.pods.state(id).is_ok_and(|s| s.tap.is_some()))
        && let Err(error) = networks.detach(name, id).await
        && !matches!(error, Error::NotAttached { .. } | Error::NetworkNotFound(_))
    {
        tracing::warn!(%error, pod = %config.name, "cannot release the pod's network");
    }
    let _ = std::fs::remove_dir_all(inner.pods.vm_dir(id));
    let _ = std::fs::remove_file(inner.pods.heartbeat(id));
    let updated = inner.pods.update(id, |s| {
        s.status = PodStatus::Stopped;
        s.finished_ms = Some(now_ms());
        s.owner_pid = None;
        s.owner_start = None;
        s.vsock = None;
        s.control = None;
        s.address = None;
        s.tap = None;
        s.error = error;
    });
    if let Err(error) = updated {
        tracing::warn!(%error, pod = %config.name, "cannot record the pod stopped");
    }
}

/// Boots pod `config`'s VM in `vm_dir`: no disk, a SCSI controller for the
/// containers' disks, its network's tap; eth0 and the shared `/etc` files
/// ready. Nothing is left behind on error.
async fn boot(
    inner: &Inner,
    config: &PodConfig,
    vm_dir: &Path,
) -> Result<(QemuVm, AgentClient, Option<Attachment>), Error> {
    let networks = inner.networks().await;
    let attachment =
        sandbox::attach_network(networks, &config.network, &config.id, &config.ports).await?;
    let started = start_vm(inner, config, vm_dir, attachment.as_ref()).await;
    match started {
        Ok((vm, agent)) => Ok((vm, agent, attachment)),
        Err(error) => {
            if let (Some(attachment), Some(networks)) = (&attachment, networks) {
                let _ = networks.detach(&attachment.network, &config.id).await;
            }
            Err(error)
        }
    }
}

async fn start_vm(
    inner: &Inner,
    config: &PodConfig,
    vm_dir: &Path,
    attachment: Option<&Attachment>,
) -> Result<(QemuVm, AgentClient), Error> {
    let context = sandbox::BootContext {
        root: &inner.root,
        vminitd: &inner.vminitd,
        networks: None,
        ready_timeout: inner.ready_timeout,
    };
    let kernel = sandbox::kernel_named(&inner.root, config.kernel.as_deref())?;
    let attachments: &[Attachment] = attachment.map_or(&[], std::slice::from_ref);
    let mut vm_config = sandbox::base_vm_config(
        &context,
        kernel,
        &[],
        vm_dir,
        (config.vcpus, config.vm_memory_mib),
        attachments,
    )?;
    vm_config.attachable_disks = true;
    let (vm, agent) = sandbox::start_from_template(&context, &vm_config, attachments).await?;
    let (networked, written) = tokio::join!(
        sandbox::configure_interfaces(&agent, attachments),
        sandbox::write_etc_files(&agent, &config.hostname, &config.dns, attachment, &[])
    );
    networked?;
    written?;
    Ok((vm, agent))
}

/// Answers one control request.
async fn handle(shared: &Shared, request: Request) -> Reply {
    let result = match request {
        Request::AttachDisk { path, read_only } => attach_disk(shared, &path, read_only).await,
        Request::DetachDisk { target } => detach_disk(shared, target).await,
        Request::UseVolume { name, read_only } => use_volume(shared, &name, read_only).await,
        Request::ReleaseVolume { name } => release_volume(shared, &name).await,
        Request::UseTmpfs {
            name,
            size_bytes,
            mode,
        } => use_tmpfs(shared, &name, size_bytes, mode).await,
        Request::Stop => {
            shared.stop.notify_one();
            Ok(Reply::Done)
        }
    };
    result.unwrap_or_else(|message| Reply::Failed { message })
}

/// Attaches `disk` to the VM on a blocking thread (QMP is synchronous).
async fn attach(shared: &Shared, disk: DiskConfig) -> Result<AttachedDisk, String> {
    let vm = Arc::clone(&shared.vm);
    tokio::task::spawn_blocking(move || {
        let mut vm = vm
            .lock()
            .map_err(|_| "the VM's lock is poisoned".to_owned())?;
        vm.attach_disk(&disk).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Detaches `disk` from the VM on a blocking thread.
async fn detach(shared: &Shared, disk: AttachedDisk) -> Result<(), String> {
    let vm = Arc::clone(&shared.vm);
    tokio::task::spawn_blocking(move || {
        let mut vm = vm
            .lock()
            .map_err(|_| "the VM's lock is poisoned".to_owned())?;
        vm.detach_disk(&disk).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn attach_disk(shared: &Shared, path: &Path, read_only: bool) -> Result<Reply, String> {
    // Only a container's disk or a base image of this state root.
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !shared.root_dirs.iter().any(|dir| real.starts_with(dir)) {
        return Err(format!(
            "{} is not a container disk of this state root",
            path.display()
        ));
    }
    let mut disk = DiskConfig::new(&real);
    if read_only {
        disk = disk.read_only();
    }
    let attached = attach(shared, disk).await?;
    let target = attached.target();
    shared.disks.lock().await.insert(target, attached);
    Ok(Reply::Attached { target })
}

/// Detaches a container's disk (the guest has unmounted it). The reply
/// comes at once: the container is out of the VM, and QEMU's wait for the
/// guest to let the device go goes on here, with the target taken until it
/// ends.
async fn detach_disk(shared: &Shared, target: u16) -> Result<Reply, String> {
    let disk = shared
        .disks
        .lock()
        .await
        .remove(&target)
        .ok_or_else(|| format!("no container disk at SCSI target {target}"))?;
    shared
        .detaching
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let vm = Arc::clone(&shared.vm);
    let pod = shared.pod.clone();
    let detaching = Arc::clone(&shared.detaching);
    tokio::task::spawn_blocking(move || {
        let detached = vm
            .lock()
            .map_err(|_| "the VM's lock is poisoned".to_owned())
            .and_then(|mut vm| vm.detach_disk(&disk).map_err(|e| e.to_string()));
        // The VM is let go of before the count says done, so the pod's stop
        // finds it free.
        drop(vm);
        if let Err(error) = detached {
            tracing::warn!(%pod, target, %error, "a container's disk did not detach");
        }
        detaching.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    });
    Ok(Reply::Done)
}

async fn use_volume(shared: &Shared, name: &str, read_only: bool) -> Result<Reply, String> {
    let path = format!("{GUEST_POD_VOLUMES}/{name}");
    let mut volumes = shared.volumes.lock().await;
    if let Some(volume) = volumes.get_mut(name) {
        if volume.read_only && !read_only {
            return Err(format!(
                "volume {name} is mounted read-only in pod {} by another of its containers; \
                 a container of the pod cannot write it until they are gone",
                shared.pod
            ));
        }
        volume.users += 1;
        return Ok(Reply::Volume { path });
    }
    let found = shared
        .volume_store
        .get(name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("volume {name} no longer exists: create it again"))?;
    let lease = shared
        .volume_store
        .lease(name, read_only)
        .map_err(|e| e.to_string())?;
    let mut disk = DiskConfig::new(&found.disk);
    if read_only {
        disk = disk.read_only();
    }
    let attached = attach(shared, disk).await?;
    let mounted = async {
        let device = shared
            .agent
            .find_disk(attached.target(), sandbox::VOLUME_DISK_WAIT)
            .await?;
        let options: &[&str] = match read_only {
            true => &["ro", "noatime"],
            false => &["noatime", "discard"],
        };
        shared
            .agent
            .mount(MountRequest {
                source: device,
                target: path.clone(),
                fstype: "ext4".into(),
                options: options.iter().map(|o| (*o).to_owned()).collect(),
                create_target: true,
                ..Default::default()
            })
            .await
    }
    .await;
    if let Err(error) = mounted {
        let _ = detach(shared, attached).await;
        return Err(match error.to_string().contains("Read-only file system") {
            true => format!(
                "volume {name} was left unclean by a VM that did not stop cleanly; \
                 mount it read-write once (its journal is replayed then)"
            ),
            false => error.to_string(),
        });
    }
    volumes.insert(
        name.to_owned(),
        PodVolume {
            disk: attached,
            read_only,
            users: 1,
            _lease: lease,
        },
    );
    Ok(Reply::Volume { path })
}

async fn release_volume(shared: &Shared, name: &str) -> Result<Reply, String> {
    let mut volumes = shared.volumes.lock().await;
    let volume = volumes
        .get_mut(name)
        .ok_or_else(|| format!("volume {name} is not mounted in this pod"))?;
    volume.users = volume.users.saturating_sub(1);
    if volume.users > 0 {
        return Ok(Reply::Done);
    }
    let target = format!("{GUEST_POD_VOLUMES}/{name}");
    shared
        .agent
        .umount(&target, false)
        .await
        .map_err(|e| format!("cannot unmount volume {name}: {e}"))?;
    if let Some(volume) = volumes.remove(name) {
        detach(shared, volume.disk).await?;
    }
    Ok(Reply::Done)
}

async fn use_tmpfs(
    shared: &Shared,
    name: &str,
    size_bytes: Option<u64>,
    mode: Option<u32>,
) -> Result<Reply, String> {
    crate::volume::check_name(name).map_err(|e| e.to_string())?;
    let path = crate::spec::guest_pod_tmpfs_path(name);
    let mut mounted = shared.tmpfs.lock().await;
    if mounted.contains(name) {
        return Ok(Reply::Volume { path });
    }
    let mut options = vec![
        "nosuid".to_owned(),
        "nodev".to_owned(),
        format!("mode={:o}", mode.unwrap_or(0o1777)),
    ];
    if let Some(size) = size_bytes {
        options.push(format!("size={size}"));
    }
    shared
        .agent
        .mount(MountRequest {
            source: "tmpfs".into(),
            target: path.clone(),
            fstype: "tmpfs".into(),
            options,
            create_target: true,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot mount the pod's tmpfs {name}: {e}"))?;
    mounted.insert(name.to_owned());
    Ok(Reply::Volume { path })
}

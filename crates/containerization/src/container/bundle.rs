//! Containers from OCI bundles, as containerd hands them to a shim: a
//! runtime spec written for a host runtime and a root file system folder
//! (the snapshot, mounted by the caller). The folder is copied into an ext4
//! disk of the container's own, or, when the caller names it by a
//! [`SnapshotKey`], cloned from a base built once for it; and the spec is
//! made one the guest can run:
//! what names the host (namespace paths, hooks, the cgroup path, host bind
//! mounts) goes, the network namespace is the VM's, and the VM's
//! `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` are bound in.
//! Such a container runs in a pod, or in a VM of its own on the default
//! network (a pod of one, with its disk in the VM from the start).

use std::path::PathBuf;
use std::sync::Arc;

use containerization_oci::store::ImageStore;

use super::manager::check_name;
use super::record::{ContainerConfig, NetworkMode, now_ms};
use super::sandbox::{GUEST_ROOTFS, etc_mounts};
use super::store::new_id;
use super::{ContainerManager, LinuxContainer};
use crate::Error;
use crate::rootfs::{SnapshotKey, build_from_tree, writable_clone};

/// What a container made from an OCI bundle is.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// A unique name; `None` gives the first 12 digits of the id.
    pub name: Option<String>,
    /// The bundle's runtime spec (`config.json`).
    pub spec: serde_json::Value,
    /// The folder holding its root file system.
    pub rootfs: PathBuf,
    /// What that folder is, when it is a stack of snapshots that never
    /// change (an overlay's lower folders, its upper one empty): its disk
    /// is then a clone of a base built once per stack, not a copy.
    pub rootfs_key: Option<SnapshotKey>,
    /// The pod (a name or id) it runs in; `None`: a VM of its own.
    pub pod: Option<String>,
    /// What to call its image in listings.
    pub image: String,
    /// Remove it when its first process ends (a shim's task, whose
    /// record containerd keeps): its VM is then ended at once, without the
    /// guest's power-off that a disk kept for later needs.
    pub auto_remove: bool,
}

/// Mount types the guest makes itself; any other mount in a host
/// runtime's spec names a host path and is dropped.
const GUEST_MOUNT_TYPES: &[&str] = &[
    "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2",
];

/// `spec`, made one the guest runs in a pod's VM.
pub(crate) fn guest_spec(mut spec: serde_json::Value) -> Result<serde_json::Value, Error> {
    let invalid = |detail: &str| Error::InvalidOption {
        option: "runtime spec".to_owned(),
        detail: detail.to_owned(),
    };
    if !spec.is_object() || !spec["process"].is_object() {
        return Err(invalid("it has no process"));
    }
    spec["root"]["path"] = GUEST_ROOTFS.into();
    if let Some(object) = spec.as_object_mut() {
        object.remove("hooks");
    }
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("cgroupsPath");
        if let Some(namespaces) = linux
            .get_mut("namespaces")
            .and_then(serde_json::Value::as_array_mut)
        {
            // The network is the pod VM's; a host namespace's path means
            // nothing in the guest, so each is a new one there.
            namespaces.retain(|ns| ns["type"] != "network");
            for namespace in namespaces.iter_mut() {
                if let Some(namespace) = namespace.as_object_mut() {
                    namespace.remove("path");
                }
            }
        }
    }
    let mut mounts: Vec<serde_json::Value> = spec["mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|mount| {
            let kind = mount["type"].as_str().unwrap_or("bind");
            let keep = GUEST_MOUNT_TYPES.contains(&kind);
            if !keep {
                tracing::debug!(destination = %mount["destination"], "a host mount is dropped");
            }
            keep
        })
        .collect();
    let etc = etc_mounts();
    for extra in etc.as_array().into_iter().flatten() {
        mounts.retain(|m| m["destination"] != extra["destination"]);
        mounts.push(extra.clone());
    }
    spec["mounts"] = mounts.into();
    Ok(spec)
}

impl ContainerManager {
    /// Creates a container from an OCI bundle, in pod `options.pod` or in
    /// a VM of its own: its root file system folder copied into a disk of
    /// its own, its spec made one the guest runs (see the module's
    /// documentation).
    pub async fn create_from_bundle(
        &self,
        options: BundleOptions,
    ) -> Result<LinuxContainer, Error> {
        let inner = self.inner();
        let spec = guest_spec(options.spec.clone())?;
        let pod = match &options.pod {
            Some(name) => Some(inner.pods.config(&inner.pods.lookup(name)?)?),
            None => None,
        };
        let network = match &pod {
            Some(_) => NetworkMode::None,
            None => NetworkMode::Network(super::DEFAULT_NETWORK.to_owned()),
        };
        if pod.is_none() {
            self.check_network(&network, &[]).await?;
        }
        let host = crate::host::HostResources::detect();
        let (vcpus, vm_memory_mib) = match &pod {
            Some(pod) => (pod.vcpus, pod.vm_memory_mib),
            None => {
                let memory = spec["linux"]["resources"]["memory"]["limit"].as_u64();
                let vm_memory_mib =
                    host.vm_memory_mib(memory)
                        .map_err(|detail| Error::InvalidOption {
                            option: "memory limit".to_owned(),
                            detail,
                        })?;
                (host.default_vcpus(), vm_memory_mib)
            }
        };
        let id = new_id()?;
        let name = match &options.name {
            Some(name) => check_name(name)?,
            None => id.as_str()[..12].to_owned(),
        };
        let terminal = spec["process"]["terminal"].as_bool().unwrap_or(false);
        let mut config = ContainerConfig {
            id: id.clone(),
            name,
            image: options.image.clone(),
            manifest: String::new(),
            spec,
            stop_signal: 15,
            network,
            ports: Vec::new(),
            dns: Vec::new(),
            kernel: None,
            vcpus,
            vm_memory_mib,
            // The disk is the container's own: written, not overlaid; the
            // spec's `root.readonly` makes the root read-only in the guest.
            read_only: false,
            auto_remove: options.auto_remove,
            disposable: false,
            terminal,
            interactive: false,
            created_ms: now_ms(),
            platform: None,
            volumes: Vec::new(),
            binds: Vec::new(),
            pod: pod.map(|pod| pod.id),
            pod_tmpfs: Vec::new(),
            labels: std::collections::BTreeMap::new(),
            restart: super::RestartPolicy::No,
            aliases: Vec::new(),
            more_networks: Vec::new(),
        };
        let made = match &options.rootfs_key {
            Some(key) => {
                // The base stays until the record names it, whatever a
                // collection running meanwhile does (it waits).
                let images = ImageStore::open(inner.root.path())?;
                let hold = images.content().hold_off_gc()?;
                let cache = inner.rootfs.clone();
                let (stack, tree) = (key.clone(), options.rootfs.clone());
                let base = tokio::task::spawn_blocking(move || cache.snapshot_base(&stack, &tree))
                    .await
                    .map_err(|e| Error::Rootfs {
                        image: options.rootfs.display().to_string(),
                        detail: e.to_string(),
                    })??;
                // The record names the base, which keeps it.
                config.manifest = key.digest().to_string();
                inner.store.create(&config)?;
                drop(hold);
                writable_clone(&base, &inner.store.disk(&id)).map(drop)
            }
            None => {
                inner.store.create(&config)?;
                let disk = inner.store.disk(&id);
                let rootfs = options.rootfs.clone();
                tokio::task::spawn_blocking(move || build_from_tree(&rootfs, &disk))
                    .await
                    .map_err(|e| Error::Rootfs {
                        image: options.rootfs.display().to_string(),
                        detail: e.to_string(),
                    })
                    .and_then(|built| built)
            }
        };
        if let Err(error) = made {
            let _ = inner.store.remove(&id);
            return Err(error);
        }
        Ok(LinuxContainer::new(Arc::clone(inner), config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_runtimes_spec_loses_what_names_the_host() {
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["sh"], "cwd": "/"},
            "root": {"path": "/run/containerd/io.containerd.runtime.v2.task/default/x/rootfs"},
            "hooks": {"prestart": [{"path": "/usr/bin/nvidia-hook"}]},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts"},
                {"destination": "/dev/shm", "type": "bind", "source": "/run/x/shm"}
            ],
            "linux": {
                "cgroupsPath": "/default/x",
                "namespaces": [
                    {"type": "pid"},
                    {"type": "network", "path": "/var/run/netns/cni-1"},
                    {"type": "ipc", "path": "/proc/42/ns/ipc"}
                ]
            }
        });
        let guest = guest_spec(spec).unwrap();
        assert_eq!(guest["root"]["path"], GUEST_ROOTFS);
        assert!(guest.get("hooks").is_none());
        assert!(guest["linux"].get("cgroupsPath").is_none());
        assert_eq!(
            guest["linux"]["namespaces"],
            serde_json::json!([{"type": "pid"}, {"type": "ipc"}])
        );
        let destinations: Vec<&str> = guest["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            destinations,
            ["/proc", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname"]
        );
        for mount in guest["mounts"].as_array().unwrap() {
            assert!(!mount["source"].as_str().unwrap().starts_with("/var/lib/x"));
        }
        assert!(guest_spec(serde_json::json!({"root": {}})).is_err());
    }
}

//! Masked and read-only paths: the parts of `/proc` and `/sys` a container
//! must not read or change.
//!
//! Applied after the sysctls (which write through `/proc/sys`) and before the
//! user change (which drops the rights these mounts need). The defaults, used
//! when the spec lists none, are the usual ones of OCI runtimes.
//!
//! Whatever the spec lists, the guest's virtio-serial ports are hidden too:
//! the agent's port (`cz.agent`) is vminitd's line to the host, and its
//! sysfs folders name it. The device cgroup already refuses to open it;
//! masking `/sys/class/virtio-ports` and each port's `virtio-ports` folder
//! under `/sys/devices` (where it lies depends on the VM's machine, so it is
//! found here, in the guest) keeps even its name out of the container.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use rustix::mount::MountFlags;

use super::channel::Failure;

/// Hidden from the container when the spec lists no masked paths.
const DEFAULT_MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The class folder of virtio-serial ports.
const VIRTIO_PORTS: &str = "/sys/class/virtio-ports";

/// Read-only in the container when the spec lists none.
const DEFAULT_READONLY: [&str; 6] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/sys/kernel/ns_last_pid",
];

/// Masks and write-protects the spec's paths (or the defaults).
pub(crate) fn apply(spec: &Spec) -> Result<(), Failure> {
    let linux = spec.linux().as_ref();
    let masked = linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_else(|| DEFAULT_MASKED.map(str::to_owned).to_vec());
    let readonly = linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_else(|| DEFAULT_READONLY.map(str::to_owned).to_vec());
    for path in &readonly {
        make_readonly(Path::new(path))?;
    }
    for path in &masked {
        mask(Path::new(path))?;
    }
    for path in virtio_port_folders() {
        mask(&path)?;
    }
    Ok(())
}

/// Where the container's `/sys` shows the guest's virtio-serial ports: the
/// class folder and the `virtio-ports` folder of each port's device.
fn virtio_port_folders() -> Vec<PathBuf> {
    let class = Path::new(VIRTIO_PORTS);
    let mut folders: Vec<PathBuf> = std::fs::read_dir(class)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|port| std::fs::canonicalize(port.path()).ok())
        .filter_map(|port| port.parent().map(Path::to_path_buf))
        .filter(|folder| folder.starts_with("/sys/devices"))
        .collect();
    folders.sort();
    folders.dedup();
    folders.push(class.to_path_buf());
    folders
}

/// A folder gets an empty read-only tmpfs over it, a file `/dev/null`.
fn mask(path: &Path) -> Result<(), Failure> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(Failure::io(format!("mask {}", path.display()), &err)),
    };
    let result = if meta.is_dir() {
        rustix::mount::mount("tmpfs", path, "tmpfs", MountFlags::RDONLY, None)
    } else {
        rustix::mount::mount_bind("/dev/null", path)
    };
    result.map_err(|e| Failure::io(format!("mask {}", path.display()), &e.into()))
}

/// Binds `path` onto itself, then makes that mount read-only.
fn make_readonly(path: &Path) -> Result<(), Failure> {
    match rustix::mount::mount_bind_recursive(path, path) {
        Ok(()) => {}
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(err) => {
            return Err(Failure::io(
                format!("bind {} read-only", path.display()),
                &err.into(),
            ));
        }
    }
    rustix::mount::mount_remount(
        path,
        MountFlags::BIND
            | MountFlags::REC
            | MountFlags::RDONLY
            | MountFlags::NOSUID
            | MountFlags::NODEV
            | MountFlags::NOEXEC,
        "",
    )
    .map_err(|e| Failure::io(format!("remount {} read-only", path.display()), &e.into()))
}

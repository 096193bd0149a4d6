//! Docker's defaults for every container: the mounts, namespaces, and the
//! paths of `/proc` and `/sys` that are hidden or read-only (moby's
//! `oci/defaults.go`, with the masked paths Docker 28 added).

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Mount};

/// Docker's default mounts: `/proc`, `/dev`, `/dev/pts`, `/dev/shm`,
/// `/dev/mqueue`, `/sys` and `/sys/fs/cgroup` (`vminitd` mounts cgroup v2
/// there).
pub(crate) fn mounts() -> Vec<Mount> {
    [
        ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"][..]),
        (
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        (
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        (
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        (
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        (
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
    .into_iter()
    .map(|(destination, typ, source, options)| {
        let mut mount = Mount::default();
        mount
            .set_destination(PathBuf::from(destination))
            .set_typ(Some(typ.to_owned()))
            .set_source(Some(PathBuf::from(source)))
            .set_options(Some(options.iter().map(|o| (*o).to_owned()).collect()));
        mount
    })
    .collect()
}

/// New PID, IPC, UTS, mount and cgroup namespaces. No network namespace: the
/// VM is the container's network sandbox, its `eth0` the container's
/// interface.
pub(crate) fn namespaces() -> Vec<LinuxNamespace> {
    [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| {
        let mut namespace = LinuxNamespace::default();
        namespace.set_typ(typ);
        namespace
    })
    .collect()
}

/// Paths hidden from the container (a file under `/dev/null`, a folder under
/// an empty read-only tmpfs; `vminitd` skips those the guest lacks).
///
/// Docker 28 also hides `/sys/devices/system/cpu/cpu*/thermal_throttle`;
/// QEMU's virtual CPUs expose no thermal sensors, so the guest has none.
pub(crate) fn masked_paths() -> Vec<String> {
    [
        "/proc/asound",
        "/proc/acpi",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
        // The guest's virtio-serial ports (the agent's among them); vminitd
        // also hides each port's folder under /sys/devices.
        "/sys/class/virtio-ports",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Paths the container may read but not change.
pub(crate) fn readonly_paths() -> Vec<String> {
    [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_network_namespace() {
        let types: Vec<_> = namespaces().iter().map(LinuxNamespace::typ).collect();
        assert!(!types.contains(&LinuxNamespaceType::Network));
        assert_eq!(types.len(), 5);
    }

    #[test]
    fn dockers_masked_and_readonly_paths() {
        let masked = masked_paths();
        for path in [
            "/proc/kcore",
            "/proc/keys",
            "/sys/firmware",
            "/proc/scsi",
            "/sys/class/virtio-ports",
        ] {
            assert!(masked.iter().any(|p| p == path), "{path}");
        }
        assert!(readonly_paths().iter().any(|p| p == "/proc/sys"));
    }

    #[test]
    fn shm_and_dev_are_64_mib_tmpfs() {
        let mounts = mounts();
        for dest in ["/dev", "/dev/shm"] {
            let mount = mounts
                .iter()
                .find(|m| m.destination() == &PathBuf::from(dest))
                .unwrap();
            assert_eq!(mount.typ().as_deref(), Some("tmpfs"));
            let options = mount.options().clone().unwrap();
            assert!(options.iter().any(|o| o == "size=65536k"), "{dest}");
        }
    }
}

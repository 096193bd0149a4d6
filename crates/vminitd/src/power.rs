//! Powering the guest off.
//!
//! QEMU's microvm has no ACPI power button and `RB_POWER_OFF` only halts it,
//! so vminitd reboots instead: the VM runs with `-no-reboot` and the kernel
//! with `reboot=t`, so a reboot ends the QEMU process (see shared/FACTS.md).

/// Syncs, unmounts what it can, and ends the VM. Never returns.
pub(crate) fn off(why: &str) -> ! {
    eprintln!("vminitd: powering off: {why}");
    rustix::fs::sync();
    unmount_all();
    rustix::fs::sync();
    if let Err(err) = rustix::system::reboot(rustix::system::RebootCommand::Restart) {
        eprintln!("vminitd: reboot failed: {err}");
    }
    // Nothing left to do: wait for the hypervisor to stop us.
    loop {
        std::thread::park();
    }
}

/// Unmounts every mount but the root, innermost first, detaching busy ones.
/// Each is first remounted read-only, which a lazy unmount of a file system
/// still referenced (a container's mount namespace holds its binds) would
/// not do: an ext4 file system (a volume, a container's disk) is then left
/// clean, its journal checkpointed, for the next VM that mounts it,
/// read-only ones included.
fn unmount_all() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let targets: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter(|target| *target != "/")
        .collect();
    for target in targets.iter().rev() {
        // The early virtual file systems hold no data; skip them.
        if matches!(*target, "/proc" | "/sys" | "/dev" | "/dev/pts") {
            continue;
        }
        let _ = rustix::mount::mount_remount(*target, rustix::mount::MountFlags::RDONLY, "");
        let _ = rustix::mount::unmount(*target, rustix::mount::UnmountFlags::DETACH);
    }
}

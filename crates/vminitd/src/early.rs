//! What PID 1 does before anything else: file systems, limits, loopback, and
//! a panic hook that never lets the guest die silently.

use rustix::mount::{MountFlags, mount};

/// The early mounts, in order: (source, target, type, flags, data).
const MOUNTS: &[(&str, &str, &str, MountFlags, &str)] = &[
    (
        "proc",
        "/proc",
        "proc",
        MountFlags::NOSUID
            .union(MountFlags::NODEV)
            .union(MountFlags::NOEXEC),
        "",
    ),
    (
        "sysfs",
        "/sys",
        "sysfs",
        MountFlags::NOSUID
            .union(MountFlags::NODEV)
            .union(MountFlags::NOEXEC),
        "",
    ),
    (
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MountFlags::NOSUID,
        "mode=0755",
    ),
    (
        "devpts",
        "/dev/pts",
        "devpts",
        MountFlags::NOSUID.union(MountFlags::NOEXEC),
        "newinstance,ptmxmode=0666,mode=0620",
    ),
    (
        "shm",
        "/dev/shm",
        "tmpfs",
        MountFlags::NOSUID.union(MountFlags::NODEV),
        "mode=1777",
    ),
    (
        "tmpfs",
        "/run",
        "tmpfs",
        MountFlags::NOSUID.union(MountFlags::NODEV),
        "mode=0755",
    ),
    (
        "tmpfs",
        "/tmp",
        "tmpfs",
        MountFlags::NOSUID.union(MountFlags::NODEV),
        "mode=1777",
    ),
    (
        "cgroup2",
        "/sys/fs/cgroup",
        "cgroup2",
        MountFlags::NOSUID
            .union(MountFlags::NODEV)
            .union(MountFlags::NOEXEC),
        "nsdelegate",
    ),
];

/// Mounts the early file systems and raises the open-file limit. Failures are
/// logged to the console and skipped: a guest without `/dev/shm` still serves.
pub(crate) fn setup() {
    for (source, target, fstype, flags, data) in MOUNTS {
        if let Err(err) = std::fs::create_dir_all(target) {
            eprintln!("vminitd: cannot create {target}: {err}");
            continue;
        }
        let data = std::ffi::CString::new(*data).unwrap_or_default();
        if let Err(err) = mount(*source, *target, *fstype, *flags, data.as_c_str()) {
            // devtmpfs may already be there (CONFIG_DEVTMPFS_MOUNT).
            if err != rustix::io::Errno::BUSY {
                eprintln!("vminitd: cannot mount {fstype} on {target}: {err}");
            }
        }
    }
    let _ = std::fs::remove_file("/dev/ptmx");
    if let Err(err) = std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx") {
        eprintln!("vminitd: cannot link /dev/ptmx to pts/ptmx: {err}");
    }
    raise_limits();
    quiet_console();
}

/// Once the guest is up, only emergencies and alerts (a panic, an oops) reach
/// the serial console; the rest stays in the kernel's log (`dmesg`). A
/// container must not be able to slow its whole VM by making the kernel
/// print: under TCG every console byte is a trap, and a root file system
/// that turned read-only on a full host disk prints an error per write.
fn quiet_console() {
    // console_loglevel 2: levels 0 and 1 print; the other three fields are
    // the kernel's defaults.
    if let Err(err) = std::fs::write("/proc/sys/kernel/printk", "2 4 1 7") {
        eprintln!("vminitd: cannot quiet the console: {err}");
    }
}

/// Sets the limits every container inherits to the ones Docker's containers
/// get from its daemon (whose systemd unit says `LimitNOFILE=infinity`,
/// `LimitNPROC=infinity`): open files at the kernel's ceiling
/// (`fs.nr_open`, 1048576), processes unlimited. The guest kernel's own
/// default for processes is half its thread maximum, which follows the
/// VM's memory (917 in 256 MiB).
fn raise_limits() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let limits = [
        (
            Resource::Nofile,
            Rlimit {
                current: Some(nr_open),
                maximum: Some(nr_open),
            },
        ),
        // `None` is RLIM_INFINITY.
        (
            Resource::Nproc,
            Rlimit {
                current: None,
                maximum: None,
            },
        ),
    ];
    for (resource, limit) in limits {
        if let Err(err) = setrlimit(resource, limit) {
            let now = getrlimit(resource);
            eprintln!("vminitd: cannot set {resource:?} to {limit:?}: {err} (it is {now:?})");
        }
    }
}

/// Panics in PID 1 go to the console with their location, then the VM powers
/// off: a silent kernel panic ("Attempted to kill init") helps nobody.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        eprintln!("vminitd: PANIC in thread {name}: {info}");
        // A panic in an RPC task is caught by the runtime and that call
        // fails; only the main thread's panic ends the guest.
        if name == "main" {
            crate::power::off("vminitd panicked; see the message above");
        }
    }));
}

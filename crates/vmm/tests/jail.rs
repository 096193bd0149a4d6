//! QEMU runs in a mount namespace that shows it its own VM's files only:
//! the kernel, the initramfs, QEMU's own `/usr`; its disk and the base the
//! disk's qcow2 overlay names are descriptors handed to it, not paths; not
//! its run folder, not another container's folder, not `/root`, `/home` or
//! `/etc`. Seen from the host through `/proc/<qemu>/root`, which is QEMU's
//! own view of the file system. Within it, QEMU runs as an unprivileged
//! uid of its own, with no capabilities.

mod support;

use std::path::Path;
use std::process::Command;

use containerization_vmm::{DiskConfig, Hypervisor, Qemu, VirtualMachine};
use support::{built_kernel, config, guest_sh, mount_vda, runtime};

/// `host` as QEMU (`pid`) sees it.
fn seen_by(pid: u32, host: &Path) -> std::path::PathBuf {
    Path::new(&format!("/proc/{pid}/root")).join(host.strip_prefix("/").expect("absolute"))
}

#[test]
fn qemu_sees_its_own_disk_and_base_but_not_other_containers_or_root() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: the jail needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("folder");
    // A state root's shape: a shared base, two containers' folders.
    let rootfs = dir.path().join("rootfs");
    let mine = dir.path().join("containers/mine");
    let other = dir.path().join("containers/other");
    for folder in [&rootfs, &mine, &other] {
        std::fs::create_dir_all(folder).expect("folder");
    }
    let base = support::busybox_disk(&rootfs);
    let overlay = mine.join("disk.qcow2");
    let made = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&base)
        .arg(&overlay)
        .status()
        .expect("qemu-img");
    assert!(made.success(), "qemu-img create");
    let secret = other.join("config.json");
    std::fs::write(&secret, "{\"env\":[\"TOKEN=secret\"]}").expect("sentinel");

    let runtime = runtime();
    runtime.block_on(async {
        let mut config = config(built_kernel(), &mine.join("run"));
        assert!(config.jail, "the jail is on by default");
        config.disks.push(DiskConfig::new(&overlay));
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let pid = vm.pid();
        for visible in [config.kernel.image(), &config.initramfs] {
            assert!(
                seen_by(pid, visible).is_file(),
                "{} hidden",
                visible.display()
            );
        }
        let run_dir = &config.run_dir;
        for hidden in [
            &secret,
            &other,
            &rootfs.join("tree"),
            &overlay,
            &base,
            run_dir,
        ] {
            assert!(
                !seen_by(pid, hidden).exists(),
                "QEMU sees {}",
                hidden.display()
            );
        }
        for hidden in ["/root", "/home", "/etc/passwd", "/proc/1", "/sys/kernel"] {
            assert!(
                !seen_by(pid, Path::new(hidden)).exists(),
                "QEMU sees {hidden}"
            );
        }
        // The host's namespace is untouched: the staging folder is empty there.
        let staging = config.run_dir.join("jail");
        assert_eq!(std::fs::read_dir(&staging).expect("staging").count(), 0);

        // The guest reads the base through the overlay and writes the overlay.
        let agent = vm.agent().expect("agent").clone();
        mount_vda(&agent, false).await;
        let script = "grep -q 'hello from the host' /mnt/hello.txt && echo hi > /mnt/w && sync";
        assert_eq!(guest_sh(&agent, "rw", script).await, 0, "{script}");
        vm.stop(support::STOP_TIMEOUT).await;
    });
}

/// A line of `/proc/<pid>/status`, after its `key:`.
fn status_field(pid: u32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in the status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn each_qemu_runs_as_its_own_unprivileged_uid_without_capabilities() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: QEMU's users need root");
        return;
    }
    let users = containerization_vmm::QemuUsers::from_system()
        .expect("the cz-qemu account: run scripts/setup");
    let dir = tempfile::tempdir().expect("folder");
    let base = support::busybox_disk(dir.path());
    let runtime = runtime();
    runtime.block_on(async {
        let mut vms = Vec::new();
        for name in ["a", "b"] {
            let mut config = config(built_kernel(), &dir.path().join(name));
            assert_eq!(config.qemu_users.as_ref(), Some(&users), "on by default");
            // The base is root's and only root's: QEMU reads it through the
            // descriptor it is handed, never by name.
            let disk = dir.path().join(format!("{name}.raw"));
            std::fs::copy(&base, &disk).expect("copy");
            std::fs::set_permissions(&disk, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
            config.disks.push(DiskConfig::new(&disk));
            vms.push(Qemu::default().start(&config).await.expect("start"));
        }
        let mut uids = Vec::new();
        for vm in &vms {
            let pid = vm.pid();
            let uid = status_field(pid, "Uid");
            let gid = status_field(pid, "Gid");
            let first: u32 = uid.split(' ').next().unwrap().parse().unwrap();
            assert!(first != 0, "QEMU runs as root: {uid}");
            assert_eq!(
                uid,
                vec![first.to_string(); 4].join(" "),
                "real, effective, saved, fs"
            );
            assert_eq!(gid, vec![users.gid().to_string(); 4].join(" "));
            assert_eq!(status_field(pid, "Groups"), "", "no supplementary groups");
            assert_eq!(status_field(pid, "CapEff"), "0000000000000000");
            assert_eq!(status_field(pid, "CapPrm"), "0000000000000000");
            assert_eq!(status_field(pid, "NoNewPrivs"), "1");
            uids.push(first);
        }
        assert_ne!(uids[0], uids[1], "two VMs share a uid");
        // Each guest still uses its disk, opened for it.
        for vm in &vms {
            let agent = vm.agent().expect("agent").clone();
            mount_vda(&agent, false).await;
            assert_eq!(guest_sh(&agent, "rw", "echo hi > /mnt/w && sync").await, 0);
        }
        for mut vm in vms {
            vm.stop(support::STOP_TIMEOUT).await;
        }
    });
}

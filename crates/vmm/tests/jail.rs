//! QEMU runs in a mount namespace that shows it its own VM's files only:
//! its disk and the base the disk's qcow2 overlay names, the kernel, the
//! initramfs, its run folder, QEMU's own `/usr`; not another container's
//! folder, not `/root`, `/home` or `/etc`. Seen from the host through
//! `/proc/<qemu>/root`, which is QEMU's own view of the file system.

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
        for visible in [&overlay, &base, config.kernel.image(), &config.initramfs] {
            assert!(
                seen_by(pid, visible).is_file(),
                "{} hidden",
                visible.display()
            );
        }
        assert!(seen_by(pid, &config.run_dir).is_dir(), "run folder hidden");
        for hidden in [&secret, &other, &rootfs.join("tree")] {
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

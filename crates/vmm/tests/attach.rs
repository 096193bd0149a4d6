//! Disks given to a running VM and taken back (what a pod's containers
//! need): a VM restored from a template with a virtio-scsi controller takes
//! 20 disks in a row, the guest finds each by its SCSI target, mounts it,
//! reads it and writes it; afterwards QEMU has no node and no descriptor of
//! any of them, the guest no stale device, and the template is unchanged.
//! Bad requests get errors that name the problem and leave nothing behind.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use containerization_agent::proto::v1::MountRequest;
use containerization_vmm::{DiskConfig, Qemu, StopOutcome, TemplateCache, VirtualMachine};
use support::{
    STOP_TIMEOUT, built_kernel, busybox_disk, config, ext4_of, guest_sh, mount_vda, runtime,
};

/// A 16 MiB ext4 image holding `/marker` with `marker`.
fn small_disk(dir: &Path, marker: &str) -> PathBuf {
    let tree = dir.join(format!("tree-{marker}"));
    std::fs::create_dir_all(&tree).expect("tree");
    std::fs::write(tree.join("marker"), marker).expect("marker");
    let image = dir.join(format!("{marker}.ext4"));
    ext4_of(&tree, &image, "16M");
    image
}

/// What `debugfs` reads of `path` in `image`.
fn read_in_image(image: &Path, path: &str) -> String {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image)
        .output()
        .expect("debugfs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The files QEMU (`pid`) holds open.
fn open_files(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("QEMU's descriptors")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .collect()
}

#[test]
fn twenty_disks_come_and_go_on_a_restored_vm_leaving_nothing_behind() {
    let dir = tempfile::tempdir().expect("folder");
    let cache = TemplateCache::new(dir.path().join("templates"));
    let base = busybox_disk(dir.path());
    let mut config = config(built_kernel(), &dir.path().join("run"));
    config.disks.push(DiskConfig::new(&base).read_only());
    config.attachable_disks = true;
    let key = TemplateCache::key(&config)
        .expect("key")
        .expect("templatable");
    let mut plain = config.clone();
    plain.attachable_disks = false;
    assert_ne!(
        TemplateCache::key(&plain).expect("key"),
        Some(key.clone()),
        "the controller is part of the VM's shape"
    );
    runtime().block_on(async {
        let qemu = Qemu::default();
        let (mut vm, origin) = cache.start(&qemu, &config).await.expect("start");
        assert!(origin.restored(), "{origin:?}");
        let state = dir.path().join("templates").join(&key).join("state");
        let before = std::fs::read(&state).expect("the template's state");
        let agent = vm.agent().expect("agent").clone();
        mount_vda(&agent, true).await;

        let disks: Vec<PathBuf> = (0..20)
            .map(|i| small_disk(dir.path(), &format!("disk{i}")))
            .collect();
        for (i, image) in disks.iter().enumerate() {
            let attached = vm.attach_disk(&DiskConfig::new(image)).expect("attach");
            assert_eq!(attached.target(), 0, "the lowest free target");
            assert!(open_files(vm.pid()).contains(image), "QEMU holds the disk");
            let device = agent
                .find_disk(attached.target(), Duration::from_secs(10))
                .await
                .expect("the guest finds the disk");
            assert!(device.starts_with("/dev/sd"), "{device}");
            agent
                .mount(MountRequest {
                    source: device.clone(),
                    target: "/att".into(),
                    fstype: "ext4".into(),
                    create_target: true,
                    ..Default::default()
                })
                .await
                .expect("mount the attached disk");
            let script =
                format!("test \"$(cat /att/marker)\" = disk{i} && echo written{i} > /att/written");
            assert_eq!(guest_sh(&agent, &format!("use{i}"), &script).await, 0);
            agent.umount("/att", false).await.expect("umount");
            vm.detach_disk(&attached).expect("detach");
            assert_eq!(read_in_image(image, "/written"), format!("written{i}\n"));
        }

        // Two at once take targets 0 and 1; a disk that is not there is
        // refused by name and leaves the next target free.
        let one = vm.attach_disk(&DiskConfig::new(&disks[0])).expect("attach");
        let missing = dir.path().join("no such disk.ext4");
        let error = vm
            .attach_disk(&DiskConfig::new(&missing))
            .expect_err("a missing image");
        assert!(error.to_string().contains("no such disk.ext4"), "{error}");
        let two = vm
            .attach_disk(&DiskConfig::new(&disks[1]).read_only())
            .expect("attach read-only");
        assert_eq!((one.target(), two.target()), (0, 1));
        for disk in [&one, &two] {
            vm.detach_disk(disk).expect("detach");
        }
        let error = vm.detach_disk(&one).expect_err("detached twice");
        assert!(error.to_string().contains("SCSI target 0"), "{error}");

        // QEMU holds nothing of any of them; the guest has no SCSI disk.
        let nodes = vm
            .qmp()
            .expect("qmp")
            .execute("query-named-block-nodes", None)
            .expect("nodes");
        assert!(!nodes.to_string().contains("cz-att"), "{nodes}");
        let held = open_files(vm.pid());
        for image in &disks {
            assert!(
                !held.contains(image),
                "QEMU still holds {}",
                image.display()
            );
        }
        assert_eq!(
            guest_sh(&agent, "stale", "! ls /sys/block | grep -q '^sd'").await,
            0,
            "a detached disk is gone from the guest"
        );
        // A VM with attached disks is no template: a restore would lack them.
        let again = vm.attach_disk(&DiskConfig::new(&disks[2])).expect("attach");
        let error = vm
            .snapshot(&dir.path().join("state"))
            .await
            .expect_err("no template with attached disks");
        assert!(error.to_string().contains("attached disks"), "{error}");
        vm.detach_disk(&again).expect("detach");
        assert_eq!(vm.stop(STOP_TIMEOUT).await, StopOutcome::Graceful);
        assert_eq!(
            std::fs::read(&state).expect("the template's state"),
            before,
            "the template is untouched"
        );
    });
}

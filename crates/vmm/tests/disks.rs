//! Disks and memory in a real guest: a raw ext4 image made by `mke2fs -d` is
//! readable, a qcow2 overlay takes writes while its base stays unchanged, and
//! memory the guest frees goes back to the host through the balloon.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use containerization_agent::proto::v1::WriteFileRequest;
use containerization_vmm::{DiskConfig, DiskFormat, Hypervisor, Qemu, StopOutcome, VirtualMachine};
use support::{STOP_TIMEOUT, built_kernel, busybox_disk, config, guest_sh, mount_vda, runtime};

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_raw_ext4_disk_from_mke2fs_is_readable_in_the_guest() {
    let dir = tempfile::tempdir().expect("dir");
    let image = busybox_disk(dir.path());
    let mut config = config(built_kernel(), &dir.path().join("run"));
    config.disks.push(DiskConfig::new(&image).read_only());
    runtime().block_on(async {
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let agent = vm.agent().expect("agent").clone();
        mount_vda(&agent, true).await;
        let hello = agent.stat("/mnt/hello.txt").await.expect("stat");
        assert_eq!(hello.size, 20);
        let code = guest_sh(
            &agent,
            "read",
            r#"test "$(cat /mnt/hello.txt)" = "hello from the host""#,
        )
        .await;
        assert_eq!(code, 0, "the guest reads the file's bytes");
        let code = guest_sh(&agent, "write", "echo x > /mnt/new").await;
        assert_ne!(code, 0, "a read-only disk refuses writes");
        // A VM started without the virtio-scsi controller takes no disk
        // while it runs (tests/attach.rs has one that does).
        let error = vm
            .attach_disk(&DiskConfig::new(&image))
            .expect_err("no controller");
        assert!(error.to_string().contains("attachable_disks"), "{error}");
        assert_eq!(vm.stop(STOP_TIMEOUT).await, StopOutcome::Graceful);
    });
}

#[test]
fn a_qcow2_overlay_takes_writes_and_its_base_stays_unchanged() {
    let dir = tempfile::tempdir().expect("dir");
    let base = busybox_disk(dir.path());
    let before = sha256(&base);
    let overlay = dir.path().join("overlay.qcow2");
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&base)
        .arg(&overlay)
        .status()
        .expect("qemu-img");
    assert!(status.success(), "qemu-img create");
    let disk = DiskConfig::new(&overlay);
    assert_eq!(disk.format, DiskFormat::Qcow2, "the format is sniffed");
    let mut config = config(built_kernel(), &dir.path().join("run"));
    config.disks.push(disk);
    runtime().block_on(async {
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let agent = vm.agent().expect("agent").clone();
        mount_vda(&agent, false).await;
        agent
            .write_file(WriteFileRequest {
                path: "/mnt/written-in-guest".into(),
                data: b"from the guest\n".to_vec(),
                mode: 0o644,
                append: false,
            })
            .await
            .expect("write into the overlay");
        assert_eq!(guest_sh(&agent, "rm", "rm /mnt/hello.txt && sync").await, 0);
        agent.umount("/mnt", false).await.expect("umount");
        assert_eq!(vm.stop(STOP_TIMEOUT).await, StopOutcome::Graceful);
    });
    assert_eq!(sha256(&base), before, "the base image never changes");
    // What the guest wrote is in the overlay: flatten it and read it back.
    let flat = dir.path().join("flat.raw");
    let status = Command::new("qemu-img")
        .args(["convert", "-q", "-O", "raw"])
        .arg(&overlay)
        .arg(&flat)
        .status()
        .expect("qemu-img convert");
    assert!(status.success());
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&flat)
        .output()
        .expect("e2fsck");
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let cat = Command::new("debugfs")
        .arg("-R")
        .arg("cat /written-in-guest")
        .arg(&flat)
        .output()
        .expect("debugfs");
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "from the guest\n");
    let ls = Command::new("debugfs")
        .arg("-R")
        .arg("ls /")
        .arg(&flat)
        .output()
        .expect("debugfs");
    assert!(
        !String::from_utf8_lossy(&ls.stdout).contains("hello.txt"),
        "the removal is in the overlay"
    );
}

#[test]
fn memory_the_guest_frees_goes_back_to_the_host() {
    let dir = tempfile::tempdir().expect("dir");
    let image = busybox_disk(dir.path());
    let mut config = config(built_kernel(), &dir.path().join("run"));
    config.memory_mib = 768;
    config.disks.push(DiskConfig::new(&image).read_only());
    runtime().block_on(async {
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let agent = vm.agent().expect("agent").clone();
        mount_vda(&agent, true).await;
        let mib = |kib: Option<u64>| kib.expect("QEMU's VmRSS") / 1024;
        let idle = mib(vm.rss_kib());
        // 256 MiB in tmpfs is guest memory in use until the file is removed.
        let code = guest_sh(&agent, "fill", "mkdir -p /run/fill && head -c 268435456 /dev/zero > /run/fill/f").await;
        assert_eq!(code, 0, "allocating 256 MiB in the guest");
        let full = mib(vm.rss_kib());
        assert_eq!(guest_sh(&agent, "free", "rm /run/fill/f").await, 0);
        // Free page reporting runs about every 2 s in the guest.
        let started = Instant::now();
        let mut after = full;
        while started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            after = mib(vm.rss_kib());
            if after + 192 < full {
                break;
            }
        }
        eprintln!(
            "QEMU RSS: idle {idle} MiB, with 256 MiB used {full} MiB, after freeing {after} MiB ({:.1} s later)",
            started.elapsed().as_secs_f64()
        );
        assert!(full >= idle + 200, "the fill shows in QEMU's RSS: {idle} -> {full} MiB");
        assert!(
            after + 192 < full,
            "freed guest memory returns to the host: {full} -> {after} MiB"
        );
        assert_eq!(vm.stop(STOP_TIMEOUT).await, StopOutcome::Graceful);
    });
}

/// Removes the tap device when the test ends, however it ends.
struct Tap(String);

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn a_tap_backed_interface_shows_in_the_guest_with_its_mac() {
    let tap = Tap(format!("czt{}", std::process::id() % 100_000));
    let status = Command::new("ip")
        .args(["tuntap", "add", "dev", &tap.0, "mode", "tap"])
        .status()
        .expect("ip tuntap");
    assert!(status.success(), "create tap {}", tap.0);
    let dir = tempfile::tempdir().expect("dir");
    let image = busybox_disk(dir.path());
    let mac: containerization_vmm::MacAddress = "02:c0:ff:ee:00:07".parse().expect("mac");
    let mut config = config(built_kernel(), &dir.path().join("run"));
    config.disks.push(DiskConfig::new(&image).read_only());
    config.nics.push(containerization_vmm::NicConfig {
        tap: tap.0.clone(),
        mac,
    });
    runtime().block_on(async {
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let agent = vm.agent().expect("agent").clone();
        mount_vda(&agent, true).await;
        let script = format!("test \"$(cat /sys/class/net/eth0/address)\" = {mac}");
        assert_eq!(guest_sh(&agent, "mac", &script).await, 0, "eth0 has {mac}");
        assert_eq!(vm.stop(STOP_TIMEOUT).await, StopOutcome::Graceful);
    });
    let mut bad = config.clone();
    bad.nics[0].tap = "cz-no-such-tap".into();
    let err = runtime()
        .block_on(Qemu::default().start(&bad))
        .map(drop)
        .expect_err("a missing tap")
        .to_string();
    assert!(
        err.contains("tap device cz-no-such-tap does not exist"),
        "{err}"
    );
}

#[test]
fn a_guest_process_stdout_reaches_a_host_listener() {
    use containerization_agent::proto::v1::{
        CreateProcessRequest, ProcessStdio, StreamEndpoint, stream_endpoint,
    };
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("dir");
    let image = busybox_disk(dir.path());
    let mut config = config(built_kernel(), &dir.path().join("run"));
    config.disks.push(DiskConfig::new(&image).read_only());
    runtime().block_on(async {
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let agent = vm.agent().expect("agent").clone();
        mount_vda(&agent, true).await;
        let port = 40_100;
        let listener = vm.vsock().listen(port).expect("listen");
        agent
            .create_process(CreateProcessRequest {
                id: "echo".into(),
                args: vec![
                    "/mnt/bin/busybox".into(),
                    "cat".into(),
                    "/mnt/hello.txt".into(),
                ],
                cwd: "/".into(),
                stdio: Some(ProcessStdio {
                    stdout: Some(StreamEndpoint {
                        target: Some(stream_endpoint::Target::VsockPort(port)),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("create");
        let mut stdout = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .expect("the guest dials the host port")
            .expect("accept");
        agent.start_process("echo").await.expect("start");
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.expect("read");
        assert_eq!(text, "hello from the host\n");
        let status = agent.wait_process("echo").await.expect("wait");
        assert_eq!(status.exit_code, Some(0));
        assert_eq!(vm.stop(STOP_TIMEOUT).await, StopOutcome::Graceful);
    });
}

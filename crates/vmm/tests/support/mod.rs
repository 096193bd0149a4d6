//! What the VM tests share: the kernels, the initramfs, a configuration,
//! a disk with busybox on it, and running a command in the guest.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use containerization_agent::AgentClient;
use containerization_agent::proto::v1::{CreateProcessRequest, MountRequest};
use containerization_testkit::{kernel_catalogue_dir, state_root};
use containerization_vmm::{Kernel, KernelCatalogue, VmConfig, VsockBackend, build_initramfs};

/// The static vminitd that `make test` builds before the tests.
pub fn vminitd() -> PathBuf {
    std::env::var_os("CZ_VMINITD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/x86_64-unknown-linux-musl/debug/vminitd")
        })
}

pub fn catalogue() -> Vec<Kernel> {
    KernelCatalogue::new(kernel_catalogue_dir())
        .list()
        .expect("catalogue")
}

/// The optimized kernel `make test` builds.
pub fn built_kernel() -> Kernel {
    catalogue()
        .into_iter()
        .find(|k| k.name().starts_with("cz-"))
        .expect("`make kernel` (run by `make test`) builds the optimized kernel")
}

/// Debian's cloud kernel, which `scripts/setup` installs.
pub fn debian_kernel() -> Kernel {
    catalogue()
        .into_iter()
        .find(|k| k.name().starts_with("debian-cloud-"))
        .expect("scripts/setup installs the Debian cloud kernel")
}

/// A configuration for `kernel` with its run folder in `run_dir`.
pub fn config(kernel: Kernel, run_dir: &Path) -> VmConfig {
    let initramfs = build_initramfs(&kernel, &vminitd(), &state_root().join("initramfs"))
        .expect("initramfs (run `make test`, which builds the musl vminitd)");
    let (vsock, _) = VsockBackend::detect(state_root().join("tools/bin/vhost-device-vsock"));
    VmConfig::new(kernel, initramfs, run_dir, vsock)
}

/// A raw ext4 image made by `mke2fs -d` holding `/bin/busybox` (static) with
/// a link per applet, and
/// `/hello.txt` ("hello from the host\n").
pub fn busybox_disk(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("bin")).expect("tree");
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).expect("busybox-static");
    let applets = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet)).expect("applet");
        }
    }
    std::fs::write(tree.join("hello.txt"), "hello from the host\n").expect("hello");
    let image = dir.join("disk.ext4");
    ext4_of(&tree, &image, "64M");
    image
}

/// Makes `image`, an ext4 file system of `size` (mke2fs's spelling) holding
/// `tree`, with `mke2fs -d`.
pub fn ext4_of(tree: &Path, image: &Path, size: &str) {
    let status = Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-d"])
        .arg(tree)
        .arg(image)
        .arg(size)
        .status()
        .expect("mke2fs");
    assert!(status.success(), "mke2fs -d failed");
}

/// Mounts `/dev/vda` (ext4) on `/mnt` in the guest, read-only or not.
pub async fn mount_vda(agent: &AgentClient, read_only: bool) {
    agent
        .mount(MountRequest {
            source: "/dev/vda".into(),
            target: "/mnt".into(),
            fstype: "ext4".into(),
            options: if read_only {
                vec!["ro".into()]
            } else {
                Vec::new()
            },
            create_target: true,
            ..Default::default()
        })
        .await
        .expect("mount /dev/vda on /mnt");
}

/// Runs `sh -c script` with the disk's busybox and returns its exit code;
/// panics, rather than hangs, when the guest does not answer in a minute.
pub async fn guest_sh(agent: &AgentClient, id: &str, script: &str) -> i32 {
    let run = async {
        agent
            .create_process(CreateProcessRequest {
                id: id.to_owned(),
                args: vec![
                    "/mnt/bin/busybox".into(),
                    "sh".into(),
                    "-c".into(),
                    script.to_owned(),
                ],
                env: vec!["PATH=/mnt/bin".into()],
                cwd: "/".into(),
                ..Default::default()
            })
            .await
            .expect("create");
        agent.start_process(id).await.expect("start");
        let status = agent.wait_process(id).await.expect("wait");
        agent.delete_process(id).await.expect("delete");
        status.exit_code.unwrap_or(-1)
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("{id}: `{script}` did not finish within 60 s"))
}

/// A multi-threaded runtime for the tests' async parts.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

/// Stops waiting for a VM after this long.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

//! Real boots under QEMU (TCG here): each catalogue kernel boots vminitd from
//! our initramfs, the agent answers over hybrid vsock, and shutdown ends QEMU.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use containerization_agent::{AgentClient, Connector, HybridVsockConnector};
use containerization_testkit::{kernel_catalogue_dir, state_root};
use containerization_vmm::{
    Accelerator, Kernel, KernelCatalogue, VirtualMachine, VmConfig, build_initramfs,
};

/// The static vminitd that `make test` builds before the tests.
fn vminitd() -> PathBuf {
    std::env::var_os("CZ_VMINITD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/x86_64-unknown-linux-musl/debug/vminitd")
        })
}

fn config(kernel: Kernel, run_dir: PathBuf) -> VmConfig {
    let initramfs = build_initramfs(&kernel, &vminitd(), &state_root().join("initramfs"))
        .expect("initramfs (run `make test`, which builds the musl vminitd)");
    VmConfig {
        cpus: 1,
        memory_mib: 256,
        kernel,
        initramfs,
        cmdline: Vec::new(),
        disks: Vec::new(),
        run_dir,
        accel: Accelerator::detect().0,
        qemu: PathBuf::from("qemu-system-x86_64"),
        vhost_vsock: state_root().join("tools/bin/vhost-device-vsock"),
    }
}

/// Boots, waits for the agent, checks `uname -r`, shuts down.
fn boot_and_shut_down(kernel: Kernel) {
    let name = kernel.name().to_owned();
    let release = kernel
        .release()
        .expect("release")
        .expect("entry records its release");
    let dir = tempfile::tempdir().expect("run folder");
    let mut vm = VirtualMachine::start(&config(kernel, dir.path().to_path_buf())).expect("start");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let connector: Arc<dyn Connector> = Arc::new(HybridVsockConnector::new(vm.vsock_socket()));
    let started = Instant::now();
    let agent = runtime.block_on(async {
        loop {
            if let Ok(agent) = AgentClient::connect(&connector, Duration::from_secs(10)).await
                && agent.version().await.is_ok()
            {
                return agent;
            }
            if started.elapsed() > Duration::from_secs(90) {
                panic!(
                    "{name}: the agent did not answer within 90 s; console:\n{}",
                    vm.console_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let ready = started.elapsed();
    let version = runtime.block_on(agent.version()).expect("version");
    assert_eq!(version.release, release, "{name}: guest uname -r");
    assert!(version.pid1, "{name}: vminitd is PID 1 in the guest");
    runtime.block_on(agent.shutdown()).expect("shutdown");
    let status = vm.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some(),
        "{name}: QEMU still runs 30 s after shutdown; console:\n{}",
        vm.console_tail(20)
    );
    eprintln!("{name}: agent ready after {:.2} s", ready.as_secs_f64());
}

fn catalogue() -> Vec<Kernel> {
    KernelCatalogue::new(kernel_catalogue_dir())
        .list()
        .expect("catalogue")
}

#[test]
fn debian_cloud_kernel_boots_vminitd() {
    let kernel = catalogue()
        .into_iter()
        .find(|k| k.name().starts_with("debian-cloud-"))
        .expect("scripts/setup installs the Debian cloud kernel");
    boot_and_shut_down(kernel);
}

#[test]
fn built_kernel_boots_vminitd() {
    let kernel = catalogue()
        .into_iter()
        .find(|k| k.name().starts_with("cz-"))
        .expect("`make kernel` (run by `make test`) builds the optimized kernel");
    boot_and_shut_down(kernel);
}

#[test]
fn bad_config_is_refused_before_anything_starts() {
    let kernel = catalogue().into_iter().next().expect("a kernel");
    let dir = tempfile::tempdir().expect("run folder");
    let mut cfg = config(kernel, dir.path().to_path_buf());
    cfg.memory_mib = 16;
    let err = VirtualMachine::start(&cfg).unwrap_err().to_string();
    assert!(err.contains("16 MiB is too little"), "{err}");
    cfg.memory_mib = 256;
    cfg.disks = vec![PathBuf::from("/nonexistent/disk.img")];
    let err = VirtualMachine::start(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("disk /nonexistent/disk.img does not exist"),
        "{err}"
    );
}

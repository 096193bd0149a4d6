//! Real boots under QEMU (TCG here): each catalogue kernel boots vminitd from
//! our initramfs, the agent answers over vsock, QMP reports the VM running,
//! and stop is a graceful shutdown.

mod support;

use std::time::{Duration, Instant};

use containerization_vmm::{Hypervisor, Kernel, Qemu, StopOutcome, VirtualMachine, VsockBackend};
use support::{STOP_TIMEOUT, built_kernel, config, debian_kernel, runtime};

/// Boots, checks `uname -r` and QMP, stops.
fn boot_and_stop(kernel: Kernel) {
    boot_and_stop_with(kernel, None);
}

/// [`boot_and_stop`], with `transport` instead of the default one.
fn boot_and_stop_with(kernel: Kernel, transport: Option<VsockBackend>) {
    let name = kernel.name().to_owned();
    let release = kernel
        .release()
        .expect("release")
        .expect("entry records its release");
    let dir = tempfile::tempdir().expect("run folder");
    let runtime = runtime();
    runtime.block_on(async {
        let mut config = config(kernel, dir.path());
        if let Some(transport) = transport {
            config.vsock = transport;
        }
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let agent = vm.agent().expect("agent").clone();
        let version = agent.version().await.expect("version");
        assert_eq!(version.release, release, "{name}: guest uname -r");
        assert!(version.pid1, "{name}: vminitd is PID 1 in the guest");
        let status = vm.qmp().expect("qmp").status().expect("query-status");
        assert!(status.running, "{name}: QMP says {status:?}");
        let stopping = Instant::now();
        let outcome = vm.stop(STOP_TIMEOUT).await;
        assert_eq!(outcome, StopOutcome::Graceful, "{name}: stop");
        eprintln!(
            "{name}: agent ready after {:.2} s, stopped in {:.2} s",
            vm.ready_after().as_secs_f64(),
            stopping.elapsed().as_secs_f64()
        );
    });
}

#[test]
fn debian_cloud_kernel_boots_vminitd() {
    boot_and_stop(debian_kernel());
}

#[test]
fn built_kernel_boots_vminitd() {
    boot_and_stop(built_kernel());
}

#[test]
fn vsock_still_carries_the_agent() {
    let helper = containerization_testkit::state_root().join("tools/bin/vhost-device-vsock");
    let (vsock, why) = VsockBackend::detect_vsock(helper);
    assert_ne!(vsock, VsockBackend::Serial, "{why}");
    boot_and_stop_with(built_kernel(), Some(vsock));
}

#[test]
fn two_vms_run_at_once_with_their_own_sockets_and_log_the_kernel() {
    let dirs = [
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    ];
    let configs: Vec<_> = dirs
        .iter()
        .map(|dir| {
            let mut config = config(built_kernel(), dir.path());
            config.cmdline.push("loglevel=6".into());
            config
        })
        .collect();
    runtime().block_on(async {
        let qemu = Qemu::default();
        let (a, b) = tokio::join!(qemu.start(&configs[0]), qemu.start(&configs[1]));
        let (mut a, mut b) = (a.expect("first VM"), b.expect("second VM"));
        assert_ne!(a.vsock(), b.vsock(), "each VM has its own vsock endpoint");
        assert_ne!(a.pid(), b.pid());
        let agent = |vm: &containerization_vmm::QemuVm| vm.agent().expect("agent").clone();
        agent(&a).set_hostname("vm-a").await.expect("hostname a");
        agent(&b).set_hostname("vm-b").await.expect("hostname b");
        assert_eq!(agent(&a).version().await.expect("a").nodename, "vm-a");
        assert_eq!(agent(&b).version().await.expect("b").nodename, "vm-b");
        for vm in [&a, &b] {
            let console = std::fs::read_to_string(vm.console_log()).expect("console log");
            assert!(
                console.contains("Linux version"),
                "the console log holds the kernel's messages:\n{console}"
            );
        }
        let started = Instant::now();
        let (sa, sb) = tokio::join!(a.stop(STOP_TIMEOUT), b.stop(STOP_TIMEOUT));
        assert_eq!((sa, sb), (StopOutcome::Graceful, StopOutcome::Graceful));
        eprintln!(
            "two VMs stopped in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    });
}

#[test]
fn a_kernel_panic_is_an_error_that_quotes_the_panic_line() {
    let dir = tempfile::tempdir().expect("run folder");
    let mut config = config(built_kernel(), dir.path());
    // No init in the initramfs and no root device: the kernel panics.
    config.cmdline.push("rdinit=/nonexistent".into());
    let err = runtime()
        .block_on(Qemu::new(Duration::from_secs(90)).start(&config))
        .expect_err("a VM whose kernel panics does not start");
    let message = err.to_string();
    assert!(
        message.starts_with("the guest kernel panicked: Kernel panic - not syncing"),
        "{message}"
    );
}

#[test]
fn bad_config_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("run folder");
    let mut cfg = config(built_kernel(), dir.path());
    let start = |cfg: &containerization_vmm::VmConfig| {
        runtime().block_on(Qemu::default().start(cfg)).map(drop)
    };
    cfg.memory_mib = 16;
    let err = start(&cfg).expect_err("16 MiB").to_string();
    assert!(err.contains("16 MiB is too little"), "{err}");
    cfg.memory_mib = 256;
    cfg.console_max_bytes = 100;
    let err = start(&cfg).expect_err("a 100-byte console").to_string();
    assert!(err.contains("console_max_bytes is 100"), "{err}");
    cfg.console_max_bytes = containerization_vmm::DEFAULT_CONSOLE_MAX_BYTES;
    cfg.disks = vec![containerization_vmm::DiskConfig::new(
        "/nonexistent/disk.img",
    )];
    let err = start(&cfg).expect_err("missing disk").to_string();
    assert!(
        err.contains("disk /nonexistent/disk.img does not exist"),
        "{err}"
    );
    cfg.disks.clear();
    cfg.initramfs = dir.path().join("no-initramfs");
    let err = start(&cfg).expect_err("missing initramfs").to_string();
    assert!(err.contains("no-initramfs does not exist"), "{err}");
    // A kernel that is not in the catalogue, or an entry without its image.
    let err = containerization_vmm::KernelCatalogue::new(dir.path())
        .get("no-such-kernel")
        .expect_err("unknown kernel")
        .to_string();
    assert!(err.contains("no kernel named \"no-such-kernel\""), "{err}");
    let empty = dir.path().join("empty-entry");
    std::fs::create_dir(&empty).expect("entry");
    let err = containerization_vmm::Kernel::open(&empty)
        .expect_err("entry without an image")
        .to_string();
    assert!(err.contains("has no kernel image"), "{err}");
    assert!(
        !dir.path().join("qmp.sock").exists(),
        "nothing started for a refused configuration"
    );
}

#[test]
fn the_boot_floor_powers_off_at_once_without_an_agent() {
    let dir = tempfile::tempdir().expect("run folder");
    let mut config = config(built_kernel(), &dir.path().join("run"));
    config.initramfs = containerization_vmm::floor_initramfs(dir.path()).expect("floor");
    runtime().block_on(async {
        let mut vm = containerization_vmm::QemuVm::launch(&config).expect("launch");
        assert!(vm.agent().is_none());
        let status = tokio::time::timeout(Duration::from_secs(90), vm.wait())
            .await
            .unwrap_or_else(|_| panic!("the floor did not power off:\n{}", vm.console_tail(20)))
            .expect("exit status");
        assert!(
            status.success(),
            "QEMU exits cleanly on the guest's reboot: {status}"
        );
    });
}

#[test]
fn qmp_reports_status_and_events_and_quit_ends_the_vm() {
    let dir = tempfile::tempdir().expect("run folder");
    let config = config(built_kernel(), &dir.path().join("run"));
    runtime().block_on(async {
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let qmp = vm.qmp().expect("qmp");
        assert!(qmp.status().expect("status").running);
        qmp.system_powerdown()
            .expect("the power button is accepted");
        qmp.wait_event("POWERDOWN", Duration::from_secs(10))
            .expect("QEMU reports the power button press as an event");
        qmp.quit().expect("quit");
        let status = tokio::time::timeout(Duration::from_secs(10), vm.wait())
            .await
            .expect("QEMU exits after quit");
        assert!(status.is_some());
        assert_eq!(vm.stop(STOP_TIMEOUT).await, StopOutcome::AlreadyStopped);
    });
}

//! Time to agent ready against the boot floor, for each catalogue kernel.
//!
//! For every kernel, alternating run by run: the floor (the same QEMU
//! command and kernel with an initramfs whose `/init` powers off at once;
//! time until QEMU exits) and ours (vminitd as init; time until its agent
//! answers). Prints medians, the ratios the vmm issue sets goals for, and
//! QEMU's memory beyond guest RAM at agent ready.
//!
//! `boot_bench STATE_ROOT VMINITD [RUNS]`; `bench/vmm/run` passes them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use containerization_vmm::{
    Hypervisor, Kernel, KernelCatalogue, Qemu, QemuVm, VirtualMachine, VmConfig, VsockBackend,
    build_initramfs, floor_initramfs,
};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A field of `/proc/<pid>/status` in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

struct Sample {
    floor: Vec<f64>,
    ready: Vec<f64>,
    overhead: Vec<f64>,
    guest: Vec<f64>,
    helper: Vec<f64>,
}

async fn measure(kernel: &Kernel, root: &Path, vminitd: &Path, runs: usize) -> Sample {
    let run = tempfile::tempdir().expect("run folder");
    let initramfs = build_initramfs(kernel, vminitd, &root.join("initramfs")).expect("initramfs");
    let floor = floor_initramfs(run.path()).expect("floor initramfs");
    let (vsock, _) = VsockBackend::detect(root.join("tools/bin/vhost-device-vsock"));
    let mut sample = Sample {
        floor: Vec::new(),
        ready: Vec::new(),
        overhead: Vec::new(),
        guest: Vec::new(),
        helper: Vec::new(),
    };
    let qemu = Qemu::new(Duration::from_secs(120));
    for i in 0..runs {
        let dir = run.path().join(format!("run-{i}"));
        let mut config = VmConfig::new(kernel.clone(), &floor, &dir, vsock.clone());
        let started = Instant::now();
        let mut vm = QemuVm::launch(&config).expect("floor boot");
        vm.wait().await.expect("floor exit");
        sample.floor.push(started.elapsed().as_secs_f64());

        config.initramfs = initramfs.clone();
        let started = Instant::now();
        let mut vm = qemu.start(&config).await.expect("boot");
        sample.ready.push(started.elapsed().as_secs_f64());
        let pid = vm.pid();
        sample
            .overhead
            .push(status_mib(pid, "RssAnon:") + status_mib(pid, "RssFile:"));
        sample.guest.push(status_mib(pid, "RssShmem:"));
        sample
            .helper
            .push(vm.helper_pid().map_or(0.0, |p| status_mib(p, "VmRSS:")));
        vm.stop(Duration::from_secs(20)).await;
    }
    sample
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(
        args.next()
            .expect("usage: boot_bench STATE_ROOT VMINITD [RUNS]"),
    );
    let vminitd = PathBuf::from(args.next().expect("VMINITD"));
    let runs: usize = args.next().map_or(7, |r| r.parse().expect("RUNS"));
    let kernels = KernelCatalogue::new(root.join("kernels"))
        .list()
        .expect("catalogue");
    let mut floors = Vec::new();
    println!(
        "{:<28} {:>9} {:>9} {:>7} {:>14} {:>12} {:>11}",
        "kernel", "floor s", "ready s", "ratio", "QEMU extra MiB", "guest MiB", "helper MiB"
    );
    for kernel in &kernels {
        let s = measure(kernel, &root, &vminitd, runs).await;
        let (floor, ready) = (median(s.floor), median(s.ready));
        println!(
            "{:<28} {floor:>9.3} {ready:>9.3} {:>7.2} {:>14.1} {:>12.1} {:>11.1}",
            kernel.name(),
            ready / floor,
            median(s.overhead),
            median(s.guest),
            median(s.helper)
        );
        floors.push((kernel.name().to_owned(), floor));
    }
    let floor_of = |prefix: &str| {
        floors
            .iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|f| f.1)
    };
    if let (Some(built), Some(debian)) = (floor_of("cz-"), floor_of("debian-cloud-")) {
        println!(
            "built kernel's floor / Debian kernel's floor: {:.2}",
            built / debian
        );
    }
    println!("(medians of {runs} runs each, floor and ready alternating; ratio = ready / floor)");
}

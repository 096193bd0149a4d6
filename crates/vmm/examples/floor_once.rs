//! Boots the boot floor once and exits: the default catalogue kernel (or the
//! one named) with a 144-byte `/init` that powers off at once, on the same
//! QEMU command line containers use. `bench/containers/run` times it against
//! `cctl run --rm IMAGE true`.
//!
//! Usage: `floor_once STATE_ROOT [KERNEL]`.

use std::path::PathBuf;

use containerization_vmm::{
    KernelCatalogue, QemuVm, VirtualMachine, VmConfig, VsockBackend, floor_initramfs,
};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().expect("usage: floor_once STATE_ROOT [KERNEL]"));
    let catalogue = KernelCatalogue::new(root.join("kernels"));
    let kernel = match args.next() {
        Some(name) => catalogue.get(&name).expect("kernel"),
        None => catalogue.default_kernel().expect("default kernel").0,
    };
    let run = tempfile::tempdir().expect("run folder");
    let floor = floor_initramfs(run.path()).expect("floor initramfs");
    let (vsock, _) = VsockBackend::detect(root.join("tools/bin/vhost-device-vsock"));
    let config = VmConfig::new(kernel, &floor, run.path().join("vm"), vsock);
    let mut vm = QemuVm::launch(&config).expect("floor boot");
    vm.wait().await.expect("floor exit");
}

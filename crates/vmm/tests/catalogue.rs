//! The kernel catalogue that `scripts/setup` fills holds Debian's cloud kernel
//! with its modules, in the layout this crate reads.

use containerization_testkit::kernel_catalogue_dir;
use containerization_vmm::{KernelCatalogue, KernelImageFormat};

#[test]
fn setup_installed_the_debian_cloud_kernel_with_its_modules() {
    let catalogue = KernelCatalogue::new(kernel_catalogue_dir());
    let kernels = catalogue.list().expect("catalogue is readable");
    let kernel = kernels
        .iter()
        .find(|k| k.name().starts_with("debian-cloud-"))
        .unwrap_or_else(|| panic!("no debian-cloud kernel in {}", catalogue.dir().display()));

    assert_eq!(kernel.format(), KernelImageFormat::BzImage);
    let release = kernel.release().unwrap().expect("release file");
    assert!(release.ends_with("-cloud-amd64"), "{release}");
    assert_eq!(
        kernel.name(),
        format!("debian-cloud-{}", release.trim_end_matches("-cloud-amd64"))
    );

    // The virtio and vsock drivers a microVM needs are modules in this kernel,
    // and depmod has recorded their dependencies.
    let modules = kernel.modules_dir().expect("modules/modules.dep");
    let deps = std::fs::read_to_string(modules.join("modules.dep")).unwrap();
    for module in [
        "virtio_mmio.ko",
        "virtio_blk.ko",
        "vmw_vsock_virtio_transport.ko",
    ] {
        let line = deps
            .lines()
            .find(|l| l.split(':').next().is_some_and(|m| m.ends_with(module)))
            .unwrap_or_else(|| panic!("{module} in modules.dep"));
        let path = line.split(':').next().unwrap();
        assert!(modules.join(path).is_file(), "{path} is in the module tree");
    }
    let config = std::fs::read_to_string(kernel.config().expect("config")).unwrap();
    assert!(config.contains("CONFIG_VIRTIO_MMIO=m"));

    assert_eq!(catalogue.get(kernel.name()).unwrap(), *kernel);
}

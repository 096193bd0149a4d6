//! Loading the kernel modules the initramfs carries.
//!
//! The initramfs builder packs a kernel's needed modules under
//! `/lib/modules/<release>/` with a `modules.dep` restricted to them. Each
//! module is loaded after its dependencies, with the parameters the kernel
//! command line gives it (`virtio_mmio.device=…`): for loadable modules the
//! kernel leaves those to whoever loads them, as modprobe does.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Loads every module listed in this kernel's `modules.dep`, if there is one.
pub(crate) fn load_from_initramfs() {
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let dir = PathBuf::from("/lib/modules").join(&release);
    let Ok(dep) = std::fs::read_to_string(dir.join("modules.dep")) else {
        tracing::debug!("no modules for {release} in the initramfs");
        return;
    };
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let graph = parse_modules_dep(&dep);
    let mut loaded = HashSet::new();
    for module in load_order(&graph) {
        if !loaded.insert(module.clone()) {
            continue;
        }
        let params = module_params(&cmdline, &module_name(&module));
        if let Err(err) = load(&dir.join(&module), &params) {
            tracing::warn!("cannot load module {module}: {err}");
        }
    }
}

/// `modules.dep` as (module, its dependencies) in file order.
fn parse_modules_dep(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let (module, deps) = line.split_once(':')?;
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            Some((module.trim().to_owned(), deps))
        })
        .collect()
}

/// Every module after all of its dependencies.
fn load_order(graph: &[(String, Vec<String>)]) -> Vec<String> {
    let deps: HashMap<&str, &Vec<String>> = graph.iter().map(|(m, d)| (m.as_str(), d)).collect();
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    fn visit<'a>(
        module: &'a str,
        deps: &HashMap<&'a str, &'a Vec<String>>,
        seen: &mut HashSet<&'a str>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(module) {
            return;
        }
        // modules.dep lists the deepest dependency last.
        if let Some(list) = deps.get(module) {
            for dep in list.iter().rev() {
                visit(dep, deps, seen, order);
            }
        }
        order.push(module.to_owned());
    }
    for (module, _) in graph {
        visit(module, &deps, &mut seen, &mut order);
    }
    order
}

/// `kernel/drivers/virtio/virtio_mmio.ko` → `virtio_mmio`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    stem.replace('-', "_")
}

/// The `name.key=value` words of the kernel command line, as `key=value ...`.
fn module_params(cmdline: &str, name: &str) -> String {
    cmdline
        .split_whitespace()
        .filter_map(|word| {
            let (module, param) = word.split_once('.')?;
            (module.replace('-', "_") == name && param.contains('=')).then_some(param)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn load(path: &Path, params: &str) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let params = CString::new(params).map_err(std::io::Error::other)?;
    match rustix::system::finit_module(&file, &params, 0) {
        Ok(()) => {
            tracing::debug!("loaded {}", path.display());
            Ok(())
        }
        // Already there, or built into this kernel.
        Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_load_first_deepest_first() {
        let dep = "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: \
                   kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko \
                   kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio.ko\n\
                   kernel/net/vmw_vsock/vsock.ko:\n\
                   kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: \
                   kernel/net/vmw_vsock/vsock.ko\n\
                   kernel/drivers/virtio/virtio.ko:\n";
        let order = load_order(&parse_modules_dep(dep));
        let pos = |m: &str| order.iter().position(|x| x.ends_with(m)).unwrap();
        assert!(pos("/vsock.ko") < pos("transport_common.ko"));
        assert!(pos("transport_common.ko") < pos("virtio_transport.ko"));
        assert!(pos("/virtio.ko") < pos("virtio_transport.ko"));
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn params_come_from_the_command_line() {
        let cmdline = "console=ttyS0 virtio_mmio.device=512@0xfeb00e00:12 \
                       virtio-mmio.device=512@0xfeb00c00:11 virtio_net.napi_tx=1";
        assert_eq!(
            module_params(cmdline, "virtio_mmio"),
            "device=512@0xfeb00e00:12 device=512@0xfeb00c00:11"
        );
        assert_eq!(
            module_name("kernel/drivers/virtio/virtio_mmio.ko"),
            "virtio_mmio"
        );
    }
}

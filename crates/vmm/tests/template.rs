//! A VM saved as a template and restored: the template boots vminitd over
//! the serial transport, is saved (device state to a file, memory in a
//! shared memory file) and stopped; two VMs restored from it, each with its
//! own disk and a private view of the memory file, answer the agent, mount
//! their own disk (not the template's cached blocks) and do not see each
//! other's writes, and the memory file does not change. The cache builds a
//! template once, restores from it after, and boots when it is broken.

mod support;

use std::path::Path;
use std::process::Command;

use containerization_vmm::{
    DiskConfig, Hypervisor, MemoryBacking, Origin, Qemu, StopOutcome, TemplateCache,
    VirtualMachine, VmConfig, VsockBackend,
};
use support::{STOP_TIMEOUT, built_kernel, busybox_disk, config, guest_sh, mount_vda, runtime};

/// A busybox disk in `dir` with `/marker` holding `marker`.
fn marked_disk(dir: &Path, marker: &str) -> std::path::PathBuf {
    let image = busybox_disk(dir);
    let file = dir.join("marker");
    std::fs::write(&file, marker).expect("marker");
    let status = Command::new("debugfs")
        .arg("-w")
        .arg("-R")
        .arg(format!("write {} marker", file.display()))
        .arg(&image)
        .output()
        .expect("debugfs");
    assert!(status.status.success(), "debugfs write failed");
    image
}

/// Exits 0 when the guest's CPU was idle at least half of a second's
/// ticks (`/proc/stat`'s first line: user nice system idle iowait irq
/// softirq steal).
const MOSTLY_IDLE: &str = "ticks() { set -- $(head -1 /proc/stat); \
     echo $(($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9)) $5; }; \
     set -- $(ticks); sleep 1; set -- $(ticks) $1 $2; \
     test $((2 * ($2 - $4))) -ge $(($1 - $3))";

fn template_config(run_dir: &Path, disk: &Path, memory: &Path, shared: bool) -> VmConfig {
    let mut config = config(built_kernel(), run_dir);
    assert_eq!(config.vsock, VsockBackend::Serial, "the default transport");
    config.disks.push(DiskConfig::new(disk));
    config.memory = MemoryBacking::File {
        path: memory.to_path_buf(),
        shared,
    };
    config
}

#[test]
fn a_template_restores_twice_with_its_own_disks_and_private_memory() {
    let dir = tempfile::tempdir().expect("folder");
    let memory = dir.path().join("memory");
    let state = dir.path().join("state");
    let runtime = runtime();
    runtime.block_on(async {
        let template_dir = dir.path().join("template");
        let disk = marked_disk(&template_dir, "template");
        let config = template_config(&template_dir.join("run"), &disk, &memory, true);
        let mut vm = Qemu::default()
            .start(&config)
            .await
            .expect("template boots");
        let booted = vm.ready_after();
        vm.snapshot(&state).await.expect("snapshot");
        vm.stop(STOP_TIMEOUT).await;
        let saved = std::fs::read(&memory).expect("memory file");

        let mut restored = Vec::new();
        for name in ["one", "two"] {
            let vm_dir = dir.path().join(name);
            let disk = marked_disk(&vm_dir, name);
            let mut config = template_config(&vm_dir.join("run"), &disk, &memory, false);
            config.restore_from = Some(state.clone());
            let vm = Qemu::default()
                .start(&config)
                .await
                .unwrap_or_else(|e| panic!("{name}: restore: {e}"));
            eprintln!(
                "{name}: agent ready {:.3} s after QEMU's start (the template booted in {:.3} s)",
                vm.ready_after().as_secs_f64(),
                booted.as_secs_f64()
            );
            restored.push((name, vm));
        }
        for (name, vm) in &restored {
            let agent = vm.agent().expect("agent");
            assert!(agent.version().await.expect("version").pid1);
            mount_vda(agent, false).await;
            let check = format!("test \"$(cat /mnt/marker)\" = {name} && echo {name} > /written");
            assert_eq!(
                guest_sh(agent, "mark", &check).await,
                0,
                "{name}: its own disk"
            );
            assert_eq!(
                guest_sh(agent, "idle", MOSTLY_IDLE).await,
                0,
                "{name}: a restored guest with nothing to do keeps its CPU busy"
            );
        }
        let (_, two) = &restored[1];
        let agent = two.agent().expect("agent");
        let unseen = "test \"$(cat /written)\" = two";
        assert_eq!(
            guest_sh(agent, "seen", unseen).await,
            0,
            "two sees its own write only"
        );
        for (name, mut vm) in restored {
            assert_eq!(vm.stop(STOP_TIMEOUT).await, StopOutcome::Graceful, "{name}");
        }
        let after = std::fs::read(&memory).expect("memory file");
        assert!(
            saved == after,
            "restored VMs wrote to the template's memory file"
        );
    });
}

#[test]
fn a_snapshot_needs_a_shared_memory_file() {
    let dir = tempfile::tempdir().expect("folder");
    let runtime = runtime();
    runtime.block_on(async {
        let config = config(built_kernel(), dir.path());
        let mut vm = Qemu::default().start(&config).await.expect("boots");
        let err = vm
            .snapshot(&dir.path().join("state"))
            .await
            .expect_err("memfd memory cannot be a template");
        assert!(err.to_string().contains("shared memory file"), "{err}");
        vm.stop(STOP_TIMEOUT).await;
    });
}

#[test]
fn the_cache_builds_once_restores_after_and_boots_when_a_template_is_broken() {
    let dir = tempfile::tempdir().expect("folder");
    let cache = TemplateCache::new(dir.path().join("templates"));
    let runtime = runtime();
    runtime.block_on(async {
        let qemu = Qemu::default();
        let mut origins = Vec::new();
        for name in ["a", "b"] {
            let vm_dir = dir.path().join(name);
            let disk = marked_disk(&vm_dir, name);
            let mut config = config(built_kernel(), &vm_dir.join("run"));
            config.disks.push(DiskConfig::new(&disk));
            let (mut vm, origin) = cache.start(&qemu, &config).await.expect("start");
            let agent = vm.agent().expect("agent");
            mount_vda(agent, false).await;
            let check = format!("test \"$(cat /mnt/marker)\" = {name}");
            assert_eq!(guest_sh(agent, "mark", &check).await, 0, "{name}: its disk");
            vm.stop(STOP_TIMEOUT).await;
            origins.push(origin);
        }
        assert_eq!(origins, [Origin::BuiltAndRestored, Origin::Restored]);

        // A template whose state no longer loads is removed, and the VM boots.
        let vm_dir = dir.path().join("c");
        let disk = marked_disk(&vm_dir, "c");
        let mut config = config(built_kernel(), &vm_dir.join("run"));
        config.disks.push(DiskConfig::new(&disk));
        let key = TemplateCache::key(&config)
            .expect("key")
            .expect("a serial VM has one");
        let template = dir.path().join("templates").join(&key);
        std::fs::write(template.join("state"), b"not a migration stream").expect("break it");
        let (mut vm, origin) = cache.start(&qemu, &config).await.expect("start");
        assert_eq!(origin, Origin::Booted);
        assert!(!template.exists(), "the broken template is removed");
        assert!(vm.agent().expect("agent").version().await.is_ok());
        vm.stop(STOP_TIMEOUT).await;

        // Another memory size is another shape.
        config.memory_mib += 64;
        let other = TemplateCache::key(&config).expect("key").expect("key");
        assert_ne!(key, other);
    });
}

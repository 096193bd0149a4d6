//! What this host can give a container's VM, and what a VM gets when the
//! container asks for nothing.
//!
//! Docker's containers see every CPU of the host and may use all of its
//! memory; a VM sees only what it was given. So a VM without `--cpus` gets
//! every host CPU, and one without `--memory` a quarter of the host's memory
//! (at least 1 GiB, at most 16 GiB). Memory a guest never touches costs the
//! host next to nothing: a VM restored from a template maps the template's
//! sparse RAM file privately, so only pages the guest reads or writes are
//! backed (measured in `docs/architecture.md`, "Resources"). A VM cannot
//! have more memory than the host has: a larger `--memory` is refused.

use std::sync::OnceLock;

/// Memory a VM gets beyond its container's `--memory` limit, in MiB: its
/// kernel, vminitd and their caches live outside the container's cgroup.
pub const VM_OVERHEAD_MIB: u64 = 128;
/// The least memory a VM without `--memory` gets, in MiB (unless the host
/// has less).
const DEFAULT_VM_MEMORY_FLOOR_MIB: u64 = 1024;
/// The most memory a VM without `--memory` gets, in MiB.
const DEFAULT_VM_MEMORY_CEILING_MIB: u64 = 16 * 1024;
/// Default VM memory is a multiple of this, in MiB, so a host whose exact
/// total wobbles keeps one template shape.
const MEMORY_STEP_MIB: u64 = 256;
/// The most vCPUs a VM may have (the vmm's limit).
const MAX_VCPUS: u32 = 64;

/// The host's CPUs and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostResources {
    /// CPUs this process may run on.
    pub cpus: u32,
    /// Total memory, in bytes (`MemTotal` of `/proc/meminfo`).
    pub memory_bytes: u64,
}

impl HostResources {
    /// This host's, read once per process.
    pub fn detect() -> Self {
        static HOST: OnceLock<HostResources> = OnceLock::new();
        *HOST.get_or_init(|| {
            let cpus = std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
            let memory_bytes = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|text| mem_total_bytes(&text))
                .unwrap_or(u64::MAX);
            HostResources { cpus, memory_bytes }
        })
    }

    /// Total memory in MiB.
    pub fn memory_mib(&self) -> u64 {
        self.memory_bytes >> 20
    }

    /// vCPUs of a VM whose container did not say `--cpus`: every host CPU,
    /// as Docker shows a container every CPU, up to the vmm's limit of 64.
    pub fn default_vcpus(&self) -> u32 {
        self.cpus.clamp(1, MAX_VCPUS)
    }

    /// Memory of a VM whose container has no memory limit, in MiB: a
    /// quarter of the host's, at least 1 GiB and at most 16 GiB, never more
    /// than the host has.
    pub fn default_vm_memory_mib(&self) -> u32 {
        let host = self.memory_mib();
        let share = (host / 4).clamp(DEFAULT_VM_MEMORY_FLOOR_MIB, DEFAULT_VM_MEMORY_CEILING_MIB);
        let rounded = (share / MEMORY_STEP_MIB * MEMORY_STEP_MIB).min(host);
        u32::try_from(rounded).unwrap_or(u32::MAX)
    }

    /// The VM memory for a container limited to `limit_bytes` (`None` or 0:
    /// no limit), in MiB: the limit plus [`VM_OVERHEAD_MIB`], and never less
    /// than the default, so the guest kernel's overcommit heuristic, which
    /// refuses one allocation larger than the guest's memory, lets a big
    /// allocation reach the container's cgroup limit and its OOM kill, as
    /// on Docker's host. Never more than the host has.
    ///
    /// Errors: a limit above the host's total memory, as a sentence naming
    /// both (the VM could not be given that memory).
    pub fn vm_memory_mib(&self, limit_bytes: Option<u64>) -> Result<u32, String> {
        let default = self.default_vm_memory_mib();
        let Some(limit) = limit_bytes.filter(|b| *b != 0) else {
            return Ok(default);
        };
        self.check_memory_limit(limit)?;
        let wanted = (limit >> 20)
            .saturating_add(VM_OVERHEAD_MIB)
            .min(self.memory_mib());
        Ok(u32::try_from(wanted).unwrap_or(u32::MAX).max(default))
    }

    /// Refuses a memory limit above the host's total memory.
    pub fn check_memory_limit(&self, limit_bytes: u64) -> Result<(), String> {
        if limit_bytes > self.memory_bytes {
            return Err(format!(
                "{} asked for, but this host has {} of memory: each container runs in a VM, \
                 which cannot be given more memory than the host has",
                human_size(limit_bytes),
                human_size(self.memory_bytes)
            ));
        }
        Ok(())
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `bytes` in the largest binary unit that keeps one decimal (`23.4 GiB`),
/// as every size the project shows people is written.
///
/// ```
/// assert_eq!(containerization::host::human_size(1536), "1.5 KiB");
/// assert_eq!(containerization::host::human_size(512), "512 B");
/// ```
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn host(cpus: u32, memory_gib: u64) -> HostResources {
        HostResources {
            cpus,
            memory_bytes: memory_gib * GIB,
        }
    }

    #[test]
    fn mem_total_is_read_in_bytes() {
        let text = "MemTotal:       24569132 kB\nMemFree:  100 kB\n";
        assert_eq!(mem_total_bytes(text), Some(24_569_132 * 1024));
        assert_eq!(mem_total_bytes("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn default_memory_is_a_quarter_of_the_host_within_bounds() {
        assert_eq!(host(2, 24).default_vm_memory_mib(), 6 * 1024);
        assert_eq!(host(2, 2).default_vm_memory_mib(), 1024);
        assert_eq!(host(2, 256).default_vm_memory_mib(), 16 * 1024);
        // Never more than the host has.
        let tiny = HostResources {
            cpus: 1,
            memory_bytes: 700 << 20,
        };
        assert_eq!(tiny.default_vm_memory_mib(), 700);
    }

    #[test]
    fn a_limit_adds_overhead_but_never_shrinks_the_vm() {
        let h = host(2, 24);
        assert_eq!(h.vm_memory_mib(None), Ok(6 * 1024));
        assert_eq!(h.vm_memory_mib(Some(0)), Ok(6 * 1024));
        assert_eq!(h.vm_memory_mib(Some(64 << 20)), Ok(6 * 1024));
        assert_eq!(h.vm_memory_mib(Some(10 * GIB)), Ok(10 * 1024 + 128));
        // At the host's size: capped at the host, not refused.
        assert_eq!(h.vm_memory_mib(Some(24 * GIB)), Ok(24 * 1024));
    }

    #[test]
    fn a_limit_above_the_host_is_refused_naming_its_memory() {
        let err = host(2, 24).vm_memory_mib(Some(100 * GIB)).unwrap_err();
        assert!(err.contains("100.0 GiB asked for"), "{err}");
        assert!(err.contains("this host has 24.0 GiB"), "{err}");
    }

    #[test]
    fn default_vcpus_are_every_host_cpu_up_to_64() {
        assert_eq!(host(2, 24).default_vcpus(), 2);
        assert_eq!(host(128, 24).default_vcpus(), 64);
    }
}

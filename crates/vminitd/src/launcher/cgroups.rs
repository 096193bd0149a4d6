//! One cgroup v2 group per container, with its memory, CPU and pids limits.
//!
//! vminitd finds the cgroup2 mount (`/sys/fs/cgroup` in a guest; on a host
//! with the hybrid layout, `/sys/fs/cgroup/unified`), makes a parent group
//! for its containers (`containers`, or `vminitd.<pid>` when it runs on a host
//! so test runs never collide), enables the controllers the kernel offers, and
//! gives each container a child group. A limit whose controller is missing is
//! skipped with a warning naming it: a host whose controllers sit in cgroup v1
//! still runs containers, only without those limits.
//!
//! Every container group also gets the device rules of [`super::devices`]
//! (a BPF program: cgroup v2 has no `devices.allow`); a group that cannot
//! get them is refused, as the container would reach every guest device.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

/// The controllers the launcher writes limits for.
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// The parent group of every container, and what it can limit.
#[derive(Debug, Clone)]
pub(crate) struct Cgroups {
    parent: Option<PathBuf>,
    controllers: Vec<String>,
}

impl Cgroups {
    /// Finds the cgroup2 hierarchy and makes the parent group; without one,
    /// containers run without cgroups (said once in the log).
    pub(crate) fn discover(pid1: bool) -> Self {
        let none = Self {
            parent: None,
            controllers: Vec::new(),
        };
        let Some(mount) = cgroup2_mount() else {
            tracing::warn!("no cgroup2 file system is mounted: containers get no cgroup");
            return none;
        };
        let own = own_cgroup().unwrap_or_default();
        let base = mount.join(own.trim_start_matches('/'));
        let name = if pid1 {
            "containers".to_owned()
        } else {
            format!("vminitd.{}", std::process::id())
        };
        if !pid1 {
            remove_stale_parents(&base);
        }
        let parent = base.join(name);
        if let Err(err) = std::fs::create_dir_all(&parent) {
            tracing::warn!(
                "cannot create cgroup {}: {err}: containers get no cgroup",
                parent.display()
            );
            return none;
        }
        let offered = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        let mut controllers = Vec::new();
        for controller in CONTROLLERS {
            if !offered.split_whitespace().any(|c| c == controller) {
                tracing::warn!(
                    "cgroup controller {controller} is not available in {} \
                     (the host may hold it in cgroup v1): {controller} limits are not applied",
                    base.display()
                );
                continue;
            }
            let enable = format!("+{controller}");
            let enabled = [&base, &parent].iter().all(|group| {
                std::fs::write(group.join("cgroup.subtree_control"), &enable)
                    .inspect_err(|err| {
                        tracing::warn!(
                            "cannot enable cgroup controller {controller} in {}: {err}",
                            group.display()
                        );
                    })
                    .is_ok()
            });
            if enabled {
                controllers.push(controller.to_owned());
            }
        }
        tracing::debug!(parent = %parent.display(), ?controllers, "cgroups ready");
        Self {
            parent: Some(parent),
            controllers,
        }
    }

    /// Makes the group of container `id`, writes its limits and attaches
    /// the default device rules; `None` when there is no cgroup2 hierarchy.
    pub(crate) fn create(
        &self,
        id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Option<PathBuf>, String> {
        let Some(parent) = &self.parent else {
            return Ok(None);
        };
        let group = parent.join(id.replace('/', "_"));
        std::fs::create_dir_all(&group)
            .map_err(|err| format!("cannot create cgroup {}: {err}", group.display()))?;
        super::devices::restrict(&group).map_err(|err| format!("container {id}: {err}"))?;
        if let Some(resources) = resources {
            for (controller, file, value) in limits(resources) {
                if !self.controllers.iter().any(|c| c == controller) {
                    tracing::warn!(
                        "container {id}: {file} = {value} not applied: \
                         the {controller} controller is unavailable"
                    );
                    continue;
                }
                std::fs::write(group.join(file), &value).map_err(|err| {
                    format!("container {id}: cannot set {file} to {value}: {err}")
                })?;
            }
        }
        Ok(Some(group))
    }

    /// Removes the parent group and its emptied container groups (at
    /// shutdown); best effort.
    pub(crate) fn remove_parent(&self) {
        if let Some(parent) = &self.parent {
            remove_tree(parent);
        }
    }
}

/// Removes `group` and the (empty) groups under it; cgroup folders hold no
/// files that need deleting, only subfolders.
fn remove_tree(group: &Path) {
    if let Ok(entries) = std::fs::read_dir(group) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(group);
}

/// On a host, a vminitd that was killed leaves its `vminitd.<pid>` group
/// behind; remove those whose process is gone.
fn remove_stale_parents(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("vminitd."))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_tree(&entry.path());
        }
    }
}

/// Whether the OOM killer ended a process in `group`.
pub(crate) fn oom_killed(group: &Path) -> bool {
    std::fs::read_to_string(group.join("memory.events"))
        .ok()
        .and_then(|events| {
            events.lines().find_map(|line| {
                line.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
        })
        .is_some_and(|kills| kills > 0)
}

/// Removes an emptied group; best effort (a process may linger a moment).
pub(crate) fn remove(group: &Path) {
    for _ in 0..50 {
        match std::fs::remove_dir(group) {
            Ok(()) => return,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    tracing::warn!("cgroup {} is still busy; left in place", group.display());
}

/// Moves the calling process into `group`.
pub(crate) fn join(group: &Path) -> std::io::Result<()> {
    std::fs::write(group.join("cgroup.procs"), b"0")
}

/// (controller, file, value) for every limit `resources` sets.
fn limits(resources: &LinuxResources) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    if let Some(memory) = resources.memory()
        && let Some(limit) = memory.limit()
    {
        out.push(("memory", "memory.max", max_or(limit)));
        // OCI's swap is memory plus swap; cgroup v2 counts swap alone.
        if let Some(swap) = memory.swap() {
            let value = if swap <= 0 {
                "max".to_owned()
            } else {
                (swap - limit).max(0).to_string()
            };
            out.push(("memory", "memory.swap.max", value));
        }
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(quota) = cpu.quota() {
            let period = cpu.period().unwrap_or(100_000);
            out.push(("cpu", "cpu.max", format!("{} {period}", max_or(quota))));
        }
        if let Some(shares) = cpu.shares() {
            // The conversion crun and runc agree on: shares 2..262144 onto
            // weight 1..10000.
            let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
            out.push(("cpu", "cpu.weight", weight.to_string()));
        }
    }
    if let Some(pids) = resources.pids() {
        out.push(("pids", "pids.max", max_or(pids.limit())));
    }
    out
}

fn max_or(value: i64) -> String {
    if value <= 0 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

/// Where cgroup2 is mounted, from `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let target = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(target))
    })
}

/// This process's cgroup2 path (`0::/path` in `/proc/self/cgroup`).
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("0::").map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_cgroup_v2_files() {
        let resources: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000},
                "pids": {"limit": 64}}"#,
        )
        .unwrap();
        let limits = limits(&resources);
        assert!(limits.contains(&("memory", "memory.max", "67108864".into())));
        assert!(limits.contains(&("cpu", "cpu.max", "50000 100000".into())));
        assert!(limits.contains(&("pids", "pids.max", "64".into())));
    }
}

//! What the shim reads from, and keeps in, a task's bundle: containerd's
//! runtime spec (`config.json`), the root file system mounts it hands over,
//! and `cz.json`, which names the container (and pod) made for the task so
//! that `shim delete` can clean up after a shim that died.

use std::path::{Path, PathBuf};

use anyhow::Context;
use containerd_shim::protos::types::mount::Mount;
use containerization::rootfs::SnapshotKey;

/// The annotation CRI sets on every container of a pod: the pod's id.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// The annotation CRI sets to the image a container was made from.
const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";

/// A task's bundle folder.
#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    /// The folder.
    pub dir: PathBuf,
    /// Its runtime spec.
    pub spec: serde_json::Value,
}

/// The container and pod a task became.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Made {
    /// Our container's id.
    pub container: String,
    /// Our pod's id, when it joined one.
    pub pod: Option<String>,
}

impl Bundle {
    /// Reads the bundle at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let dir = dir.into();
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the runtime spec {}", path.display()))?;
        let spec = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a runtime spec", path.display()))?;
        Ok(Self { dir, spec })
    }

    /// The pod the task belongs to: CRI's sandbox id, else `None` (a pod
    /// of its own).
    pub fn sandbox_id(&self) -> Option<String> {
        self.spec["annotations"][SANDBOX_ID]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
    }

    /// What to call its image.
    pub fn image_name(&self) -> String {
        self.spec["annotations"][IMAGE_NAME]
            .as_str()
            .unwrap_or("containerd")
            .to_owned()
    }

    /// Where the root file system is mounted on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Records what the task became.
    pub fn record(&self, made: &Made) -> anyhow::Result<()> {
        let path = self.dir.join("cz.json");
        std::fs::write(&path, serde_json::to_vec(made)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// What the task in bundle `dir` became, if it got that far.
pub(crate) fn recorded(dir: &Path) -> Option<Made> {
    let text = std::fs::read(dir.join("cz.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Mounts containerd's root file system `mounts` (one overlay, usually) at
/// `target`.
pub(crate) async fn mount_rootfs(mounts: &[Mount], target: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("cannot make {}", target.display()))?;
    for mount in mounts {
        containerd_shim::asynchronous::util::mount_rootfs(mount, target)
            .await
            .with_context(|| {
                format!("cannot mount the root file system at {}", target.display())
            })?;
    }
    Ok(())
}

/// What containerd's root file system `mounts` are when they are a stack
/// of committed snapshots: one overlay whose upper folder is empty (a new
/// container's), keyed by its lower folders, which never change. Anything
/// else (a written upper folder, a bind mount, several mounts) is `None`:
/// it is copied as it is.
pub(crate) fn snapshot_key(mounts: &[Mount]) -> Option<SnapshotKey> {
    let [mount] = mounts else { return None };
    if mount.type_ != "overlay" {
        return None;
    }
    let mut lowers = Vec::new();
    for option in &mount.options {
        if let Some(dirs) = option.strip_prefix("lowerdir=") {
            lowers.extend(dirs.split(':').map(PathBuf::from));
        } else if let Some(upper) = option.strip_prefix("upperdir=") {
            let empty = std::fs::read_dir(upper).is_ok_and(|mut e| e.next().is_none());
            if !empty {
                return None;
            }
        }
    }
    if lowers.iter().any(|dir| !dir.is_absolute()) {
        return None;
    }
    SnapshotKey::new(&lowers)
        .inspect_err(|error| tracing::debug!(%error, "the snapshots have no key; copying"))
        .ok()
}

/// Unmounts what is mounted at `target` (nothing mounted is fine).
pub(crate) fn unmount_rootfs(target: &Path) {
    if let Some(path) = target.to_str()
        && let Err(error) = containerd_shim::mount::umount_recursive(Some(path), 0)
    {
        tracing::debug!(%error, path, "unmount of the root file system failed");
    }
}

//! The initramfs every guest boots: vminitd as `/init` plus the kernel
//! modules that kernel needs, cached by content hash.
//!
//! A kernel with everything built in (the one `kernel/build.sh` makes) gets
//! no modules. A stock kernel's modules are found through its `modules.dep`:
//! the wanted ones and everything they depend on are packed under
//! `/lib/modules/<release>/` with a `modules.dep` restricted to them, which
//! vminitd follows to load them in order.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cpio::CpioWriter;
use crate::error::io_at;
use crate::{Kernel, VmmError};

/// Modules a guest needs when the kernel has them as modules.
pub const WANTED_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "virtio_balloon",
    "vmw_vsock_virtio_transport",
    "overlay",
    "fuse",
    "virtiofs",
    "9pnet_virtio",
    "9p",
    "binfmt_misc",
];

/// A host file packed into an initramfs beside vminitd (a static emulator
/// for foreign binaries, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitramfsFile {
    /// Its path in the guest, relative to `/` (`cz/emulators/qemu-aarch64`);
    /// missing folders are made.
    pub guest_path: String,
    /// The file on the host.
    pub host_path: PathBuf,
    /// Its mode in the guest.
    pub mode: u32,
}

/// Builds (or finds in `cache_dir`) the initramfs for `kernel` with the
/// static `vminitd` binary as `/init`; returns its path.
pub fn build_initramfs(
    kernel: &Kernel,
    vminitd: &Path,
    cache_dir: &Path,
) -> Result<PathBuf, VmmError> {
    build_initramfs_with(kernel, vminitd, &[], cache_dir)
}

/// [`build_initramfs`] with `extras` packed in too: each set of extras is
/// its own archive (and so its own VM template shape).
///
/// ```no_run
/// use containerization_vmm::{InitramfsFile, KernelCatalogue, build_initramfs_with};
/// # fn main() -> Result<(), containerization_vmm::VmmError> {
/// let kernel = KernelCatalogue::new("/var/lib/containerization/kernels").default_kernel()?.0;
/// let emulator = InitramfsFile {
///     guest_path: "cz/emulators/qemu-aarch64-static".into(),
///     host_path: "/usr/bin/qemu-aarch64-static".into(),
///     mode: 0o755,
/// };
/// let archive = build_initramfs_with(
///     &kernel,
///     "target/x86_64-unknown-linux-musl/release/vminitd".as_ref(),
///     &[emulator],
///     "/var/lib/containerization/initramfs".as_ref(),
/// )?;
/// # Ok(())
/// # }
/// ```
pub fn build_initramfs_with(
    kernel: &Kernel,
    vminitd: &Path,
    extras: &[InitramfsFile],
    cache_dir: &Path,
) -> Result<PathBuf, VmmError> {
    for extra in extras {
        let bad = extra.guest_path.is_empty()
            || extra.guest_path.starts_with('/')
            || extra
                .guest_path
                .split('/')
                .any(|n| n.is_empty() || n == "." || n == "..");
        if bad {
            return Err(VmmError::InvalidConfig {
                message: format!(
                    "initramfs file {:?}: the guest path must be relative, without empty, \
                     `.` or `..` names",
                    extra.guest_path
                ),
            });
        }
    }
    // Every container start asks for the same archive: a marker named by the
    // inputs' identities (not their bytes) finds it without reading and
    // hashing vminitd again.
    let marker =
        quick_key(kernel, vminitd, extras).map(|key| cache_dir.join(format!("by-inputs-{key}")));
    if let Some(marker) = &marker
        && let Ok(name) = std::fs::read_to_string(marker)
        && !name.contains('/')
        && cache_dir.join(&name).is_file()
    {
        // Its modification time says when it was last used (see `prune`).
        if let Ok(file) = std::fs::File::options().append(true).open(marker) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        return Ok(cache_dir.join(name));
    }
    let path = build_archive(kernel, vminitd, extras, cache_dir)?;
    if let (Some(marker), Some(name)) = (marker, path.file_name()) {
        let partial = marker.with_extension(format!("{}.tmp", std::process::id()));
        if std::fs::write(&partial, name.as_encoded_bytes()).is_ok() {
            let _ = std::fs::rename(&partial, &marker);
        }
    }
    // A new archive means new inputs (a rebuilt vminitd, another kernel):
    // the ones nobody has used for a while go.
    prune(cache_dir, KEEP_RECENT, PRUNE_GRACE);
    Ok(path)
}

/// How many of the most recently used archives are always kept.
const KEEP_RECENT: usize = 8;
/// Archives and markers used (or written) this recently are always kept: a
/// process may be between finding an archive and QEMU opening it.
const PRUNE_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes from `cache_dir` the markers beyond the `keep` most recently used
/// and older than `grace`, then every archive no remaining marker names
/// that is itself older than `grace`, and writers' leftovers as old.
/// Without it every rebuild of vminitd left another 7 MB archive behind.
/// Failures are ignored: pruning is housekeeping.
fn prune(cache_dir: &Path, keep: usize, grace: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let age = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default())
            .unwrap_or_default()
    };
    let mut markers = Vec::new();
    let mut others = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("by-inputs-") && !name.ends_with(".tmp") {
            markers.push((age(&path), path));
        } else {
            others.push((name, path));
        }
    }
    markers.sort_by_key(|(age, _)| *age);
    let mut named = BTreeSet::new();
    for (i, (marker_age, marker)) in markers.iter().enumerate() {
        if i < keep || *marker_age < grace {
            if let Ok(name) = std::fs::read_to_string(marker) {
                named.insert(name);
            }
        } else {
            let _ = std::fs::remove_file(marker);
        }
    }
    for (name, path) in others {
        let leftover = name.starts_with('.') || name.ends_with(".tmp");
        let unnamed = name.ends_with(".cpio") && !named.contains(&name);
        if (leftover || unnamed) && age(&path) >= grace {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A key for the inputs of an archive from their identities: vminitd's
/// device, inode, size and modification time, the kernel's entry and its
/// `modules.dep`, and the wanted modules. `None` when one cannot be read.
fn quick_key(kernel: &Kernel, vminitd: &Path, extras: &[InitramfsFile]) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let stamp = |path: &Path| {
        std::fs::metadata(path).ok().map(|m| {
            format!(
                "{}:{}:{}:{}.{}",
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            )
        })
    };
    let mut text = format!(
        "initramfs v1\n{}\n{}\n{}\n{}\n",
        vminitd.display(),
        stamp(vminitd)?,
        kernel.dir().display(),
        WANTED_MODULES.join(",")
    );
    if let Some(modules_dir) = kernel.modules_dir() {
        text.push_str(&stamp(&modules_dir.join("modules.dep"))?);
    }
    for extra in extras {
        text.push_str(&format!(
            "\n{} {:o} {} {}",
            extra.guest_path,
            extra.mode,
            extra.host_path.display(),
            stamp(&extra.host_path)?
        ));
    }
    Some(hex::encode(&Sha256::digest(text.as_bytes())[..16]))
}

/// Writes the archive (or finds it by its content hash) and returns its path.
fn build_archive(
    kernel: &Kernel,
    vminitd: &Path,
    extras: &[InitramfsFile],
    cache_dir: &Path,
) -> Result<PathBuf, VmmError> {
    let init = std::fs::read(vminitd).map_err(|source| VmmError::MissingVminitd {
        path: vminitd.to_path_buf(),
        source,
    })?;
    let mut archive = CpioWriter::new(Vec::with_capacity(init.len() + (4 << 20)));
    let cpio_err = |source| VmmError::Io {
        path: PathBuf::from("initramfs"),
        source,
    };
    for dir in ["dev", "proc", "sys", "run", "tmp", "lib", "lib/modules"] {
        archive.dir(dir, 0o755).map_err(cpio_err)?;
    }
    // The kernel opens /dev/console for init's stdio before devtmpfs exists.
    archive
        .char_device("dev/console", 0o600, 5, 1)
        .map_err(cpio_err)?;
    archive.file("init", 0o755, &init).map_err(cpio_err)?;
    let mut made = BTreeSet::new();
    for extra in extras {
        let guest = Path::new(&extra.guest_path);
        let mut parents: Vec<&Path> = guest.ancestors().skip(1).collect();
        parents.reverse();
        for dir in parents.into_iter().filter(|d| !d.as_os_str().is_empty()) {
            let name = dir.to_string_lossy().into_owned();
            if !["dev", "proc", "sys", "run", "tmp", "lib"].contains(&name.as_str())
                && made.insert(name.clone())
            {
                archive.dir(&name, 0o755).map_err(cpio_err)?;
            }
        }
        let data = std::fs::read(&extra.host_path).map_err(io_at(&extra.host_path))?;
        archive
            .file(&extra.guest_path, extra.mode, &data)
            .map_err(cpio_err)?;
    }
    if let (Some(modules_dir), Some(release)) = (kernel.modules_dir(), kernel.release()?) {
        let dep_path = modules_dir.join("modules.dep");
        let dep = std::fs::read_to_string(&dep_path).map_err(io_at(&dep_path))?;
        let selected = select_modules(&dep, WANTED_MODULES);
        let base = format!("lib/modules/{release}");
        archive.dir(&base, 0o755).map_err(cpio_err)?;
        let mut dirs = BTreeSet::new();
        let mut restricted = String::new();
        for (module, deps) in &selected {
            let mut parent = Path::new(module).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                dirs.insert(p.to_path_buf());
                parent = p.parent();
            }
            restricted.push_str(&format!("{module}: {}\n", deps.join(" ")));
        }
        for dir in &dirs {
            archive
                .dir(&format!("{base}/{}", dir.display()), 0o755)
                .map_err(cpio_err)?;
        }
        for (module, _) in &selected {
            let path = modules_dir.join(module);
            let data = std::fs::read(&path).map_err(io_at(&path))?;
            archive
                .file(&format!("{base}/{module}"), 0o644, &data)
                .map_err(cpio_err)?;
        }
        archive
            .file(&format!("{base}/modules.dep"), 0o644, restricted.as_bytes())
            .map_err(cpio_err)?;
    }
    let bytes = archive.finish().map_err(cpio_err)?;
    let hash = hex::encode(Sha256::digest(&bytes));
    let path = cache_dir.join(format!("{}.cpio", &hash[..32]));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache_dir).map_err(io_at(cache_dir))?;
    // Unique per writer: threads of one process may build the same archive.
    static WRITERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let writer = WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = cache_dir.join(format!(".{}.{}.{writer}", &hash[..32], std::process::id()));
    std::fs::write(&partial, &bytes).map_err(io_at(&partial))?;
    std::fs::rename(&partial, &path).map_err(io_at(&path))?;
    Ok(path)
}

/// The wanted modules and all they depend on, each with its own dependency
/// list, in `modules.dep` order. Wanted names the kernel lacks (built in, or
/// not configured) are skipped.
fn select_modules(dep: &str, wanted: &[&str]) -> Vec<(String, Vec<String>)> {
    let entries: Vec<(&str, Vec<&str>)> = dep
        .lines()
        .filter_map(|line| {
            let (module, deps) = line.split_once(':')?;
            Some((module.trim(), deps.split_whitespace().collect()))
        })
        .collect();
    let by_path: HashMap<&str, &Vec<&str>> = entries.iter().map(|(m, d)| (*m, d)).collect();
    let stem = |path: &str| {
        let file = path.rsplit('/').next().unwrap_or(path);
        file.split('.').next().unwrap_or(file).replace('-', "_")
    };
    let mut keep = BTreeSet::new();
    for (module, deps) in &entries {
        if wanted.contains(&stem(module).as_str()) {
            keep.insert(*module);
            keep.extend(deps.iter().copied());
        }
    }
    entries
        .iter()
        .filter(|(module, _)| keep.contains(module))
        .map(|(module, _)| {
            let deps = by_path
                .get(module)
                .map(|d| d.iter().map(|s| s.to_string()).collect());
            (module.to_string(), deps.unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `name` in `dir` with `text`, last modified `hours_ago`.
    fn aged(dir: &Path, name: &str, text: &str, hours_ago: u64) {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(hours_ago * 3600);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn pruning_keeps_the_recently_used_and_what_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Four markers, used 1 to 4 days ago, each naming its archive.
        for i in 1..=4 {
            aged(d, &format!("by-inputs-{i}"), &format!("a{i}.cpio"), 24 * i);
            aged(d, &format!("a{i}.cpio"), "archive", 24 * i + 1);
        }
        // An archive a marker-less writer made a moment ago, one nobody
        // names, and a writer's leftover.
        aged(d, "fresh.cpio", "archive", 0);
        aged(d, "orphan.cpio", "archive", 48);
        aged(d, ".abc.123.0", "partial", 48);
        aged(d, "by-inputs-9.77.tmp", "partial", 48);
        prune(d, 2, std::time::Duration::from_secs(3600));
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "a1.cpio",
                "a2.cpio",
                "by-inputs-1",
                "by-inputs-2",
                "fresh.cpio"
            ]
        );
    }

    #[test]
    fn selection_pulls_in_dependencies_only() {
        let dep = "kernel/a/virtio_mmio.ko: kernel/a/virtio_ring.ko kernel/a/virtio.ko\n\
                   kernel/a/virtio_ring.ko:\n\
                   kernel/a/virtio.ko:\n\
                   kernel/b/sound.ko:\n";
        let names: Vec<String> = select_modules(dep, &["virtio_mmio", "ext4"])
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        assert_eq!(
            names,
            [
                "kernel/a/virtio_mmio.ko",
                "kernel/a/virtio_ring.ko",
                "kernel/a/virtio.ko"
            ]
        );
    }
}

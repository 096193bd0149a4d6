//! VM templates: boot a configuration once, restore every later VM of the
//! same shape from it.
//!
//! A template is a booted VM saved by [`QemuVm::snapshot`] while vminitd
//! waits for a host: `<key>/state` (its device state, tens of KiB) and
//! `<key>/memory` (its RAM, a sparse file). A VM restored from it maps the
//! memory file private, so it shares the template's pages until it writes
//! them, and resumes where the template stopped, without booting.
//!
//! The key hashes everything the guest saw while it booted: the kernel, the
//! initramfs, CPUs, memory, the kernel command line, the accelerator, QEMU,
//! the balloon, each disk's size and mode, the number of NICs, whether
//! host paths are shared and whether disks can be attached later (the
//! controller; disks attached to a restored VM are never in a template).
//! Disk files, tap devices, MAC addresses and the host paths behind the 9p
//! device are not in it: a restored VM gets its own (a template never
//! mounts its disks; vminitd drops cached blocks
//! before a mount). What the template's guest kept that a restored one must
//! not share (its random generator's state, its clock, its NICs' MACs) is
//! the caller's to reset over the agent; see [`Origin`]. A template's NIC
//! `i` has the MAC [`template_mac`]`(i)`, whichever VM built it, so the
//! caller finds each card of a restored guest by it.
//!
//! The first VM of a shape builds the template under a lock, from its own
//! configuration (disks and taps included), then is restored from it like
//! every later one. A restore that fails removes the template and boots
//! instead. `CZ_VM_TEMPLATES=0` turns templates off.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::error::io_at;
use crate::{
    DiskFormat, Hypervisor, MemoryBacking, Qemu, QemuVm, VirtualMachine, VmConfig, VmmError,
    VsockBackend,
};

/// Templates kept beyond this many are removed once unused for a day.
const KEEP: usize = 4;
/// How long a restored guest may take to answer before the template is
/// given up for a boot.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an unused template beyond [`KEEP`] stays.
const UNUSED_FOR: Duration = Duration::from_secs(24 * 3600);

/// The MAC NIC `index` of every template has, and so the one a restored
/// guest's card has until the caller gives it its own (a locally
/// administered unicast address no container is given: those are made from
/// hashes, and this one's low bytes are the index).
///
/// ```
/// use containerization_vmm::template_mac;
///
/// assert_eq!(template_mac(1).to_string(), "0a:cc:7e:00:00:01");
/// assert!(template_mac(0).is_locally_administered());
/// ```
pub fn template_mac(index: usize) -> crate::MacAddress {
    let [.., high, low] = u16::try_from(index).unwrap_or(u16::MAX).to_be_bytes();
    crate::MacAddress::new([0x0a, 0xcc, 0x7e, 0x00, high, low])
}

/// How a VM from [`TemplateCache::start`] came up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Restored from a template that was there.
    Restored,
    /// Restored from a template this call built.
    BuiltAndRestored,
    /// Booted: templates are off, the configuration cannot have one, or the
    /// restore failed.
    Booted,
}

impl Origin {
    /// Whether the guest was restored, and so shares its random generator
    /// state, clock and MAC with the template until they are reset.
    pub fn restored(self) -> bool {
        self != Origin::Booted
    }
}

/// The templates under one folder.
#[derive(Debug, Clone)]
pub struct TemplateCache {
    dir: PathBuf,
}

impl TemplateCache {
    /// Templates kept in `dir` (made when the first one is).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Whether templates are on (`CZ_VM_TEMPLATES=0` turns them off).
    pub fn enabled() -> bool {
        std::env::var("CZ_VM_TEMPLATES").as_deref() != Ok("0")
    }

    /// The template key of `config`, or `None` when it cannot have one:
    /// only the serial transport survives a snapshot, and a configuration
    /// that already names its memory or a state is not a template's.
    pub fn key(config: &VmConfig) -> Result<Option<String>, VmmError> {
        // virtio-fs blocks migration.
        let virtio_fs =
            !config.shares.is_empty() && config.share_transport == crate::ShareTransport::VirtioFs;
        if config.vsock != VsockBackend::Serial
            || config.memory != MemoryBacking::Memfd
            || config.restore_from.is_some()
            || virtio_fs
        {
            return Ok(None);
        }
        let mut hash = Sha256::new();
        let mut put = |part: &str| {
            hash.update(part.as_bytes());
            hash.update([0]);
        };
        for file in [config.kernel.image(), config.initramfs.as_path()] {
            put(&file_identity(file)?);
        }
        let qemu = which(&config.qemu);
        put(&file_identity(&qemu).unwrap_or_else(|_| qemu.display().to_string()));
        put(&format!(
            "cpus={} memory={} accel={} balloon={} nics={} macs=indexed shares={} attachable={}",
            config.cpus,
            config.memory_mib,
            config.accel,
            config.balloon,
            config.nics.len(),
            !config.shares.is_empty(),
            config.attachable_disks
        ));
        // The TSC frequency word follows the host's "cpu MHz", which moves
        // with frequency scaling on some hosts; a restored guest keeps the
        // calibration its template made on this host.
        let cmdline = crate::qemu::kernel_cmdline(config);
        let words: Vec<&str> = cmdline
            .split(' ')
            .filter(|w| !w.starts_with("tsc_early_khz="))
            .collect();
        put(&words.join(" "));
        for disk in &config.disks {
            put(&format!(
                "disk size={} ro={} cache={} discard={} bus={:?}",
                virtual_size(&disk.path, disk.format)?,
                disk.read_only,
                disk.cache,
                disk.discard,
                disk.bus
            ));
        }
        Ok(Some(hex::encode(&hash.finalize()[..16])))
    }

    /// Starts a VM for `config`: restored from its template (built first
    /// when missing), or booted when it cannot have one or templates are
    /// off.
    pub async fn start(
        &self,
        qemu: &Qemu,
        config: &VmConfig,
    ) -> Result<(QemuVm, Origin), VmmError> {
        let key = if Self::enabled() {
            Self::key(config)?
        } else {
            None
        };
        let Some(key) = key else {
            return Ok((qemu.start(config).await?, Origin::Booted));
        };
        let template = self.dir.join(&key);
        let mut origin = Origin::Restored;
        if !template.join("state").is_file() {
            // A template that cannot be made (a full disk, say) costs this
            // VM its fast start, never its start.
            match self.build_once(qemu, config, &key, &template).await {
                Ok(true) => origin = Origin::BuiltAndRestored,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!("cannot make a VM template, booting without one: {err}");
                    let _ = std::fs::remove_dir_all(self.dir.join(format!("{key}.partial")));
                    return Ok((qemu.start(config).await?, Origin::Booted));
                }
            }
        }
        let _ = std::fs::write(template.join("used"), b"");
        let mut restore = config.clone();
        restore.memory = MemoryBacking::File {
            path: template.join("memory"),
            shared: false,
        };
        restore.restore_from = Some(template.join("state"));
        // A restore that works answers within a second or two; one that
        // hangs should not cost the whole boot timeout before the fallback.
        let restorer = Qemu::new(qemu.ready_timeout().min(RESTORE_TIMEOUT));
        match restorer.start(&restore).await {
            Ok(vm) => Ok((vm, origin)),
            Err(err) => {
                tracing::warn!(
                    "restoring from template {} failed, booting instead (the template is removed): {err}",
                    template.display()
                );
                let _ = std::fs::remove_dir_all(&template);
                Ok((qemu.start(config).await?, Origin::Booted))
            }
        }
    }

    /// Builds the template `key` at `template` under its lock, unless another
    /// process did meanwhile; whether this one built it.
    async fn build_once(
        &self,
        qemu: &Qemu,
        config: &VmConfig,
        key: &str,
        template: &Path,
    ) -> Result<bool, VmmError> {
        std::fs::create_dir_all(&self.dir).map_err(io_at(&self.dir))?;
        let lock = self.dir.join(format!("{key}.lock"));
        let _held = tokio::task::spawn_blocking(move || lock_file(&lock))
            .await
            .map_err(|e| VmmError::InvalidConfig {
                message: format!("template lock: {e}"),
            })??;
        if template.join("state").is_file() {
            return Ok(false);
        }
        self.build(qemu, config, key).await?;
        Ok(true)
    }

    /// Boots `config` with its memory in a shared file, saves it, stops it
    /// and publishes the template as `<key>/`.
    async fn build(&self, qemu: &Qemu, config: &VmConfig, key: &str) -> Result<(), VmmError> {
        let started = std::time::Instant::now();
        let partial = self.dir.join(format!("{key}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(io_at(&partial))?;
        // The memory file is a guest's RAM: for the owner's eyes only.
        std::fs::set_permissions(
            &partial,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(io_at(&partial))?;
        let mut template = config.clone();
        for (index, nic) in template.nics.iter_mut().enumerate() {
            nic.mac = template_mac(index);
        }
        template.memory = MemoryBacking::File {
            path: partial.join("memory"),
            shared: true,
        };
        let mut run_dir = config.run_dir.clone().into_os_string();
        run_dir.push("t");
        template.run_dir = PathBuf::from(run_dir);
        template.console_log = Some(partial.join("console.log"));
        let mut vm = match qemu.start(&template).await {
            Ok(vm) => vm,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&template.run_dir);
                return Err(error);
            }
        };
        let saved = vm.snapshot(&partial.join("state")).await;
        vm.stop(Duration::from_secs(5)).await;
        let _ = std::fs::remove_dir_all(&template.run_dir);
        saved?;
        // What it was made from, so it goes as soon as one is replaced.
        let inputs = [config.kernel.image(), config.initramfs.as_path()]
            .into_iter()
            .map(|file| file_identity(file).map(|identity| identity + "\n"))
            .collect::<Result<String, _>>()?;
        let inputs_file = partial.join(INPUTS);
        std::fs::write(&inputs_file, inputs).map_err(io_at(&inputs_file))?;
        let published = self.dir.join(key);
        let _ = std::fs::remove_dir_all(&published);
        std::fs::rename(&partial, &published).map_err(io_at(&published))?;
        tracing::debug!(key, took = ?started.elapsed(), "VM template built");
        self.prune(key);
        Ok(())
    }

    /// What the templates hold on disk.
    pub fn usage(&self) -> TemplateUsage {
        let mut usage = TemplateUsage::default();
        for template in self.published() {
            usage.templates += 1;
            usage.bytes += allocated(&template);
        }
        usage
    }

    /// Removes every template no one is building, and what a killed build
    /// left: the next VM of each shape builds its own again. VMs restored
    /// from a removed template run on (they hold its memory file open).
    ///
    /// ```no_run
    /// use containerization_vmm::TemplateCache;
    ///
    /// let cache = TemplateCache::new("/var/lib/containerization/templates");
    /// let freed = cache.remove_all();
    /// println!("{} templates, {} bytes", freed.templates, freed.bytes);
    /// ```
    pub fn remove_all(&self) -> TemplateUsage {
        let mut freed = TemplateUsage::default();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return freed;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = name.strip_suffix(".partial").unwrap_or(&name).to_owned();
            if !path.is_dir() {
                continue;
            }
            // A held lock is a build in progress.
            let lock = self.dir.join(format!("{key}.lock"));
            let Ok(file) = std::fs::File::options().write(true).open(&lock) else {
                continue;
            };
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_err()
            {
                continue;
            }
            let bytes = allocated(&path);
            if std::fs::remove_dir_all(&path).is_ok() && !name.ends_with(".partial") {
                freed.templates += 1;
                freed.bytes += bytes;
            }
        }
        freed
    }

    /// The published templates' folders.
    fn published(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|path| path.join("state").is_file())
            .collect()
    }

    /// Removes templates made from a kernel or initramfs that has since
    /// been replaced or removed (no VM can be restored from them again:
    /// the key names its inputs' identities), and those beyond the [`KEEP`]
    /// most recently used that have not been used for [`UNUSED_FOR`].
    fn prune(&self, keep: &str) {
        let mut templates: Vec<(SystemTime, PathBuf)> = Vec::new();
        for path in self.published() {
            if path.file_name().is_some_and(|name| name == keep) {
                continue;
            }
            if inputs_are_gone(&path) {
                tracing::debug!(template = %path.display(), "its kernel or initramfs was replaced");
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            let used = std::fs::metadata(path.join("used"))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            templates.push((used, path));
        }
        templates.sort_by_key(|t| std::cmp::Reverse(t.0));
        let now = SystemTime::now();
        for (used, path) in templates.into_iter().skip(KEEP.saturating_sub(1)) {
            if now.duration_since(used).unwrap_or_default() > UNUSED_FOR {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

/// The file in a template listing the identities of its kernel and
/// initramfs, a line each.
const INPUTS: &str = "inputs";

/// Whether a file the template at `template` was made from is gone or
/// replaced (a template made before the list was kept: no).
fn inputs_are_gone(template: &Path) -> bool {
    let Ok(inputs) = std::fs::read_to_string(template.join(INPUTS)) else {
        return false;
    };
    inputs.lines().any(|identity| {
        // "<path> <size> <mtime>": the path may hold spaces.
        let path = identity.rsplitn(3, ' ').nth(2).unwrap_or_default();
        file_identity(Path::new(path)).map_or(true, |now| now != identity)
    })
}

/// What the templates of a [`TemplateCache`] hold on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TemplateUsage {
    /// How many templates.
    pub templates: usize,
    /// Bytes they take on disk (their memory files are sparse).
    pub bytes: u64,
}

/// Bytes the files directly in `dir` take on disk.
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.blocks() * 512)
        .sum()
}

/// Path, size and modification time: enough to tell a replaced file.
fn file_identity(path: &Path) -> Result<String, VmmError> {
    // By the file's real path: a state root whose kernels are reached
    // through a symbolic link (a second root sharing the first one's, as
    // the tests' roots do) has the same templates.
    let path = &std::fs::canonicalize(path).map_err(io_at(path))?;
    let meta = std::fs::metadata(path).map_err(io_at(path))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Ok(format!("{} {} {modified}", path.display(), meta.len()))
}

/// `program` as found on `PATH` when it is a bare name.
fn which(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_path_buf();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| program.to_path_buf())
}

/// The size the guest sees: a raw image's length, a qcow2 image's virtual
/// size (big-endian at byte 24 of its header).
fn virtual_size(path: &Path, format: DiskFormat) -> Result<u64, VmmError> {
    match format {
        DiskFormat::Raw => Ok(std::fs::metadata(path).map_err(io_at(path))?.len()),
        DiskFormat::Qcow2 => {
            use std::io::Read;
            let mut header = [0u8; 32];
            std::fs::File::open(path)
                .and_then(|mut file| file.read_exact(&mut header))
                .map_err(io_at(path))?;
            let mut size = [0u8; 8];
            size.copy_from_slice(&header[24..32]);
            Ok(u64::from_be_bytes(size))
        }
    }
}

/// Takes an exclusive lock on `path`, waiting for another holder.
fn lock_file(path: &Path) -> Result<std::fs::File, VmmError> {
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_at(path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_at(path)(e.into()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qcow2_virtual_size_is_read_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.qcow2");
        let status = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&image)
            .arg("3G")
            .status()
            .expect("qemu-img");
        assert!(status.success());
        assert_eq!(virtual_size(&image, DiskFormat::Qcow2).unwrap(), 3 << 30);
    }

    #[test]
    fn templates_of_a_replaced_or_removed_kernel_are_pruned_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TemplateCache::new(dir.path().join("templates"));
        let kernel = dir.path().join("a kernel");
        let initramfs = dir.path().join("initramfs");
        std::fs::write(&kernel, b"vmlinux").unwrap();
        std::fs::write(&initramfs, b"cpio").unwrap();
        let make = |name: &str| {
            let template = dir.path().join("templates").join(name);
            std::fs::create_dir_all(&template).unwrap();
            std::fs::write(template.join("state"), b"").unwrap();
            std::fs::write(template.join("used"), b"").unwrap();
            let inputs = format!(
                "{}\n{}\n",
                file_identity(&kernel).unwrap(),
                file_identity(&initramfs).unwrap()
            );
            std::fs::write(template.join(INPUTS), inputs).unwrap();
            template
        };
        let current = make("current");
        let older = dir.path().join("templates/older");
        std::fs::create_dir_all(&older).unwrap();
        std::fs::write(older.join("state"), b"").unwrap();
        cache.prune("none");
        assert!(current.is_dir(), "its inputs are as they were");
        assert!(
            older.is_dir(),
            "a template without the list keeps the age rule"
        );

        std::fs::write(&kernel, b"a rebuilt vmlinux").unwrap();
        cache.prune("none");
        assert!(!current.exists(), "its kernel was replaced");
        let again = make("again");
        std::fs::remove_file(&initramfs).unwrap();
        cache.prune("none");
        assert!(!again.exists(), "its initramfs is gone");
        assert!(older.is_dir());
    }

    #[test]
    fn unused_templates_beyond_the_newest_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TemplateCache::new(dir.path());
        let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        for i in 0..7 {
            let template = dir.path().join(format!("t{i}"));
            std::fs::create_dir_all(&template).unwrap();
            std::fs::write(template.join("state"), b"").unwrap();
            let used = std::fs::File::create(template.join("used")).unwrap();
            // t0 and t1 are recent; the others were used two days ago.
            let when = if i < 2 {
                SystemTime::now()
            } else {
                old + Duration::from_secs(i)
            };
            used.set_modified(when).unwrap();
        }
        cache.prune("t6");
        let left: Vec<bool> = (0..7)
            .map(|i| dir.path().join(format!("t{i}")).exists())
            .collect();
        // Kept: the one just built (t6), the three most recent others (t0,
        // t1 and the newest old one, t5); removed: t2 to t4.
        assert_eq!(left, [true, true, false, false, false, true, true]);
    }
}

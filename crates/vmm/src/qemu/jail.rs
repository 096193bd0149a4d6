//! QEMU's mount namespace: it sees its own VM's files and nothing else.
//!
//! QEMU parses guest-controlled device state; if a guest ever takes it
//! over, what the process can name on the host is what it can reach. So,
//! when we are root, QEMU starts in a mount namespace of its own whose root
//! is an empty tmpfs holding bind mounts of exactly what it needs, as
//! Firecracker's jailer does with its chroot:
//!
//! - `/usr` (QEMU, its libraries and firmware) and the top-level links into
//!   it (`/bin`, `/lib`, `/lib64`, ...), `/etc/ld.so.cache`, read-only;
//! - the kernel, the initramfs and the backing files a qcow2 backing file
//!   names in turn (the disks and their first backing files are handed
//!   over as descriptors, see `handoff`), read-only;
//! - the memory file (a template's), or the folder it is to be made in;
//! - `/dev/null`, `/dev/zero`, `/dev/random`, `/dev/urandom`, and
//!   `/dev/kvm` when the VM uses it.
//!
//! No disk by name, no run folder, no other container's folder, no
//! template but its own, no `/root`, `/home`, `/etc`, `/proc` or `/sys`. The tmpfs root is read-only and every
//! bind but the devices is `nosuid,nodev`, the writable ones `noexec` too.
//!
//! Everything is worked out before the fork into a [`Jail`] of C strings;
//! between fork and exec the child only makes system calls (`unshare`,
//! `mount`, `mkdir`, `open`, `symlink`, `pivot_root`, `chdir`, `umount2`),
//! which are async-signal-safe.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};

use super::namespace;
use crate::error::io_at;
use crate::{Accelerator, MemoryBacking, VmConfig, VmmError};

/// The folder in the run folder the tmpfs root is mounted on (in QEMU's
/// namespace only; on the host it stays empty).
const STAGING: &str = "jail";

/// Where the old root is put during `pivot_root`, inside the new one.
const OLD_ROOT: &std::ffi::CStr = c".old-root";

/// Top-level names that are links into `/usr` on merged-`/usr` systems.
const TOP_LEVEL: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// How far a chain of qcow2 backing files is followed.
const MAX_BACKING_DEPTH: usize = 16;

/// What a bind mount lets QEMU do with what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Access {
    /// Read only, `nosuid,nodev`.
    ReadOnly,
    /// Read and write, `nosuid,nodev,noexec`.
    ReadWrite,
    /// A device node: bound as it is.
    Device,
}

/// One thing to make in the staging root, in order.
#[derive(Debug)]
enum Step {
    /// A folder.
    Dir(CString),
    /// An empty file to bind a file over.
    File(CString),
    /// A symbolic link `link` → `target`.
    Symlink { target: CString, link: CString },
    /// A bind mount of the host's `source` on `target`.
    Bind {
        source: CString,
        target: CString,
        access: Access,
    },
}

/// The mount namespace QEMU is started in, worked out before the fork.
#[derive(Debug)]
pub(crate) struct Jail {
    /// The staging folder the tmpfs root is mounted on.
    root: CString,
    steps: Vec<Step>,
}

fn c_path(path: &Path) -> Result<CString, VmmError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| VmmError::InvalidConfig {
        message: format!("path {} contains a NUL byte", path.display()),
    })
}

/// The file a qcow2 image at `path` names as its backing file, if any.
pub(crate) fn backing_file(path: &Path) -> Result<Option<PathBuf>, VmmError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(io_at(path))?;
    let mut header = [0u8; 20];
    if file.read_exact(&mut header).is_err() || header[..4] != *b"QFI\xfb" {
        return Ok(None);
    }
    let offset = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
    let size = u32::from_be_bytes(header[16..20].try_into().unwrap_or_default());
    if offset == 0 || size == 0 {
        return Ok(None);
    }
    // QEMU caps backing file names at 1023 bytes.
    let mut name = vec![0u8; size.min(1023) as usize];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut name))
        .map_err(io_at(path))?;
    let name = PathBuf::from(std::ffi::OsStr::from_bytes(&name));
    Ok(Some(match path.parent() {
        Some(dir) if name.is_relative() => dir.join(name),
        _ => name,
    }))
}

/// `program` as the child will exec it: found on `PATH` when it names no folder.
fn resolve_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl Jail {
    /// Works out the namespace for `config` and makes the (host-side,
    /// empty) staging folder.
    pub(crate) fn plan(config: &VmConfig) -> Result<Self, VmmError> {
        let mut binds: Vec<(PathBuf, Access)> = vec![
            (PathBuf::from("/usr"), Access::ReadOnly),
            (PathBuf::from("/etc/ld.so.cache"), Access::ReadOnly),
            (config.kernel.image().to_path_buf(), Access::ReadOnly),
            (config.initramfs.clone(), Access::ReadOnly),
        ];
        if let Some(program) = resolve_program(&config.qemu) {
            binds.push((program, Access::ReadOnly));
        }
        for disk in &config.disks {
            // The disk and its first backing file are descriptors; a backing
            // file's own base is opened by name.
            let Some(mut image) = backing_file(&disk.path)? else {
                continue;
            };
            for _ in 0..MAX_BACKING_DEPTH {
                let Some(base) = backing_file(&image)? else {
                    break;
                };
                binds.push((base.clone(), Access::ReadOnly));
                image = base;
            }
        }
        if let MemoryBacking::File { path, .. } = &config.memory {
            // A template being made creates its memory file: show its folder.
            match (path.is_file(), path.parent()) {
                (false, Some(dir)) => binds.push((dir.to_path_buf(), Access::ReadWrite)),
                _ => binds.push((path.clone(), Access::ReadWrite)),
            }
        }
        let mut devices = vec!["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"];
        if config.accel == Accelerator::Kvm {
            devices.push("/dev/kvm");
        }
        binds.extend(devices.iter().map(|d| (PathBuf::from(d), Access::Device)));

        let staging = config.run_dir.join(STAGING);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .or_else(|err| match err.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(err),
            })
            .map_err(io_at(&staging))?;
        let mut jail = Self {
            root: c_path(&staging)?,
            steps: Vec::new(),
        };
        jail.add_top_level_links(&mut binds)?;
        jail.add_binds(binds)?;
        Ok(jail)
    }

    /// Recreates `/bin` → `usr/bin` and the like; a real folder is bound.
    fn add_top_level_links(&mut self, binds: &mut Vec<(PathBuf, Access)>) -> Result<(), VmmError> {
        for name in TOP_LEVEL {
            let host = Path::new("/").join(name);
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&host).map_err(io_at(&host))?;
                self.steps.push(Step::Symlink {
                    target: c_path(&target)?,
                    link: self.inside(Path::new(name))?,
                });
            } else if meta.is_dir() {
                binds.push((host, Access::ReadOnly));
            }
        }
        Ok(())
    }

    /// Adds the folders, files and bind mounts for `binds`: shallowest
    /// first, and nothing under a folder already bound (creating its mount
    /// point would write into the host's folder).
    fn add_binds(&mut self, mut binds: Vec<(PathBuf, Access)>) -> Result<(), VmmError> {
        binds.sort_by_key(|(path, _)| path.components().count());
        let mut bound: Vec<PathBuf> = Vec::new();
        let mut made: BTreeSet<PathBuf> = BTreeSet::new();
        for (host, access) in binds {
            let Ok(meta) = std::fs::metadata(&host) else {
                // Optional pieces (`/dev/kvm`, `/etc/ld.so.cache`) may be absent;
                // a missing disk or kernel was refused by validation already.
                continue;
            };
            if bound.iter().any(|b| host.starts_with(b)) {
                continue;
            }
            let relative = host.strip_prefix("/").unwrap_or(&host).to_path_buf();
            for ancestor in relative
                .ancestors()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                if !ancestor.as_os_str().is_empty() && made.insert(ancestor.to_path_buf()) {
                    self.steps.push(Step::Dir(self.inside(ancestor)?));
                }
            }
            let target = self.inside(&relative)?;
            self.steps.push(match meta.is_dir() {
                true => Step::Dir(target.clone()),
                false => Step::File(target.clone()),
            });
            self.steps.push(Step::Bind {
                source: c_path(&host)?,
                target,
                access,
            });
            bound.push(host);
        }
        Ok(())
    }

    /// `relative` inside the staging root.
    fn inside(&self, relative: &Path) -> Result<CString, VmmError> {
        let root = Path::new(std::ffi::OsStr::from_bytes(self.root.as_bytes()));
        c_path(&root.join(relative))
    }

    /// Makes the child of `command` enter the jail between fork and exec.
    pub(crate) fn install(self, command: &mut Command) {
        // SAFETY: `enter` makes only system calls on memory allocated before
        // the fork (the jail's C strings), all async-signal-safe.
        unsafe {
            command.pre_exec(move || self.enter());
        }
    }

    /// Runs in the forked child: a new mount namespace whose root is a
    /// tmpfs holding the planned binds.
    fn enter(&self) -> std::io::Result<()> {
        namespace::private_with_tmpfs(self.root.as_c_str(), c"mode=0755,size=1m")?;
        let hardened = namespace::HARDENED;
        for step in &self.steps {
            match step {
                Step::Dir(path) => match rustix::fs::mkdir(path.as_c_str(), Mode::from(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(err) => return Err(err.into()),
                },
                Step::File(path) => {
                    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC;
                    drop(rustix::fs::open(path.as_c_str(), flags, Mode::from(0o600))?);
                }
                Step::Symlink { target, link } => {
                    rustix::fs::symlink(target.as_c_str(), link.as_c_str())?;
                }
                Step::Bind {
                    source,
                    target,
                    access,
                } => {
                    rustix::mount::mount_bind(source.as_c_str(), target.as_c_str())?;
                    let flags = match access {
                        Access::Device => continue,
                        Access::ReadOnly => hardened | MountFlags::RDONLY,
                        Access::ReadWrite => hardened | MountFlags::NOEXEC,
                    };
                    rustix::mount::mount_remount(target.as_c_str(), MountFlags::BIND | flags, c"")?;
                }
            }
        }
        rustix::process::chdir(self.root.as_c_str())?;
        rustix::fs::mkdir(OLD_ROOT, Mode::from(0o700))?;
        rustix::process::pivot_root(c".", OLD_ROOT)?;
        rustix::process::chdir(c"/")?;
        rustix::mount::unmount(OLD_ROOT, UnmountFlags::DETACH)?;
        rustix::fs::rmdir(OLD_ROOT)?;
        rustix::mount::mount_remount(
            c"/",
            hardened | MountFlags::NOEXEC | MountFlags::RDONLY,
            c"",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_backing_file_is_found_beside_its_overlay_and_a_raw_image_has_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("base")).unwrap();
        let base = dir.path().join("base/disk.raw");
        std::fs::write(&base, vec![0u8; 1 << 20]).unwrap();
        let overlay = dir.path().join("overlay.qcow2");
        let made = Command::new("qemu-img")
            .args([
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                "base/disk.raw",
            ])
            .arg(&overlay)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(backing_file(&overlay).unwrap(), Some(base.clone()));
        assert_eq!(backing_file(&base).unwrap(), None);
    }
}

//! One guest kernel of the catalogue: its image, release, modules and config.
//!
//! An entry is a folder laid out as `scripts/setup` writes it:
//!
//! ```text
//! kernels/<name>/
//!   vmlinuz | vmlinux | bzImage   the image (a bzImage, or an ELF vmlinux booted through PVH)
//!   release                       the kernel release (`uname -r` in the guest), one line
//!   config                        the kernel's build configuration
//!   modules/                      the module tree (lib/modules/<release>), with modules.dep
//!   tcg-cmdline                   kernel command-line words for boots under TCG
//! ```
//!
//! Only the image is required: a kernel with every driver built in needs no
//! modules.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::VmmError;

/// The file names a kernel image may have in an entry, in the order they are tried.
const IMAGE_NAMES: [&str; 3] = ["vmlinux", "vmlinuz", "bzImage"];

/// Offset of the `HdrS` magic in a bzImage's setup header (the x86 boot protocol).
const BZIMAGE_MAGIC_OFFSET: usize = 0x202;

/// How a kernel image is packaged, which decides how QEMU boots it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelImageFormat {
    /// A compressed x86 bzImage (the Linux boot protocol).
    BzImage,
    /// An uncompressed ELF `vmlinux`, booted through its PVH entry point.
    Elf,
}

/// A guest kernel found in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    name: String,
    dir: PathBuf,
    image: PathBuf,
    format: KernelImageFormat,
}

impl Kernel {
    /// Opens the catalogue entry in `dir`, checking that it holds a kernel image.
    pub fn open(dir: &Path) -> Result<Self, VmmError> {
        let image = IMAGE_NAMES
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
            .ok_or_else(|| VmmError::MissingKernelImage {
                dir: dir.to_path_buf(),
                expected: IMAGE_NAMES.join(", "),
            })?;
        let format = detect_format(&image)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            name,
            dir: dir.to_path_buf(),
            image,
            format,
        })
    }

    /// The entry's name: its folder name in the catalogue.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entry's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kernel image to boot.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// How the image is packaged.
    pub fn format(&self) -> KernelImageFormat {
        self.format
    }

    /// The kernel release (`uname -r`), when the entry records it.
    pub fn release(&self) -> Result<Option<String>, VmmError> {
        let path = self.dir.join("release");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(VmmError::Io { path, source }),
        }
    }

    /// The module tree (the folder holding `modules.dep`), when the kernel has modules.
    pub fn modules_dir(&self) -> Option<PathBuf> {
        let dir = self.dir.join("modules");
        dir.join("modules.dep").is_file().then_some(dir)
    }

    /// Words the entry adds to the command line when booted under TCG (its
    /// `tcg-cmdline` file). The optimized kernel's entries carry
    /// `noapictimer`, which the command line no longer passes on (see
    /// `qemu::args`: without the APIC timer an idle guest never stops its
    /// tick). A stock kernel has none.
    pub fn tcg_cmdline(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("tcg-cmdline"))
            .map(|text| text.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The kernel's build configuration, when the entry carries it.
    pub fn config(&self) -> Option<PathBuf> {
        let path = self.dir.join("config");
        path.is_file().then_some(path)
    }

    /// Whether the kernel can mount 9p shares over virtio (see
    /// [`crate::ShareConfig`]): `None` when its configuration is not known.
    pub fn has_9p(&self) -> Option<bool> {
        let config = std::fs::read_to_string(self.config()?).ok()?;
        let enabled = |symbol: &str| {
            config
                .lines()
                .any(|line| line == format!("{symbol}=y") || line == format!("{symbol}=m"))
        };
        Some(enabled("CONFIG_9P_FS") && enabled("CONFIG_NET_9P_VIRTIO"))
    }

    /// The most CPUs the kernel brings up (`CONFIG_NR_CPUS`), when its
    /// configuration says; vCPUs beyond it would only cost the host threads.
    pub fn max_cpus(&self) -> Option<u32> {
        let config = std::fs::read_to_string(self.config()?).ok()?;
        config
            .lines()
            .find_map(|line| line.strip_prefix("CONFIG_NR_CPUS="))
            .and_then(|n| n.trim().parse().ok())
    }
}

/// Reads the first bytes of `path` and tells a bzImage from an ELF `vmlinux`.
fn detect_format(path: &Path) -> Result<KernelImageFormat, VmmError> {
    let io = |source| VmmError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(BZIMAGE_MAGIC_OFFSET + 4);
    File::open(path)
        .map_err(io)?
        .take(BZIMAGE_MAGIC_OFFSET as u64 + 4)
        .read_to_end(&mut head)
        .map_err(io)?;
    if head.starts_with(b"\x7fELF") {
        Ok(KernelImageFormat::Elf)
    } else if head.get(BZIMAGE_MAGIC_OFFSET..) == Some(b"HdrS") {
        Ok(KernelImageFormat::BzImage)
    } else {
        Err(VmmError::NotAKernelImage {
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bzimage_bytes() -> Vec<u8> {
        let mut bytes = vec![0u8; 0x300];
        bytes[BZIMAGE_MAGIC_OFFSET..BZIMAGE_MAGIC_OFFSET + 4].copy_from_slice(b"HdrS");
        bytes
    }

    #[test]
    fn open_reads_a_bzimage_entry_with_modules() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("k1");
        std::fs::create_dir_all(entry.join("modules")).unwrap();
        std::fs::write(entry.join("vmlinuz"), bzimage_bytes()).unwrap();
        std::fs::write(entry.join("release"), "6.1.0-1-cloud-amd64\n").unwrap();
        std::fs::write(entry.join("modules/modules.dep"), "").unwrap();

        let kernel = Kernel::open(&entry).unwrap();
        assert_eq!(kernel.name(), "k1");
        assert_eq!(kernel.format(), KernelImageFormat::BzImage);
        assert_eq!(
            kernel.release().unwrap().as_deref(),
            Some("6.1.0-1-cloud-amd64")
        );
        assert_eq!(kernel.modules_dir(), Some(entry.join("modules")));
        assert_eq!(kernel.config(), None);
        assert_eq!(kernel.max_cpus(), None);
    }

    #[test]
    fn max_cpus_is_the_configs_nr_cpus() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vmlinux"), b"\x7fELF\x02\x01\x01").unwrap();
        std::fs::write(
            dir.path().join("config"),
            "CONFIG_SMP=y\nCONFIG_NR_CPUS=16\n",
        )
        .unwrap();
        assert_eq!(Kernel::open(dir.path()).unwrap().max_cpus(), Some(16));
    }

    #[test]
    fn open_prefers_an_elf_vmlinux() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vmlinux"), b"\x7fELF\x02\x01\x01").unwrap();
        std::fs::write(dir.path().join("vmlinuz"), bzimage_bytes()).unwrap();
        let kernel = Kernel::open(dir.path()).unwrap();
        assert_eq!(kernel.format(), KernelImageFormat::Elf);
        assert_eq!(kernel.image(), dir.path().join("vmlinux"));
    }

    #[test]
    fn open_rejects_an_entry_without_image() {
        let dir = tempfile::tempdir().unwrap();
        let err = Kernel::open(dir.path()).unwrap_err();
        assert!(matches!(err, VmmError::MissingKernelImage { .. }), "{err}");
        assert!(err.to_string().contains("vmlinuz"), "{err}");
    }

    #[test]
    fn open_rejects_a_file_that_is_not_a_kernel() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vmlinuz"), b"#!/bin/sh\necho hello\n").unwrap();
        let err = Kernel::open(dir.path()).unwrap_err();
        assert!(matches!(err, VmmError::NotAKernelImage { .. }), "{err}");
    }
}

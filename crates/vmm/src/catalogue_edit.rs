//! Changing the kernel catalogue: add, remove, and the default kernel.
//!
//! An entry is assembled in a hidden `.partial-<name>` folder and renamed
//! into place when whole; a removal renames the entry to a hidden folder
//! first. Listings skip hidden folders, so no reader ever sees half an entry.
//! The default kernel's name is kept in `<catalogue>/.default`.

use std::path::{Path, PathBuf};

use crate::error::io_at;
use crate::{Kernel, KernelCatalogue, KernelImageFormat, VmmError};

/// The file holding the default kernel's name.
const DEFAULT_FILE: &str = ".default";

/// What `cctl kernel add` adds.
#[derive(Debug, Clone, Default)]
pub struct NewKernel {
    /// The kernel image: a bzImage or an ELF `vmlinux` with a PVH entry.
    pub image: PathBuf,
    /// The module tree (`/lib/modules/<release>`, with `modules.dep`), for a
    /// kernel that needs modules for virtio and vsock.
    pub modules: Option<PathBuf>,
    /// The kernel's build configuration.
    pub config: Option<PathBuf>,
    /// The release (`uname -r`); read from the image when not given.
    pub release: Option<String>,
}

fn invalid(message: String) -> VmmError {
    VmmError::InvalidConfig { message }
}

/// Whether `name` may name a catalogue entry.
fn check_name(name: &str) -> Result<(), VmmError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    match ok {
        true => Ok(()),
        false => Err(invalid(format!(
            "{name:?} is not a valid kernel name: use up to 64 letters, digits, '.', '-' or '_', \
             not starting with '.' or '-'"
        ))),
    }
}

/// The release a kernel image announces: the bzImage header's version
/// string, or the `Linux version …` banner inside a `vmlinux`.
pub fn image_release(image: &Path) -> Result<Option<String>, VmmError> {
    let bytes = std::fs::read(image).map_err(io_at(image))?;
    let first_word = |text: &[u8]| {
        let end = text
            .iter()
            .position(|&b| b == 0 || b == b' ')
            .unwrap_or(text.len());
        std::str::from_utf8(&text[..end]).ok().map(str::to_owned)
    };
    // The x86 boot protocol: a u16 at 0x20e points (plus 0x200) to the
    // NUL-terminated version string.
    if bytes.get(0x202..0x206) == Some(b"HdrS") {
        let offset = u16::from_le_bytes([bytes[0x20e], bytes[0x20f]]) as usize + 0x200;
        return Ok(bytes.get(offset..).and_then(first_word));
    }
    let banner = b"Linux version ";
    Ok(bytes
        .windows(banner.len())
        .position(|w| w == banner)
        .and_then(|at| first_word(&bytes[at + banner.len()..]))
        .filter(|release| release.chars().next().is_some_and(|c| c.is_ascii_digit())))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), VmmError> {
    std::fs::create_dir_all(to).map_err(io_at(to))?;
    for entry in std::fs::read_dir(from).map_err(io_at(from))? {
        let entry = entry.map_err(io_at(from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(io_at(&source))?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(io_at(&source))?;
            std::os::unix::fs::symlink(link, &target).map_err(io_at(&target))?;
        } else {
            std::fs::copy(&source, &target).map_err(io_at(&target))?;
        }
    }
    Ok(())
}

impl KernelCatalogue {
    /// Adds a kernel named `name`; fails, changing nothing, when the name is
    /// taken, the image is not a kernel, or the modules have no `modules.dep`.
    pub fn add(&self, name: &str, new: &NewKernel) -> Result<Kernel, VmmError> {
        check_name(name)?;
        let target = self.dir().join(name);
        if target.exists() {
            return Err(invalid(format!(
                "a kernel named {name:?} is already in {}; remove it first",
                self.dir().display()
            )));
        }
        if let Some(modules) = &new.modules
            && !modules.join("modules.dep").is_file()
        {
            return Err(invalid(format!(
                "{} has no modules.dep: give the module tree (/lib/modules/<release>) after depmod",
                modules.display()
            )));
        }
        let partial = self.dir().join(format!(".partial-{name}"));
        let _ = std::fs::remove_dir_all(&partial);
        let result = self.assemble(&partial, new);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        result?;
        std::fs::rename(&partial, &target).map_err(io_at(&target))?;
        Kernel::open(&target)
    }

    fn assemble(&self, partial: &Path, new: &NewKernel) -> Result<(), VmmError> {
        std::fs::create_dir_all(partial).map_err(io_at(partial))?;
        // Copy under a neutral name, learn the format, then name it for it.
        let staged = partial.join("vmlinuz");
        std::fs::copy(&new.image, &staged).map_err(io_at(&new.image))?;
        let format = Kernel::open(partial)
            .map_err(|_| VmmError::NotAKernelImage {
                path: new.image.clone(),
            })?
            .format();
        if format == KernelImageFormat::Elf {
            let elf = partial.join("vmlinux");
            std::fs::rename(&staged, &elf).map_err(io_at(&elf))?;
        }
        let release = match &new.release {
            Some(release) => Some(release.clone()),
            None => image_release(&new.image)?,
        };
        if let Some(release) = release {
            let path = partial.join("release");
            std::fs::write(&path, format!("{release}\n")).map_err(io_at(&path))?;
        }
        if let Some(config) = &new.config {
            let path = partial.join("config");
            std::fs::copy(config, &path).map_err(io_at(config))?;
        }
        if let Some(modules) = &new.modules {
            copy_tree(modules, &partial.join("modules"))?;
        }
        Ok(())
    }

    /// Removes the kernel `name` (and forgets it as the default).
    pub fn remove(&self, name: &str) -> Result<(), VmmError> {
        let kernel = self.get(name)?;
        let doomed = self.dir().join(format!(".removing-{name}"));
        std::fs::rename(kernel.dir(), &doomed).map_err(io_at(kernel.dir()))?;
        std::fs::remove_dir_all(&doomed).map_err(io_at(&doomed))?;
        if self.configured_default()?.as_deref() == Some(name) {
            let path = self.dir().join(DEFAULT_FILE);
            std::fs::remove_file(&path).map_err(io_at(&path))?;
        }
        Ok(())
    }

    /// Makes `name` the default kernel.
    pub fn set_default(&self, name: &str) -> Result<(), VmmError> {
        self.get(name)?;
        let path = self.dir().join(DEFAULT_FILE);
        let staged = self.dir().join(".default.new");
        std::fs::write(&staged, format!("{name}\n")).map_err(io_at(&staged))?;
        std::fs::rename(&staged, &path).map_err(io_at(&path))
    }

    fn configured_default(&self) -> Result<Option<String>, VmmError> {
        let path = self.dir().join(DEFAULT_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_owned()).filter(|n| !n.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(VmmError::Io { path, source }),
        }
    }

    /// The default kernel and why: the one set with [`KernelCatalogue::set_default`],
    /// else the optimized `cz-*` kernel (it boots in about half the time),
    /// else the first by name.
    pub fn default_kernel(&self) -> Result<(Kernel, String), VmmError> {
        if let Some(name) = self.configured_default()? {
            return Ok((
                self.get(&name)?,
                "set with `cctl kernel default`".to_owned(),
            ));
        }
        let kernels = self.list()?;
        if let Some(kernel) = kernels.iter().find(|k| k.name().starts_with("cz-")) {
            return Ok((
                kernel.clone(),
                "the optimized kernel boots fastest".to_owned(),
            ));
        }
        kernels
            .into_iter()
            .next()
            .map(|k| (k, "the only kind in the catalogue".to_owned()))
            .ok_or_else(|| VmmError::UnknownKernel {
                name: "(default)".to_owned(),
                catalogue: self.dir().to_path_buf(),
                available: "nothing; run scripts/setup".to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf_with_banner(dir: &Path) -> PathBuf {
        let image = dir.join("input-vmlinux");
        let mut bytes = b"\x7fELF".to_vec();
        bytes.extend_from_slice(&[0; 60]);
        bytes.extend_from_slice(b"Linux version 6.1.99-test (me@here) #1\0");
        std::fs::write(&image, bytes).unwrap();
        image
    }

    #[test]
    fn add_default_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let catalogue = KernelCatalogue::new(dir.path().join("kernels"));
        let image = elf_with_banner(dir.path());
        let new = NewKernel {
            image: image.clone(),
            ..NewKernel::default()
        };
        let kernel = catalogue.add("mine", &new).unwrap();
        assert_eq!(kernel.format(), KernelImageFormat::Elf);
        assert_eq!(kernel.release().unwrap().as_deref(), Some("6.1.99-test"));
        let err = catalogue.add("mine", &new).unwrap_err().to_string();
        assert!(err.contains("already in"), "{err}");
        catalogue.add("other", &new).unwrap();
        assert_eq!(catalogue.default_kernel().unwrap().0.name(), "mine");
        catalogue.set_default("other").unwrap();
        assert_eq!(catalogue.default_kernel().unwrap().0.name(), "other");
        catalogue.remove("other").unwrap();
        assert_eq!(catalogue.default_kernel().unwrap().0.name(), "mine");
        let names: Vec<_> = catalogue
            .list()
            .unwrap()
            .iter()
            .map(|k| k.name().to_owned())
            .collect();
        assert_eq!(names, ["mine"]);
    }

    #[test]
    fn bad_adds_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let catalogue = KernelCatalogue::new(dir.path().join("kernels"));
        let not_kernel = dir.path().join("notes.txt");
        std::fs::write(&not_kernel, "hello").unwrap();
        let new = NewKernel {
            image: not_kernel,
            ..NewKernel::default()
        };
        let err = catalogue.add("k", &new).unwrap_err().to_string();
        assert!(err.contains("is not a kernel image"), "{err}");
        let err = catalogue.add("../evil", &new).unwrap_err().to_string();
        assert!(err.contains("not a valid kernel name"), "{err}");
        let new = NewKernel {
            image: elf_with_banner(dir.path()),
            modules: Some(dir.path().to_path_buf()),
            ..NewKernel::default()
        };
        let err = catalogue.add("k", &new).unwrap_err().to_string();
        assert!(err.contains("has no modules.dep"), "{err}");
        assert!(catalogue.list().unwrap().is_empty());
        assert!(
            std::fs::read_dir(dir.path().join("kernels"))
                .unwrap()
                .next()
                .is_none()
        );
        let err = catalogue.set_default("nope").unwrap_err().to_string();
        assert!(err.contains("no kernel named"), "{err}");
    }
}

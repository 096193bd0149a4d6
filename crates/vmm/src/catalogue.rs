//! The kernel catalogue: a folder of guest kernels, one sub-folder each.
//!
//! Entries are written to a temporary folder whose name starts with `.` and
//! renamed into place when whole, so a listing never sees a half-written
//! kernel; such folders are skipped here.

use std::path::{Path, PathBuf};

use crate::{Kernel, VmmError};

/// The folder of guest kernels (`<state root>/kernels`).
#[derive(Debug, Clone)]
pub struct KernelCatalogue {
    dir: PathBuf,
}

impl KernelCatalogue {
    /// A catalogue rooted at `dir`. The folder need not exist yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The catalogue's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every complete kernel in the catalogue, sorted by name.
    ///
    /// A missing catalogue folder is an empty catalogue. An entry whose image is
    /// missing or unreadable is an error that names it, rather than being
    /// silently skipped.
    pub fn list(&self) -> Result<Vec<Kernel>, VmmError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(VmmError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut kernels = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| VmmError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
            if hidden || !entry.path().is_dir() {
                continue;
            }
            kernels.push(Kernel::open(&entry.path())?);
        }
        kernels.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(kernels)
    }

    /// The kernel named `name`.
    pub fn get(&self, name: &str) -> Result<Kernel, VmmError> {
        let kernels = self.list()?;
        if let Some(kernel) = kernels.iter().find(|k| k.name() == name) {
            return Ok(kernel.clone());
        }
        let names: Vec<&str> = kernels.iter().map(Kernel::name).collect();
        Err(VmmError::UnknownKernel {
            name: name.to_owned(),
            catalogue: self.dir.clone(),
            available: if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_skips_hidden_partial_entries_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", ".partial-c"] {
            let entry = dir.path().join(name);
            std::fs::create_dir(&entry).unwrap();
            std::fs::write(entry.join("vmlinux"), b"\x7fELF").unwrap();
        }
        let catalogue = KernelCatalogue::new(dir.path());
        let names: Vec<String> = catalogue
            .list()
            .unwrap()
            .iter()
            .map(|k| k.name().to_owned())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn get_names_what_the_catalogue_has() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("only")).unwrap();
        std::fs::write(dir.path().join("only/vmlinux"), b"\x7fELF").unwrap();
        let err = KernelCatalogue::new(dir.path()).get("other").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("\"other\"") && message.contains("only"),
            "{message}"
        );
    }
}

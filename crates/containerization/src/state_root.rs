//! The state root: the one folder holding everything the project stores.
//!
//! `CZ_ROOT` chooses it; otherwise it is `/var/lib/containerization` for root
//! and `$XDG_DATA_HOME/containerization` (or `~/.local/share/containerization`)
//! for other users. `scripts/setup` resolves it the same way.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use containerization_vmm::KernelCatalogue;

use crate::Error;

/// The folder for root when `CZ_ROOT` is unset.
pub(crate) const SYSTEM_ROOT: &str = "/var/lib/containerization";

/// The project's state folder and the well-known places inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// A state root at `path`, exactly as given.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where running VMs keep their sockets: `/run/containerization/vm` for
    /// root, else under `XDG_RUNTIME_DIR` or `/tmp`. Short on purpose: a
    /// unix socket path has at most 107 bytes.
    pub fn run_dir(&self) -> PathBuf {
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/run/containerization/vm");
        }
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("containerization/vm"),
            None => PathBuf::from(format!(
                "/tmp/containerization-{}/vm",
                rustix::process::geteuid().as_raw()
            )),
        }
    }

    /// The static vminitd the guest runs: `CZ_VMINITD`, else
    /// `tools/bin/vminitd`, else the musl build beside this program's
    /// cargo target folder (`target/x86_64-unknown-linux-musl/<profile>/`).
    pub fn find_vminitd(&self) -> Result<PathBuf, Error> {
        if let Some(path) = std::env::var_os("CZ_VMINITD").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let installed = self.tools_bin().join("vminitd");
        if installed.is_file() {
            return Ok(installed);
        }
        if let Ok(exe) = std::env::current_exe() {
            for dir in exe.ancestors().skip(1).take(3) {
                let Some(profile) = dir.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if !matches!(profile, "debug" | "release") {
                    continue;
                }
                if let Some(target) = dir.parent() {
                    let built = target
                        .join("x86_64-unknown-linux-musl")
                        .join(profile)
                        .join("vminitd");
                    if built.is_file() {
                        return Ok(built);
                    }
                }
            }
        }
        // The advice matches this program: a release cctl is told of the
        // release build.
        let (build, profile) = if cfg!(debug_assertions) {
            (
                "cargo build -p vminitd --target x86_64-unknown-linux-musl",
                "debug",
            )
        } else {
            (
                "cargo build --release -p vminitd --target x86_64-unknown-linux-musl",
                "release",
            )
        };
        Err(Error::MissingVminitd {
            installed,
            build,
            profile,
        })
    }

    /// The state root this process should use, from `CZ_ROOT`, the effective
    /// user and the XDG variables.
    pub fn from_env() -> Result<Self, Error> {
        Self::resolve(
            std::env::var_os("CZ_ROOT"),
            rustix::process::geteuid().is_root(),
            std::env::var_os("XDG_DATA_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// The rule behind [`StateRoot::from_env`], with its inputs passed in.
    fn resolve(
        cz_root: Option<OsString>,
        is_root: bool,
        xdg_data_home: Option<OsString>,
        home: Option<OsString>,
    ) -> Result<Self, Error> {
        let non_empty = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(path) = non_empty(cz_root) {
            return Ok(Self::new(path));
        }
        if is_root {
            return Ok(Self::new(SYSTEM_ROOT));
        }
        let data_home = non_empty(xdg_data_home)
            .or_else(|| non_empty(home).map(|home| home.join(".local/share")))
            .ok_or(Error::NoStateRoot)?;
        Ok(Self::new(data_home.join("containerization")))
    }

    /// The state root folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The guest kernel catalogue (`kernels/`).
    pub fn kernels(&self) -> KernelCatalogue {
        KernelCatalogue::new(self.path.join("kernels"))
    }

    /// The cache of base root file systems (`rootfs/`).
    pub fn rootfs(&self) -> crate::rootfs::RootfsCache {
        crate::rootfs::RootfsCache::new(self.path.join("rootfs"))
    }

    /// Host networking state: address leases and network definitions (`network/`).
    pub fn network_dir(&self) -> PathBuf {
        self.path.join("network")
    }

    /// Where the project's helper programs are installed (`tools/bin/`), such as
    /// `vhost-device-vsock`.
    pub fn tools_bin(&self) -> PathBuf {
        self.path.join("tools/bin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(cz: Option<&str>, root: bool, xdg: Option<&str>, home: Option<&str>) -> PathBuf {
        StateRoot::resolve(
            cz.map(Into::into),
            root,
            xdg.map(Into::into),
            home.map(Into::into),
        )
        .unwrap()
        .path
    }

    #[test]
    fn cz_root_wins_over_everything() {
        assert_eq!(
            resolve(Some("/x"), true, Some("/d"), Some("/h")),
            Path::new("/x")
        );
    }

    #[test]
    fn root_uses_the_system_folder() {
        assert_eq!(
            resolve(None, true, Some("/d"), None),
            Path::new(SYSTEM_ROOT)
        );
        assert_eq!(resolve(Some(""), true, None, None), Path::new(SYSTEM_ROOT));
    }

    #[test]
    fn users_use_xdg_data_home_then_home() {
        assert_eq!(
            resolve(None, false, Some("/d"), Some("/h")),
            Path::new("/d/containerization")
        );
        assert_eq!(
            resolve(None, false, None, Some("/h")),
            Path::new("/h/.local/share/containerization")
        );
    }

    #[test]
    fn a_user_without_home_gets_a_clear_error() {
        let err = StateRoot::resolve(None, false, None, None).unwrap_err();
        assert!(err.to_string().contains("CZ_ROOT"), "{err}");
    }
}

//! Where the kit finds what `scripts/setup` installed, and where it caches.
//!
//! The rules match `scripts/setup`: the state root is `CZ_ROOT`, else
//! `/var/lib/containerization` for root, else the user's XDG data folder; the
//! test cache is `CZ_TEST_CACHE`, else `/var/cache/containerization-test` for
//! root, else the user's XDG cache folder.

use std::path::PathBuf;

/// Reads `var` as a path when it is set and not empty.
fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `$XDG_<kind>_HOME`, else `~/<fallback>`, joined with `name`.
fn user_dir(xdg_var: &str, fallback: &str, name: &str) -> PathBuf {
    env_path(xdg_var)
        .or_else(|| env_path("HOME").map(|home| home.join(fallback)))
        .unwrap_or_else(std::env::temp_dir)
        .join(name)
}

/// The project's state root, as `scripts/setup` chose it.
pub fn state_root() -> PathBuf {
    env_path("CZ_ROOT").unwrap_or_else(|| {
        if rustix::process::geteuid().is_root() {
            PathBuf::from("/var/lib/containerization")
        } else {
            user_dir("XDG_DATA_HOME", ".local/share", "containerization")
        }
    })
}

/// A new, empty state root in `parent` (its name starting with `prefix`)
/// that shares the real one's kernels, tools, initramfs cache and VM
/// templates (what `scripts/setup` and earlier runs made), for a test's
/// containers: a VM shape's template is built once for the whole suite.
/// A test that counts or prunes templates takes [`own_templates`].
pub fn shared_state_root(
    parent: &std::path::Path,
    prefix: &str,
) -> std::io::Result<tempfile::TempDir> {
    let root = tempfile::Builder::new().prefix(prefix).tempdir_in(parent)?;
    let real = state_root();
    for shared in ["kernels", "tools", "initramfs", "templates"] {
        std::fs::create_dir_all(real.join(shared))?;
        std::os::unix::fs::symlink(real.join(shared), root.path().join(shared))?;
    }
    Ok(root)
}

/// Gives the state root `root` (from [`shared_state_root`]) VM templates
/// of its own, for a test that counts, prunes or fills them; the shared
/// ones are left alone.
pub fn own_templates(root: &std::path::Path) -> std::io::Result<()> {
    let templates = root.join("templates");
    std::fs::remove_file(&templates)?;
    std::fs::create_dir(&templates)
}

/// The guest kernel catalogue that `scripts/setup` fills.
pub fn kernel_catalogue_dir() -> PathBuf {
    state_root().join("kernels")
}

/// The folder where fixtures and downloaded test inputs are cached.
pub fn test_cache_dir() -> PathBuf {
    env_path("CZ_TEST_CACHE").unwrap_or_else(|| {
        if rustix::process::geteuid().is_root() {
            PathBuf::from("/var/cache/containerization-test")
        } else {
            user_dir("XDG_CACHE_HOME", ".cache", "containerization-test")
        }
    })
}

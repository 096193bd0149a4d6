//! Build-once caching of fixtures, keyed by their recipe.
//!
//! A cached item lives in `<test cache>/<name>-<key>/`, where the key is a
//! digest of the recipe (a version string plus the inputs that change the
//! result). It is built into a hidden sibling folder and renamed into place
//! when whole, under an exclusive file lock, so concurrent test threads and
//! processes build it once and never see half of it.

use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Result;
use crate::error::IoContext;
use crate::paths::test_cache_dir;

/// The short key of a recipe: 16 hex digits of its SHA-256.
pub(crate) fn recipe_key(recipe: &str) -> String {
    hex::encode(&Sha256::digest(recipe.as_bytes())[..8])
}

/// The SHA-256 of a file, in hex, to put an input into a recipe.
pub(crate) fn file_digest(path: &Path) -> Result<String> {
    let mut file = File::open(path).at("cannot open", path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).at("cannot read", path)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Returns `<test cache>/<name>-<key>`, running `build` into a fresh folder
/// first if no complete copy exists.
pub(crate) fn build_once(
    name: &str,
    recipe: &str,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let cache = test_cache_dir();
    std::fs::create_dir_all(&cache).at("cannot create", &cache)?;
    let stem = format!("{name}-{}", recipe_key(recipe));
    let done = cache.join(&stem);
    if done.is_dir() {
        return Ok(done);
    }
    let lock_path = cache.join(format!("{stem}.lock"));
    let lock = File::create(&lock_path).at("cannot create", &lock_path)?;
    lock.lock().at("cannot lock", &lock_path)?;
    // Another builder may have finished while this one waited for the lock.
    if done.is_dir() {
        return Ok(done);
    }
    let partial = cache.join(format!(".{stem}.partial"));
    if partial.exists() {
        // Left by a builder that died; nobody else holds the lock.
        std::fs::remove_dir_all(&partial).at("cannot remove", &partial)?;
    }
    std::fs::create_dir(&partial).at("cannot create", &partial)?;
    build(&partial)?;
    std::fs::write(partial.join("RECIPE"), recipe).at("cannot write", &partial)?;
    std::fs::rename(&partial, &done).at("cannot rename into place", &done)?;
    Ok(done)
}

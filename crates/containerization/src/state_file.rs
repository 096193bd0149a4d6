//! Writing state files so a crash never leaves half of one.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::Error;

/// Writes `value` as JSON to `path` (creating its folder) atomically: a temporary file beside it,
/// fsync, then rename over the old one.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    write(path, value, true)
}

/// Like [`write_json`] without the fsync, for a file rewritten many times a
/// second whose loss in a host crash costs nothing (a container's state: its
/// owner is gone too). The rename still never shows half a file.
pub(crate) fn replace_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    write(path, value, false)
}

fn write<T: serde::Serialize>(path: &Path, value: &T, sync: bool) -> Result<(), Error> {
    let temporary = path.with_extension("json.tmp");
    let io = |source| Error::Io {
        path: temporary.clone(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::CorruptState {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Private: a container's config holds its environment (secrets too).
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::private_dir::PRIVATE_FILE)
        .open(&temporary)
        .map_err(io)?;
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
        crate::private_dir::PRIVATE_FILE,
    ))
    .map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    if sync {
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&temporary, path).map_err(io)
}

/// Reads the JSON state file at `path`; `None` when it does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::CorruptState {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Takes an exclusive lock on the file `path`, created if missing; the lock
/// lasts as long as the returned file is open.
pub(crate) fn lock(path: &Path) -> Result<std::fs::File, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = std::fs::File::create(path).map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

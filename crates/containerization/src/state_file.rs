//! Writing state files so a crash never leaves half of one.
//!
//! On a full disk the temporary file cannot be written; a file that exists
//! is then rewritten in place, in the blocks it already has (compact JSON,
//! which is never longer than the pretty form), so a container's owner can
//! still record how it ended and commands can still stop and remove
//! containers. Only then could a crash in mid-write damage the file, which
//! readers report as a damaged (`Dead`) record.

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
    let written = file
        .write_all(&bytes)
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) });
    if let Err(error) = written {
        drop(file);
        let _ = std::fs::remove_file(&temporary);
        if !is_out_of_space(&error) {
            return Err(io(error));
        }
        return rewrite_in_place(path, value, sync).map_err(|()| io(error));
    }
    std::fs::rename(&temporary, path).map_err(io)
}

/// Whether `error` says the disk (or the user's quota) is full.
pub(crate) fn is_out_of_space(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error()
            || code == rustix::io::Errno::DQUOT.raw_os_error()
    )
}

/// Rewrites the existing file at `path` with `value` as compact JSON, in
/// the blocks it has; `Err` when it does not exist or the JSON would need
/// more room than it has.
fn rewrite_in_place<T: serde::Serialize>(path: &Path, value: &T, sync: bool) -> Result<(), ()> {
    use std::os::unix::fs::MetadataExt;
    let bytes = serde_json::to_vec(value).map_err(drop)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(drop)?;
    let meta = file.metadata().map_err(drop)?;
    if meta.blocks() * 512 < bytes.len() as u64 {
        return Err(());
    }
    file.write_all(&bytes).map_err(drop)?;
    file.set_len(bytes.len() as u64).map_err(drop)?;
    if sync {
        file.sync_all().map_err(drop)?;
    }
    tracing::warn!(path = %path.display(), "the disk is full: rewrote the state file in place");
    Ok(())
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{read_json, write_json};

    #[test]
    fn a_full_disk_rewrites_an_existing_file_in_place() {
        let disk = containerization_testkit::SmallDisk::mount(1 << 20).expect("a small disk");
        let path = disk.path().join("state.json");
        write_json(
            &path,
            &json!({ "status": "running", "pad": "x".repeat(100) }),
        )
        .unwrap();
        let filler = containerization_testkit::fill(disk.path()).expect("fill");
        write_json(&path, &json!({ "status": "exited", "exit_code": 137 })).unwrap();
        let back: Value = read_json(&path).unwrap().expect("the file");
        assert_eq!(back["status"], "exited");
        assert_eq!(back["exit_code"], 137);
        assert!(!path.with_extension("json.tmp").exists());
        // A new file has no blocks to reuse: the error names the cause.
        let error = write_json(&disk.path().join("new.json"), &json!({})).unwrap_err();
        assert!(error.to_string().contains("No space left"), "{error}");
        std::fs::remove_file(filler).unwrap();
    }
}

//! Folders only their owner may enter, and files only their owner may read.
//!
//! A container's folder holds its environment (`-e` values, secrets among
//! them) and its output; the run folder holds sockets that give root in the
//! guest (the agent) or on the host (QMP). Each is made 0700 for the user
//! running `cctl`, and one that already exists must be a real directory
//! owned by that user: a folder another user made first (say a predictable
//! `/tmp/containerization-<uid>`) is refused, never used.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::Error;

/// The mode of private folders.
pub(crate) const PRIVATE_DIR: u32 = 0o700;
/// The mode of private files.
pub(crate) const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` (and missing parents, as the umask says) as a folder of
/// `mode` owned by this user, or checks that it is one: a symlink or a
/// folder owned by someone else is refused; a folder of ours with more
/// permissions than `mode` is narrowed to it.
pub(crate) fn ensure(dir: &Path, mode: u32) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.file_type().is_dir() || meta.uid() != me {
        return Err(Error::NotOurFolder {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            user: me,
        });
    }
    if meta.mode() & 0o777 & !mode != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    Ok(())
}

/// Makes the VMs' run folder `run_dir` private and this user's, and the
/// `containerization*` folder above it too, refusing any that another
/// user owns (one who owned a parent could swap a VM's folder).
pub(crate) fn ensure_run_dir(run_dir: &Path) -> Result<(), Error> {
    if let Some(parent) = run_dir.parent()
        && parent
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("containerization"))
    {
        ensure(parent, PRIVATE_DIR)?;
    }
    ensure(run_dir, PRIVATE_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_folders_are_made_0700_narrowed_and_symlinks_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let made = dir.path().join("a/b");
        ensure(&made, PRIVATE_DIR).expect("made");
        let mode = std::fs::metadata(&made).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o700);
        let wide = dir.path().join("wide");
        std::fs::create_dir(&wide).expect("mkdir");
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        ensure(&wide, PRIVATE_DIR).expect("narrowed");
        assert_eq!(
            std::fs::metadata(&wide).expect("meta").mode() & 0o777,
            0o700
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&wide, &link).expect("symlink");
        let error = ensure(&link, PRIVATE_DIR).expect_err("a symlink is refused");
        assert!(error.to_string().contains("refusing"), "{error}");
    }

    #[test]
    fn a_folder_owned_by_another_user_is_refused() {
        if !rustix::process::geteuid().is_root() {
            return; // only root can make a folder another user owns
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).expect("mkdir");
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
        let error = ensure(&theirs, PRIVATE_DIR).expect_err("refused");
        assert!(error.to_string().contains("65534"), "{error}");
    }
}

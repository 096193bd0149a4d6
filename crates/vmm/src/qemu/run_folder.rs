//! The VM's run folder: private to the user who starts the VM.
//!
//! It holds what gives control of the VM or the guest: the agent's sockets
//! (`vsock.sock` and its `_<port>` listeners; root in the guest), the vsock
//! helper's `vhost-vsock.sock`, QEMU's `qemu.stderr` and usually
//! `console.log`. QEMU itself never sees it: what it needs from here is
//! handed to it as descriptors (see `handoff`). So the folder is 0700 and must belong to the
//! user starting the VM (one another user made first, say under a shared
//! `/tmp`, is refused), the files in it are 0600, and the sockets are
//! chmod-ed 0600 once bound (the folder already keeps others out in
//! between). QMP and the serial port have no socket here at all: they are
//! socket pairs. The empty
//! `jail/` folder is where QEMU's own root is mounted in its mount namespace
//! (see `jail`); on the host it stays empty.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::VmmError;
use crate::error::io_at;

/// Makes `dir` (and missing parents, 0700 too) and checks that it is this
/// user's and 0700.
pub(crate) fn prepare(dir: &Path) -> Result<(), VmmError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_at(dir))?;
    let meta = std::fs::symlink_metadata(dir).map_err(io_at(dir))?;
    let user = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != user {
        return Err(VmmError::RunFolderNotOwned {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            user,
        });
    }
    if meta.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_at(dir))?;
    }
    Ok(())
}

/// Creates (or truncates) `path` as a file only its owner can read.
pub(crate) fn private_file(path: &Path) -> Result<std::fs::File, VmmError> {
    let file = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_at(path))?;
    // An existing file keeps its mode through open(2).
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_at(path))?;
    Ok(file)
}

/// Makes the socket at `path` 0600 (connecting needs write permission).
pub(crate) fn private_socket(path: &Path) -> Result<(), VmmError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_at(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_folder_is_made_0700_and_an_open_one_is_closed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("vm/abc");
        prepare(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("vm")), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_run_folder_of_another_user_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("vm");
        std::fs::create_dir(&dir).unwrap();
        let other = rustix::process::geteuid().as_raw() + 1;
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&dir, Some(other), None).unwrap();
        } else {
            // Only root can give a folder away; stand in with a symlink to
            // one that is not ours.
            std::fs::remove_dir(&dir).unwrap();
            std::os::unix::fs::symlink("/", &dir).unwrap();
        }
        let err = prepare(&dir).expect_err("not ours");
        assert!(matches!(err, VmmError::RunFolderNotOwned { .. }), "{err}");
    }

    #[test]
    fn a_private_file_is_0600_even_when_it_was_open() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("console.log");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(private_file(&path).unwrap());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 0);
    }
}

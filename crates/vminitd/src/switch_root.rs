//! Leaving the initramfs: PID 1 moves itself onto a tmpfs at boot.
//!
//! The kernel unpacks the initramfs into its `rootfs`, the root of the mount
//! tree, which `pivot_root` can never move away from. The launcher needs
//! `pivot_root` to put each container in its rootfs with the guest's `/`
//! gone (a `chroot` can be escaped), so vminitd does what `switch_root`
//! does, before anything else: it mounts a tmpfs, moves every initramfs file
//! into it (deleting each original once copied, so the memory is not held
//! twice), `mount --move`s the tmpfs onto `/` and `chroot`s into it. `/` is
//! then a real mount over an emptied rootfs, and `pivot_root` works in every
//! container's mount namespace.
//!
//! vminitd's own binary is not copied: it is unlinked and keeps running from
//! its (now nameless) pages, as a re-execution from a copy would, without a
//! second 20 MB copy and an exec on the boot path (slow under TCG). The
//! launcher starts it through `/proc/self/exe`, which reaches it by inode.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode};
use rustix::mount::{MountFlags, UnmountFlags};

/// Where the tmpfs is mounted while the files move.
const NEW_ROOT: &str = "/.vminitd-root";

/// When `/` is the kernel's rootfs, moves onto a tmpfs. Failures go to the
/// console: the guest still serves, but containers will refuse to start.
pub(crate) fn leave_initramfs() {
    let exe = match initramfs_exe() {
        Ok(Some(exe)) => exe,
        Ok(None) => return,
        Err(err) => {
            eprintln!("vminitd: cannot tell whether / is the initramfs: {err}");
            return;
        }
    };
    if let Err(err) = switch_to_tmpfs(&exe) {
        eprintln!(
            "vminitd: cannot move the initramfs onto a tmpfs: {err}; \
             containers will not start (pivot_root needs / to be a mount)"
        );
    }
}

/// This binary's path when `/` is the rootfs, `None` when it is not. Mounts
/// `/proc` for a moment to find out.
fn initramfs_exe() -> io::Result<Option<PathBuf>> {
    std::fs::create_dir_all("/proc")?;
    rustix::mount::mount("proc", "/proc", "proc", MountFlags::empty(), c"")?;
    let info = std::fs::read_to_string("/proc/self/mountinfo");
    let exe = std::fs::read_link("/proc/self/exe");
    rustix::mount::unmount("/proc", UnmountFlags::DETACH)?;
    if !root_is_rootfs(&info?) {
        return Ok(None);
    }
    exe.map(Some)
}

/// Whether `/`, in `/proc/self/mountinfo`, is the kernel's rootfs.
fn root_is_rootfs(mountinfo: &str) -> bool {
    mountinfo.lines().any(|line| {
        let Some((left, right)) = line.split_once(" - ") else {
            return false;
        };
        left.split_whitespace().nth(4) == Some("/")
            && right.split_whitespace().next() == Some("rootfs")
    })
}

/// Mounts the tmpfs, moves the files into it and makes it `/`.
fn switch_to_tmpfs(exe: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(0o755).create(NEW_ROOT)?;
    rustix::mount::mount(
        "tmpfs",
        NEW_ROOT,
        "tmpfs",
        MountFlags::empty(),
        c"mode=0755",
    )?;
    move_tree(Path::new("/"), Path::new(NEW_ROOT), exe)?;
    rustix::process::chdir(NEW_ROOT)?;
    rustix::mount::mount_move(".", "/")?;
    rustix::process::chroot(".")?;
    rustix::process::chdir("/")?;
    Ok(())
}

/// Moves what `from` holds into `to` (on another file system): each entry
/// is copied, with its mode and owner, then deleted; `running` (this binary)
/// is only deleted.
fn move_tree(from: &Path, to: &Path, running: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        if source == Path::new(NEW_ROOT) {
            continue;
        }
        if source == running {
            std::fs::remove_file(&source)?;
            continue;
        }
        let target = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&source)?;
        let kind = meta.file_type();
        let at = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", source.display()));
        if kind.is_dir() {
            std::fs::DirBuilder::new()
                .mode(meta.mode() & 0o7777)
                .create(&target)
                .map_err(at)?;
            move_tree(&source, &target, running)?;
            std::fs::remove_dir(&source).map_err(at)?;
        } else {
            if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target).map_err(at)?;
            } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
                let file_type = FileType::from_raw_mode(meta.mode());
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &target,
                    file_type,
                    Mode::from_raw_mode(meta.mode() & 0o7777),
                    meta.rdev(),
                )
                .map_err(|e| at(e.into()))?;
            } else {
                std::fs::copy(&source, &target).map_err(at)?;
            }
            std::fs::remove_file(&source).map_err(at)?;
        }
        rustix::fs::chownat(
            rustix::fs::CWD,
            &target,
            Some(rustix::process::Uid::from_raw(meta.uid())),
            Some(rustix::process::Gid::from_raw(meta.gid())),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| at(e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rootfs_is_told_from_a_tmpfs_root() {
        let initramfs = "1 1 0:2 / / rw - rootfs rootfs rw,size=110000k\n\
                         12 1 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw\n";
        assert!(root_is_rootfs(initramfs));
        let switched = "20 1 0:21 / / rw - tmpfs tmpfs rw,mode=755\n\
                        21 20 0:22 / /proc rw - proc proc rw\n";
        assert!(!root_is_rootfs(switched));
    }

    #[test]
    fn a_tree_moves_with_its_files_links_and_modes() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("lib/modules")).unwrap();
        std::fs::write(from.path().join("init"), b"binary").unwrap();
        rustix::fs::chmod(from.path().join("init"), Mode::from_raw_mode(0o755)).unwrap();
        std::fs::write(from.path().join("lib/modules/modules.dep"), b"").unwrap();
        std::os::unix::fs::symlink("init", from.path().join("sbin-init")).unwrap();
        std::fs::write(from.path().join("vminitd"), b"running").unwrap();
        move_tree(from.path(), to.path(), &from.path().join("vminitd")).unwrap();
        assert!(
            !to.path().join("vminitd").exists(),
            "the running binary is not copied"
        );
        assert_eq!(std::fs::read(to.path().join("init")).unwrap(), b"binary");
        let mode = std::fs::metadata(to.path().join("init")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(to.path().join("lib/modules/modules.dep").is_file());
        assert_eq!(
            std::fs::read_link(to.path().join("sbin-init")).unwrap(),
            Path::new("init")
        );
        assert_eq!(std::fs::read_dir(from.path()).unwrap().count(), 0);
    }
}

//! Host folders and files shared with the guest: one 9p device whose
//! `virtfs-proxy-helper` serves them all.
//!
//! QEMU runs as an unprivileged uid and could not give a file the owner the
//! guest asks for, so it does not open shared files itself: its 9p device
//! uses the `proxy` file system driver, which asks QEMU's helper over a
//! socket pair. The helper is root with only the capabilities file work
//! needs, and chroots into its export before serving, so no path the guest
//! names (a `..`, a symlink to `/etc`) leaves it: the guest resolves
//! symlinks itself, in its own tree.
//!
//! `microvm` has 8 virtio-mmio slots in all, so every share of a VM is an
//! entry of one device's root: share `i` is `/<i>`. The export is made in a
//! mount namespace of the helper's own, between fork and exec, so nothing
//! is ever mounted on the host and nothing needs cleaning after a crash: a
//! small tmpfs on the run folder's `shares/` holding, for each share, a
//! bind mount of its source (recursive for a writable folder; a read-only
//! one binds only the folder, so the read-only flag covers everything it
//! shows) on an empty folder or file named `i`, `nosuid,nodev`, read-only
//! for a read-only share: the host's kernel refuses writes, whatever QEMU
//! asks. The tmpfs is then made read-only: nothing can be made beside the
//! shares.
//!
//! The helper exits when QEMU closes its end; it also dies with its owner,
//! like QEMU.
//!
//! With `CZ_SHARES=virtiofs` the same export is served by `virtiofsd`
//! instead (a `vhost-user-fs-device`, which blocks migration: such VMs
//! boot cold), listening on a socket in the run folder that the owner
//! connects for QEMU; it announces each share as a mount of its own, so
//! inode numbers from different host file systems stay apart.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rustix::fs::{Mode, OFlags};
use rustix::mount::MountFlags;

use super::namespace;
use super::run_folder;
use crate::error::io_at;
use crate::supervise::{inherit_fd, spawn_owned};
use crate::{ShareConfig, ShareTransport, VmConfig, VmmError};

/// The folder in the run folder the export is mounted on (in the helper's
/// namespace only; on the host it stays empty).
const STAGING: &str = "shares";

/// One share in the export, worked out before the fork.
#[derive(Debug)]
struct Entry {
    /// The host's source.
    source: CString,
    /// Its mount point in the export (`<staging>/<i>`).
    target: CString,
    /// A folder (or a file).
    folder: bool,
    read_only: bool,
}

/// The helper's export, worked out before the fork.
#[derive(Debug)]
struct Export {
    staging: CString,
    entries: Vec<Entry>,
}

fn c_path(path: &Path) -> Result<CString, VmmError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| VmmError::InvalidConfig {
        message: format!("shared path {} contains a NUL byte", path.display()),
    })
}

impl Export {
    /// Works out the export of `shares` in `staging` (made here, empty).
    fn plan(shares: &[ShareConfig], staging: &Path) -> Result<Self, VmmError> {
        if !rustix::process::geteuid().is_root() {
            // The helper chroots, and the export is made of mounts.
            return Err(VmmError::InvalidConfig {
                message: "sharing host paths with a VM needs root (QEMU's 9p helper chroots)"
                    .to_owned(),
            });
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(staging)
            .map_err(io_at(staging))?;
        let entries = shares
            .iter()
            .enumerate()
            .map(|(index, share)| {
                let meta = std::fs::metadata(&share.source).map_err(io_at(&share.source))?;
                Ok(Entry {
                    source: c_path(&share.source)?,
                    target: c_path(&staging.join(index.to_string()))?,
                    folder: meta.is_dir(),
                    read_only: share.read_only,
                })
            })
            .collect::<Result<_, VmmError>>()?;
        Ok(Self {
            staging: c_path(staging)?,
            entries,
        })
    }

    /// Runs in the forked helper: a mount namespace of its own holding the
    /// export.
    fn enter(&self) -> std::io::Result<()> {
        namespace::private_with_tmpfs(self.staging.as_c_str(), c"mode=0755,size=64k")?;
        let hardened = namespace::HARDENED;
        for entry in &self.entries {
            let target = entry.target.as_c_str();
            let source = entry.source.as_c_str();
            match entry.folder {
                true => rustix::fs::mkdir(target, Mode::from(0o755))?,
                false => {
                    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC;
                    drop(rustix::fs::open(target, flags, Mode::from(0o600))?);
                }
            }
            match entry.folder && !entry.read_only {
                true => rustix::mount::mount_bind_recursive(source, target)?,
                false => rustix::mount::mount_bind(source, target)?,
            }
            let read_only = match entry.read_only {
                true => MountFlags::RDONLY,
                false => MountFlags::empty(),
            };
            rustix::mount::mount_remount(target, MountFlags::BIND | hardened | read_only, c"")?;
        }
        // Nothing can be made beside the shares.
        rustix::mount::mount_remount(
            self.staging.as_c_str(),
            hardened | MountFlags::NOEXEC | MountFlags::RDONLY,
            c"",
        )?;
        Ok(())
    }
}

/// The most descriptors a process may have (`fs.nr_open`), which the
/// helpers get: they hold one for each file the guest uses.
fn most_descriptors() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// The share helper of one VM, killed and reaped when dropped.
#[derive(Debug, Default)]
pub(crate) struct ShareHelper {
    child: Option<Child>,
}

impl ShareHelper {
    /// Starts the helper for `config`'s shares, if it has any; QEMU's end
    /// of their socket pair.
    pub(crate) fn start(config: &VmConfig) -> Result<(Self, Option<OwnedFd>), VmmError> {
        if config.shares.is_empty() {
            return Ok((Self::default(), None));
        }
        let staging = config.run_dir.join(STAGING);
        let export = Export::plan(&config.shares, &staging)?;
        let log_path = config.run_dir.join("shares.log");
        let log = run_folder::private_file(&log_path)?;
        let (mut command, qemu_end, helper_end): (Command, OwnedFd, OwnedFd) = match config
            .share_transport
        {
            ShareTransport::NineP => {
                let (qemu_end, helper_end) = UnixStream::pair().map_err(io_at(&config.run_dir))?;
                let mut command = Command::new(&config.share_helper);
                command
                    .arg("--nodaemon")
                    .arg("--fd")
                    .arg(helper_end.as_raw_fd().to_string())
                    .arg("--path")
                    .arg(&staging);
                (command, qemu_end.into(), helper_end.into())
            }
            ShareTransport::VirtioFs => {
                let socket = config.run_dir.join("virtiofs.sock");
                let _ = std::fs::remove_file(&socket);
                let listener = UnixListener::bind(&socket).map_err(io_at(&socket))?;
                run_folder::private_socket(&socket)?;
                // Queued until virtiofsd accepts: QEMU gets a connected socket.
                let qemu_end = UnixStream::connect(&socket).map_err(io_at(&socket))?;
                let mut command = Command::new(&config.virtiofsd);
                command
                    .arg(format!("--fd={}", listener.as_raw_fd()))
                    .arg("-o")
                    .arg(format!("source={}", staging.display()))
                    .args(["-o", "cache=auto", "-o", "announce_submounts"]);
                (command, qemu_end.into(), listener.into())
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let program = command.get_program().to_owned();
        inherit_fd(&mut command, helper_end.as_fd());
        let descriptors = most_descriptors();
        // SAFETY: `enter` makes only system calls on memory allocated
        // before the fork (the export's C strings), all async-signal-safe;
        // so is `prlimit64`.
        unsafe {
            command.pre_exec(move || {
                // virtiofsd keeps a descriptor for every file the guest has
                // looked up, and without CAP_SYS_RESOURCE cannot raise its
                // own hard limit: an untar of 20,000 files failed with
                // EMFILE under a hard limit of 20,000. An owner with that
                // capability raises it; one without gives the hard limit.
                use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
                let most = Rlimit {
                    current: Some(descriptors),
                    maximum: Some(descriptors),
                };
                if setrlimit(Resource::Nofile, most).is_err() {
                    let hard = getrlimit(Resource::Nofile).maximum;
                    let _ = setrlimit(
                        Resource::Nofile,
                        Rlimit {
                            current: hard,
                            maximum: hard,
                        },
                    );
                }
                export.enter()
            });
        }
        let child = spawn_owned(command).map_err(|source| VmmError::Spawn {
            program: program.into(),
            source,
        })?;
        // The helper has its end; a QEMU that exits closes the other.
        drop(helper_end);
        Ok((Self { child: Some(child) }, Some(qemu_end)))
    }

    /// Kills and reaps the helper (it exits by itself once QEMU is gone;
    /// this makes sure).
    pub(crate) fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// The helper's pid, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for ShareHelper {
    fn drop(&mut self) {
        self.reap();
    }
}

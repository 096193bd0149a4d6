//! QEMU's own unprivileged user.
//!
//! Started by root, QEMU gives up root between fork and exec, after its
//! jail is in place: no supplementary groups (but the one `/dev/kvm` needs),
//! the `cz-qemu` group, and a uid of its own, leased for its life from the
//! range `/etc/subuid` gives the `cz-qemu` account (the registry `useradd`
//! keeps other users' ranges out of), so no two VMs share a uid and one
//! QEMU cannot signal or trace another. `scripts/setup` makes the account
//! and its range; without a range, every QEMU runs as `cz-qemu` itself.
//!
//! QEMU 7.2's own `-runas` cannot be used: it changes user after the
//! sandbox is in place, and `elevateprivileges=deny` kills it.
//!
//! What QEMU opens itself must then be open to that user: the kernel and
//! the initramfs (read, by path, through the jail), and a template's memory
//! file, which QEMU opens read-write even when it maps it private; so a
//! memory file belongs to the `cz-qemu` group, mode 0660. Everything else
//! (disks, taps, the console log, the agent's and QMP's sockets, the vhost
//! device) is opened by the owner and inherited (see `handoff`).

use std::ops::Range;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use rustix::process::{Gid, Uid};

use crate::VmmError;
use crate::error::io_at;
use crate::lease::NumberLease;

/// The account whose group QEMU runs in and whose subordinate uids it runs as.
pub const ACCOUNT: &str = "cz-qemu";

/// Where the uid leases live.
const LEASES: &str = "/run/containerization/qemu-uids";

/// The identities QEMU may run as: a range of uids and one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuUsers {
    uids: Range<u32>,
    gid: u32,
}

impl QemuUsers {
    /// QEMU runs as one of `uids` (each VM its own) in group `gid`. An
    /// empty range, or one that holds uid 0, is refused.
    pub fn new(uids: Range<u32>, gid: u32) -> Result<Self, VmmError> {
        if uids.is_empty() || uids.start == 0 || gid == 0 {
            return Err(VmmError::InvalidConfig {
                message: format!(
                    "QEMU's users must be unprivileged: uids {uids:?}, gid {gid} include root or none"
                ),
            });
        }
        Ok(Self { uids, gid })
    }

    /// The `cz-qemu` account of this host (`/etc/passwd`) and its
    /// subordinate uids (`/etc/subuid`); `None` when there is no account.
    pub fn from_system() -> Option<Self> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
        Self::from_files(&passwd, &subuid)
    }

    /// [`QemuUsers::from_system`] on the texts of `/etc/passwd` and `/etc/subuid`.
    fn from_files(passwd: &str, subuid: &str) -> Option<Self> {
        let (uid, gid) = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [name, _, uid, gid, ..] if *name == ACCOUNT => {
                    Some((uid.parse::<u32>().ok()?, gid.parse::<u32>().ok()?))
                }
                _ => None,
            }
        })?;
        let uid_text = uid.to_string();
        let range = subuid
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                match fields.as_slice() {
                    [owner, start, count] if *owner == ACCOUNT || *owner == uid_text => {
                        let start = start.trim().parse::<u32>().ok()?;
                        let count = count.trim().parse::<u32>().ok()?;
                        Some(start..start.checked_add(count)?)
                    }
                    _ => None,
                }
            })
            .unwrap_or(uid..uid + 1);
        Self::new(range, gid).ok()
    }

    /// The group QEMU runs in.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Leases a uid no running QEMU has.
    pub(crate) fn lease(&self) -> Result<UidLease, VmmError> {
        NumberLease::acquire(Path::new(LEASES), self.uids.clone(), "uid for QEMU").map(|lease| {
            UidLease {
                lease,
                gid: self.gid,
            }
        })
    }
}

/// QEMU's uid for one VM, held while it runs.
#[derive(Debug)]
pub(crate) struct UidLease {
    lease: NumberLease,
    gid: u32,
}

impl UidLease {
    /// The uid.
    pub(crate) fn uid(&self) -> u32 {
        self.lease.number()
    }

    /// The group.
    pub(crate) fn gid(&self) -> u32 {
        self.gid
    }

    /// The lease's lock, for QEMU to inherit: the uid stays taken while
    /// QEMU lives, even if its owner dies first.
    pub(crate) fn lock(&self) -> &std::fs::File {
        self.lease.lock()
    }

    /// Makes the child of `command` run as this user, with `groups` as its
    /// only supplementary groups: registered after the jail, so it runs
    /// after it, between fork and exec.
    pub(crate) fn install(&self, command: &mut Command, groups: Vec<Gid>) {
        let (uid, gid) = (Uid::from_raw(self.uid()), Gid::from_raw(self.gid));
        // SAFETY: the closure makes only system calls (setgroups, setresgid,
        // setresuid, prctl) on memory allocated before the fork.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, move || {
                rustix::thread::set_thread_groups(&groups)?;
                rustix::thread::set_thread_res_gid(gid, gid, gid)?;
                rustix::thread::set_thread_res_uid(uid, uid, uid)?;
                rustix::thread::set_no_new_privs(true)?;
                Ok(())
            });
        }
    }
}

/// The supplementary groups QEMU needs: `/dev/kvm`'s group when `kvm` and
/// the device is not open to everyone.
pub(crate) fn device_groups(kvm: bool) -> Vec<Gid> {
    if !kvm {
        return Vec::new();
    }
    match std::fs::metadata("/dev/kvm") {
        Ok(meta) if meta.mode() & 0o006 != 0o006 => vec![Gid::from_raw(meta.gid())],
        _ => Vec::new(),
    }
}

/// Whether `uid`/`gid` (no other groups) may read, and with `write` write,
/// the file `meta` describes, by its mode bits.
fn allowed(meta: &std::fs::Metadata, uid: u32, gid: u32, write: bool) -> bool {
    let want = if write { 0o6 } else { 0o4 };
    let bits = if meta.uid() == uid {
        meta.mode() >> 6
    } else if meta.gid() == gid {
        meta.mode() >> 3
    } else {
        meta.mode()
    };
    bits & want == want
}

/// Refuses to start when QEMU, as `uid`/`gid`, could not read `path`: the
/// error names the file and the fix, where QEMU's own would say only
/// "Permission denied".
pub(crate) fn check_readable(path: &Path, uid: u32, gid: u32) -> Result<(), VmmError> {
    let meta = std::fs::metadata(path).map_err(io_at(path))?;
    if allowed(&meta, uid, gid, false) {
        return Ok(());
    }
    Err(VmmError::InvalidConfig {
        message: format!(
            "QEMU runs as uid {uid} (group {ACCOUNT}) and cannot read {} (mode {:o}, owner {}): \
             make it readable by others, or set CZ_QEMU_USER=off to run QEMU as the caller",
            path.display(),
            meta.mode() & 0o7777,
            meta.uid()
        ),
    })
}

/// Makes the memory file at `path` one QEMU, in group `gid`, can open
/// read-write: made (sparse, `bytes` long) when missing, else given to the
/// group. Mode 0660: guest RAM is for the owner and QEMU only.
pub(crate) fn share_memory_file(path: &Path, bytes: u64, gid: u32) -> Result<(), VmmError> {
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_at(path))?;
    let meta = file.metadata().map_err(io_at(path))?;
    if meta.len() == 0 {
        file.set_len(bytes).map_err(io_at(path))?;
    }
    if meta.gid() != gid {
        std::os::unix::fs::fchown(&file, None, Some(gid)).map_err(io_at(path))?;
    }
    if meta.mode() & 0o777 != 0o660 {
        file.set_permissions(std::fs::Permissions::from_mode(0o660))
            .map_err(io_at(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          cz-qemu:x:990:985::/nonexistent:/usr/sbin/nologin\n";

    #[test]
    fn the_account_and_its_subordinate_range_are_read_by_name_or_uid() {
        let by_name = QemuUsers::from_files(PASSWD, "alice:100000:65536\ncz-qemu:165536:65536\n");
        assert_eq!(
            by_name,
            Some(QemuUsers {
                uids: 165536..231072,
                gid: 985
            })
        );
        let by_uid = QemuUsers::from_files(PASSWD, "990:300000:10\n").unwrap();
        assert_eq!(by_uid.uids, 300000..300010);
        // No range: the account's own uid for every VM.
        let alone = QemuUsers::from_files(PASSWD, "alice:100000:65536\n").unwrap();
        assert_eq!(alone.uids, 990..991);
        assert_eq!(QemuUsers::from_files("root:x:0:0::/:/bin/sh\n", ""), None);
    }

    #[test]
    fn root_is_never_one_of_qemus_users() {
        assert!(QemuUsers::new(0..10, 985).is_err());
        assert!(QemuUsers::new(100..100, 985).is_err());
        assert!(QemuUsers::new(100..200, 0).is_err());
        let root_account = "cz-qemu:x:0:0::/:/bin/sh\n";
        assert_eq!(QemuUsers::from_files(root_account, ""), None);
    }

    #[test]
    fn readability_follows_owner_then_group_then_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmlinux");
        std::fs::write(&path, b"kernel").unwrap();
        let me = rustix::process::geteuid().as_raw();
        let group = rustix::process::getegid().as_raw();
        let stranger = me + 100_000;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(check_readable(&path, me, 1,).is_ok(), "the owner");
        assert!(check_readable(&path, stranger, group).is_ok(), "the group");
        let err = check_readable(&path, stranger, group + 1).unwrap_err();
        assert!(err.to_string().contains("CZ_QEMU_USER=off"), "{err}");
        assert!(err.to_string().contains("vmlinux"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_readable(&path, stranger, group + 1).is_ok(), "others");
    }

    #[test]
    fn a_memory_file_is_made_sparse_for_the_group_and_an_old_one_is_given_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory");
        let group = rustix::process::getegid().as_raw();
        share_memory_file(&path, 1 << 30, group).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.len(), meta.mode() & 0o777), (1 << 30, 0o660));
        assert!(meta.blocks() < 16, "sparse: {} blocks", meta.blocks());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        share_memory_file(&path, 1 << 20, group).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 1 << 30, "an existing file keeps its size");
        assert_eq!(meta.mode() & 0o777, 0o660);
    }
}

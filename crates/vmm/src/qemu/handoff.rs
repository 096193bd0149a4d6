//! What QEMU is handed instead of paths: descriptors its owner opened.
//!
//! QEMU opens nothing it could be denied as an unprivileged user, and
//! nothing a path could redirect: each disk (read-write and read-only
//! descriptors in one `-add-fd` set, named `/dev/fdset/N`, and the first
//! backing file of a qcow2 overlay likewise), the console log (append
//! only), each tap queue (`-netdev tap,fd=`), QMP's and the agent's sockets
//! (socket pairs or connected sockets, `-chardev socket,fd=`) and the
//! kernel's vhost-vsock device (`vhostfd=`) and the 9p share helper's
//! socket (`sock_fd=`). The descriptors are inherited
//! under their own numbers (see `supervise::inherit_fd`), so no other child
//! sees them, and the owner's copies are closed once QEMU has started.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Command;

use super::jail::backing_file;
use crate::error::io_at;
use crate::supervise::inherit_fd;
use crate::{DiskFormat, VmConfig, VmmError};

/// The `-add-fd` set of the console log.
const CONSOLE_SET: u32 = 1;

/// The first `-add-fd` set of the disks: disk `i` is `FIRST_DISK_SET + 2i`,
/// its backing file the next one.
const FIRST_DISK_SET: u32 = 10;

/// A disk as QEMU opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiskFds {
    /// The set holding the image's descriptors.
    pub(crate) set: u32,
    /// The set holding its qcow2 backing file's, if it has one.
    pub(crate) backing_set: Option<u32>,
}

/// The descriptors one QEMU inherits, opened before it starts.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    /// Everything QEMU inherits, kept open until it has started.
    held: Vec<OwnedFd>,
    /// `-add-fd` pairs: a descriptor and its set.
    pub(crate) add_fds: Vec<(RawFd, u32)>,
    /// QMP's end of its socket pair.
    pub(crate) qmp: RawFd,
    /// The console log's set.
    pub(crate) console_set: u32,
    /// The disks, in order.
    pub(crate) disks: Vec<DiskFds>,
    /// One tap queue per NIC, in order.
    pub(crate) taps: Vec<RawFd>,
    /// The agent's chardev socket (the serial port's, or the vhost-user
    /// vsock helper's), connected.
    pub(crate) agent: Option<RawFd>,
    /// `/dev/vhost-vsock`, for the kernel's vsock back end.
    pub(crate) vhost: Option<RawFd>,
    /// QEMU's end of the share helper's socket pair.
    pub(crate) shares: Option<RawFd>,
}

impl Handoff {
    /// Opens what `config` needs: `qmp` and `agent` are already open;
    /// `console` is the console log (created by the caller).
    pub(crate) fn open(
        config: &VmConfig,
        qmp: OwnedFd,
        agent: Option<OwnedFd>,
        vhost: bool,
        console: &Path,
    ) -> Result<Self, VmmError> {
        let mut handoff = Self {
            console_set: CONSOLE_SET,
            ..Self::default()
        };
        handoff.qmp = handoff.hold(qmp);
        handoff.agent = agent.map(|fd| handoff.hold(fd));
        let log = File::options()
            .append(true)
            .open(console)
            .map_err(io_at(console))?;
        handoff.add(log.into(), CONSOLE_SET);
        for (i, disk) in config.disks.iter().enumerate() {
            let set = FIRST_DISK_SET + 2 * i as u32;
            // QEMU opens read-only where it only reads, so a writable disk's
            // set holds both modes.
            handoff.add(open_image(&disk.path, false)?, set);
            if !disk.read_only {
                handoff.add(open_image(&disk.path, true)?, set);
            }
            let backing = match disk.format {
                DiskFormat::Qcow2 => backing_file(&disk.path)?,
                DiskFormat::Raw => None,
            };
            let backing_set = match backing {
                Some(base) => {
                    handoff.add(open_image(&base, false)?, set + 1);
                    Some(set + 1)
                }
                None => None,
            };
            handoff.disks.push(DiskFds { set, backing_set });
        }
        for nic in &config.nics {
            // The error names the device already.
            let queue = containerization_netlink::open_tap(&nic.tap).map_err(|source| {
                VmmError::InvalidConfig {
                    message: format!("cannot open a queue for QEMU: {source}"),
                }
            })?;
            let fd = handoff.hold(queue.into());
            handoff.taps.push(fd);
        }
        if vhost {
            let path = Path::new("/dev/vhost-vsock");
            let device = File::options()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io_at(path))?;
            handoff.vhost = Some(handoff.hold(device.into()));
        }
        Ok(handoff)
    }

    /// Keeps `fd` open for QEMU; its number.
    fn hold(&mut self, fd: OwnedFd) -> RawFd {
        let raw = fd.as_raw_fd();
        self.held.push(fd);
        raw
    }

    /// Holds `fd` as a member of `-add-fd` set `set`.
    fn add(&mut self, fd: OwnedFd, set: u32) {
        let raw = self.hold(fd);
        self.add_fds.push((raw, set));
    }

    /// Holds QEMU's end of the share helper's socket pair.
    pub(crate) fn add_share(&mut self, fd: OwnedFd) {
        self.shares = Some(self.hold(fd));
    }

    /// Holds one more descriptor for QEMU to inherit without naming it
    /// (a lease's lock).
    pub(crate) fn keep(&mut self, fd: OwnedFd) {
        self.hold(fd);
    }

    /// Lets the child of `command` inherit every descriptor. `self` must
    /// live until `command` has been spawned.
    pub(crate) fn install(&self, command: &mut Command) {
        for fd in &self.held {
            inherit_fd(command, fd.as_fd());
        }
    }
}

/// Opens a disk image (or backing file) read-only or read-write.
pub(crate) fn open_image(path: &Path, write: bool) -> Result<OwnedFd, VmmError> {
    let file = File::options()
        .read(true)
        .write(write)
        .open(path)
        .map_err(io_at(path))?;
    Ok(file.into())
}

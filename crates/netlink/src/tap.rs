//! Persistent tap devices, for QEMU's virtio-net back end.
//!
//! The kernel does not create tun/tap devices through rtnetlink, so this uses
//! the `/dev/net/tun` interface (`TUNSETIFF`, then `TUNSETPERSIST`), as
//! `ip tuntap add` does. The device outlives the file descriptor and is removed
//! like any link, with [`Netlink::delete_link`].

use std::fs::{File, OpenOptions};

use rustix::ioctl::{IntegerSetter, Setter, ioctl, opcode};

use crate::link::check_name;
use crate::{Link, Netlink, NetlinkError};

/// `struct ifreq` as `TUNSETIFF` reads it: a name and flags, padded to 40 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct TunRequest {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;
const IFF_VNET_HDR: i16 = 0x4000;
const TUNSETIFF: rustix::ioctl::Opcode = opcode::write::<i32>(b'T', 202);
const TUNSETPERSIST: rustix::ioctl::Opcode = opcode::write::<i32>(b'T', 203);
const TUNSETOWNER: rustix::ioctl::Opcode = opcode::write::<i32>(b'T', 204);

/// Opens `/dev/net/tun` and attaches it to the tap device `name` (no packet
/// information header, virtio-net header enabled), creating a transient
/// device when none of that name exists.
fn attach(name: &str) -> Result<File, NetlinkError> {
    check_name(name)?;
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|source| NetlinkError::Io {
            what: format!("tap device {name}: cannot open /dev/net/tun"),
            source,
        })?;
    let mut request = TunRequest {
        name: [0; 16],
        flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
        _pad: [0; 22],
    };
    request.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads a `struct ifreq`, whose layout TunRequest
    // reproduces (16-byte name, short flags, padding to 40 bytes); the
    // name is NUL-terminated because check_name keeps it under 16 bytes.
    unsafe { ioctl(&tun, Setter::<TUNSETIFF, TunRequest>::new(request)) }
        .map_err(|e| NetlinkError::from_io(format!("tap device {name}"), e.into()))?;
    Ok(tun)
}

/// Opens a queue of the existing tap device `name`, as QEMU's `-netdev tap`
/// would: the descriptor can be handed to QEMU (`-netdev tap,fd=N`), so
/// QEMU itself needs neither `/dev/net/tun` nor `CAP_NET_ADMIN`. Opening a
/// persistent tap needs `CAP_NET_ADMIN` or the tap's owner's uid; a name
/// that is no device is refused rather than created.
///
/// ```no_run
/// let queue = containerization_netlink::open_tap("cz-tap0")?;
/// # Ok::<(), containerization_netlink::NetlinkError>(())
/// ```
pub fn open_tap(name: &str) -> Result<File, NetlinkError> {
    check_name(name)?;
    // Asked of this thread's network namespace (`/sys/class/net` shows the
    // one sysfs was mounted in).
    let probe = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .map_err(|e| NetlinkError::from_io(format!("tap device {name}"), e.into()))?;
    if rustix::net::netdevice::name_to_index(&probe, name).is_err() {
        return Err(NetlinkError::NotFound {
            what: format!("tap device {name}"),
        });
    }
    attach(name)
}

impl Netlink {
    /// Creates a persistent tap device `name` (no packet information header,
    /// virtio-net header enabled), owned by `owner` when given, and returns it.
    pub async fn create_tap(&self, name: &str, owner: Option<u32>) -> Result<Link, NetlinkError> {
        check_name(name)?;
        let what = format!("tap device {name}");
        // TUNSETIFF attaches to an existing device of that name instead of
        // failing, so look first.
        if self.link_by_name(name).await.is_ok() {
            return Err(NetlinkError::AlreadyExists { what });
        }
        let io = |source| NetlinkError::from_io(what.clone(), source);
        let tun = attach(name)?;
        if let Some(uid) = owner {
            // SAFETY: TUNSETOWNER takes the owner's uid as an integer argument.
            unsafe { ioctl(&tun, IntegerSetter::<TUNSETOWNER>::new_usize(uid as usize)) }
                .map_err(|e| io(e.into()))?;
        }
        // SAFETY: TUNSETPERSIST takes an integer argument, 1 to persist.
        unsafe { ioctl(&tun, IntegerSetter::<TUNSETPERSIST>::new_usize(1)) }
            .map_err(|e| io(e.into()))?;
        drop(tun);
        self.link_by_name(name).await
    }
}

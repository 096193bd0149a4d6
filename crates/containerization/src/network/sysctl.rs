//! The few kernel settings host networking changes.
//!
//! IP forwarding is turned on for the first network and never turned back
//! off: other runtimes on the host (Docker, Podman, libvirt) need it for their
//! own bridges and cannot tell that we changed it, so lowering it when our
//! last network goes would cut their containers off. Docker never resets it
//! either. Only `route_localnet`, which belongs to our own bridges, is set
//! per bridge and goes with it.
//!
//! Read and written with plain (blocking) file calls on purpose: `/proc/sys/net`
//! answers for the network namespace of the calling thread.

use std::path::{Path, PathBuf};

use crate::Error;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
const IP6_FORWARD: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// Where versions that restored forwarding kept its old value.
const SAVED_BY_EARLIER_VERSIONS: &str = "host.json";

fn write(path: &Path, value: &str) -> Result<(), Error> {
    std::fs::write(path, value).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Turns IPv4 forwarding on (left on when the last network goes).
pub(crate) fn enable_forwarding() -> Result<(), Error> {
    write(Path::new(IP_FORWARD), "1")
}

/// Turns IPv6 forwarding on, for a network with an IPv6 subnet (left on when
/// the last network goes).
pub(crate) fn enable_forwarding6() -> Result<(), Error> {
    write(Path::new(IP6_FORWARD), "1")
}

/// Removes `dir/host.json`, the forwarding values earlier versions saved to
/// restore when their last network went; nothing reads it any more.
pub(crate) fn forget_saved_forwarding(dir: &Path) -> Result<(), Error> {
    let saved = dir.join(SAVED_BY_EARLIER_VERSIONS);
    match std::fs::remove_file(&saved) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            path: saved,
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Lets `bridge` carry packets from loopback addresses, so ports published on
/// 127.0.0.1 reach containers. The setting goes away with the bridge.
pub(crate) fn allow_localnet(bridge: &str) -> Result<(), Error> {
    let path: PathBuf = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet").into();
    write(&path, "1")
}

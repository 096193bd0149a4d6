//! The few kernel settings host networking changes, and their restoration.
//!
//! Read and written with plain (blocking) file calls on purpose: `/proc/sys/net`
//! answers for the network namespace of the calling thread.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, state_file};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
const IP6_FORWARD: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// What the host had before the first network, kept in `network/host.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    ip_forward: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip6_forward: Option<String>,
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn write(path: &Path, value: &str) -> Result<(), Error> {
    std::fs::write(path, value).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Turns IP forwarding on, remembering the old value in `dir/host.json` the
/// first time.
pub(crate) fn enable_forwarding(dir: &Path) -> Result<(), Error> {
    let saved_path = dir.join("host.json");
    let mut saved: Saved = state_file::read_json(&saved_path)?.unwrap_or_default();
    if saved.ip_forward.is_none() {
        saved.ip_forward = Some(read(Path::new(IP_FORWARD))?);
        state_file::write_json(&saved_path, &saved)?;
    }
    write(Path::new(IP_FORWARD), "1")
}

/// Turns IPv6 forwarding on (for a network with an IPv6 subnet),
/// remembering the old value in `dir/host.json` the first time.
pub(crate) fn enable_forwarding6(dir: &Path) -> Result<(), Error> {
    let saved_path = dir.join("host.json");
    let mut saved: Saved = state_file::read_json(&saved_path)?.unwrap_or_default();
    if saved.ip6_forward.is_none() {
        saved.ip6_forward = Some(read(Path::new(IP6_FORWARD))?);
        state_file::write_json(&saved_path, &saved)?;
    }
    write(Path::new(IP6_FORWARD), "1")
}

/// Puts IP forwarding (IPv4, and IPv6 if it was changed) back as it was
/// before the first network.
pub(crate) fn restore_forwarding(dir: &Path) -> Result<(), Error> {
    let saved_path = dir.join("host.json");
    let saved: Saved = state_file::read_json(&saved_path)?.unwrap_or_default();
    if let Some(value) = saved.ip_forward {
        write(Path::new(IP_FORWARD), &value)?;
    }
    if let Some(value) = saved.ip6_forward {
        write(Path::new(IP6_FORWARD), &value)?;
    }
    match std::fs::remove_file(&saved_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            path: saved_path,
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

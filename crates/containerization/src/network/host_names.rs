//! The names a state root gives what it makes on the host.
//!
//! Bridges, taps, veths and nftables tables live in the host's one
//! namespace, while state roots (`CZ_ROOT`) are many: tests, benchmarks, a
//! second user and the system root run side by side. So each root names its
//! host objects after itself, and two roots never touch each other's. Every
//! root's guest devices start with `czt<tag>` (taps) or `czv<tag>` (veths),
//! the tag being 4 hex digits of a hash of the root's `network/` folder, so a
//! root's bridge-family guard filters its own guests' frames and no other
//! root's (the host kernel may lack `meta ibrname`). The system root
//! (`/var/lib/containerization`) keeps the bridge and table names earlier
//! versions gave (bridge `cz-<network>`, table `containerization`), so its
//! networks survive an upgrade; any other root's carry the hash of its path.

use std::net::Ipv4Addr;
use std::path::Path;

use containerization_netlink::MacAddress;
use sha2::{Digest, Sha256};

use crate::state_root::SYSTEM_ROOT;

/// The prefix of every tap name.
const TAP_PREFIX: &str = "czt";
/// The prefix of every veth host end.
const VETH_PREFIX: &str = "czv";
/// The prefix of a tagged root's bridges.
const BRIDGE_PREFIX: &str = "czb";
/// The system root's table (and every root's table name starts with it).
const TABLE: &str = "containerization";

/// The host names of one state root's networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostNames {
    /// `None` for the system root; else 8 hex digits of a hash of the root's path.
    tag: Option<String>,
    /// 4 hex digits of that hash, in every guest device's name.
    device_tag: String,
}

/// The system root's bridge for network `name`: `cz-NAME` up to 12 bytes
/// of name, a hash past them (interface names hold 15 bytes).
pub(crate) fn system_bridge(name: &str) -> String {
    if name.len() <= 12 {
        format!("cz-{name}")
    } else {
        format!("{BRIDGE_PREFIX}{}", hash12(&format!("bridge/{name}")))
    }
}

impl HostNames {
    /// The names of the root whose `network/` folder is `network_dir`.
    pub(crate) fn for_network_dir(network_dir: &Path) -> Self {
        // The same folder reached by two spellings is one root, whether it
        // exists yet or not.
        let dir = canonical(network_dir);
        let hash = Sha256::digest(dir.as_os_str().as_encoded_bytes());
        let system = dir == Path::new(SYSTEM_ROOT).join("network");
        Self {
            tag: (!system).then(|| hex(&hash[..4])),
            device_tag: hex(&hash[..2]),
        }
    }

    /// The bridge of network `name` (at most 15 bytes, as interface names
    /// are): `cz-NAME` for the system root's names of up to 12 bytes, a
    /// hash otherwise.
    pub(crate) fn bridge(&self, name: &str) -> String {
        match &self.tag {
            None => system_bridge(name),
            Some(tag) => format!("{BRIDGE_PREFIX}{}", hash12(&format!("bridge/{tag}/{name}"))),
        }
    }

    /// The fixed, locally administered MAC of network `name`'s bridge.
    pub(crate) fn bridge_mac(&self, name: &str) -> MacAddress {
        let input = match &self.tag {
            None => format!("bridge/{name}"),
            Some(tag) => format!("bridge/{tag}/{name}"),
        };
        let hash = Sha256::digest(input.as_bytes());
        let mut seed = [0u8; 6];
        seed.copy_from_slice(&hash[..6]);
        MacAddress::local_from_seed(seed)
    }

    /// The pooled tap serving `address` on network `network`.
    pub(crate) fn tap(&self, network: &str, address: Ipv4Addr) -> String {
        format!(
            "{}{}",
            self.tap_prefix(),
            &hash12(&format!("{network}/{address}"))[..8]
        )
    }

    /// The start of every tap name of this root.
    pub(crate) fn tap_prefix(&self) -> String {
        format!("{TAP_PREFIX}{}", self.device_tag)
    }

    /// The veth pair of the container whose id hashes to `hash` (12 hex
    /// digits): the host end on the bridge, the end moved into its namespace.
    pub(crate) fn veth_pair(&self, hash: &str) -> (String, String) {
        let short = &hash[..8.min(hash.len())];
        (
            format!("{VETH_PREFIX}{}{short}", self.device_tag),
            format!("czp{}{short}", self.device_tag),
        )
    }

    /// The start of every veth host end of this root.
    pub(crate) fn veth_prefix(&self) -> String {
        format!("{VETH_PREFIX}{}", self.device_tag)
    }

    /// The name of this root's `inet` and `bridge` nftables tables.
    pub(crate) fn table(&self) -> String {
        match &self.tag {
            None => TABLE.to_owned(),
            Some(tag) => format!("{TABLE}_{tag}"),
        }
    }
}

/// 12 hex digits of a hash of `input`.
fn hash12(input: &str) -> String {
    hex(&Sha256::digest(input.as_bytes())[..6])
}

/// `path` with its longest existing ancestor resolved (symlinks, `..`), the
/// rest appended as given: the same answer before and after the folder is
/// made.
fn canonical(path: &Path) -> std::path::PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut current = absolute.as_path();
    loop {
        if let Ok(resolved) = std::fs::canonicalize(current) {
            return rest.iter().rev().fold(resolved, |p, name| p.join(name));
        }
        match (current.parent(), current.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                current = parent;
            }
            _ => return absolute,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_root_keeps_its_names() {
        let names = HostNames::for_network_dir(&Path::new(SYSTEM_ROOT).join("network"));
        assert_eq!(names.bridge("web"), "cz-web");
        // A name past 12 bytes (Compose's `project_default`) is hashed.
        let long = names.bridge("myproject_default");
        assert!(
            long.len() <= 15 && long != names.bridge("myproject_other"),
            "{long}"
        );
        assert_eq!(names.table(), "containerization");
    }

    #[test]
    fn a_root_has_the_same_names_before_and_after_its_folder_is_made() {
        let parent = tempfile::tempdir().unwrap();
        let link = parent.path().join("link");
        std::os::unix::fs::symlink(parent.path(), &link).unwrap();
        let through_link = link.join("root/network");
        let before = HostNames::for_network_dir(&through_link);
        std::fs::create_dir_all(parent.path().join("root/network")).unwrap();
        assert_eq!(HostNames::for_network_dir(&through_link), before);
        assert_eq!(
            HostNames::for_network_dir(&parent.path().join("root/network")),
            before
        );
    }

    #[test]
    fn two_roots_never_share_a_name() {
        let a = HostNames::for_network_dir(Path::new("/tmp/root-a/network"));
        let b = HostNames::for_network_dir(Path::new("/tmp/root-b/network"));
        let address = Ipv4Addr::new(10, 0, 0, 2);
        assert_ne!(a.bridge("default"), b.bridge("default"));
        assert_ne!(a.tap("default", address), b.tap("default", address));
        assert_ne!(a.table(), b.table());
        assert!(!a.tap("default", address).starts_with(&b.tap_prefix()));
        assert!(!a.veth_pair("0123456789ab").0.starts_with(&b.veth_prefix()));
        assert_ne!(a.bridge_mac("default"), b.bridge_mac("default"));
        let (host, guest) = a.veth_pair("0123456789ab");
        for name in [a.bridge("default"), a.tap("default", address), host, guest] {
            assert_eq!(name.len(), 15, "{name}");
        }
        assert_ne!(
            a.tap("default", address),
            a.tap("default", Ipv4Addr::new(10, 0, 0, 3))
        );
        assert_ne!(a.tap("web", address), a.tap("db", address));
    }
}

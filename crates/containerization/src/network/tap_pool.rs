//! A pool of persistent tap devices per network.
//!
//! Deleting a network device makes the kernel wait for an RCU grace period
//! (`unregister_netdevice`), which costs more than everything else a
//! container's network setup and teardown do together. So a tap is not
//! deleted when its container goes: it stays on the bridge, named after the
//! address it serves (`czt` and 12 hex digits of a hash of the network and
//! the address), and the next container leasing that address takes it. The
//! pool fills lazily, one tap per address ever leased at once, and the taps
//! go when the network is removed.
//!
//! The tap keeps a MAC of its own: the container's MAC belongs to the guest's
//! NIC on the far side of the tap. Were the tap given it too, the bridge would
//! take frames for the guest as its own (a local forwarding entry) and never
//! pass them from one container to another.

use std::net::Ipv4Addr;

use containerization_netlink::{Link, NetlinkError};
use sha2::{Digest, Sha256};

use super::NetworkManager;
use crate::Error;

/// The prefix of every tap name.
pub(super) const TAP_PREFIX: &str = "czt";

/// The name of the pooled tap serving `address` on `network`.
pub(super) fn tap_name(network: &str, address: Ipv4Addr) -> String {
    let hash = Sha256::digest(format!("{network}/{address}").as_bytes());
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{TAP_PREFIX}{hex}")
}

impl NetworkManager {
    /// Hands out tap `name` on `bridge`: the pooled one, or a new one that
    /// joins the pool.
    pub(super) async fn take_tap(&self, name: &str, bridge: &str) -> Result<(), Error> {
        let nl = &self.netlink;
        let pooled = match nl.link_by_name(name).await {
            // A tap with a carrier is still held open, by a VM that outlived
            // its container's detach: it must not get another container's
            // traffic, so it is replaced.
            Ok(tap) if tap.carrier => {
                nl.delete_link(&tap).await?;
                false
            }
            Ok(_) => true,
            Err(NetlinkError::NotFound { .. }) => false,
            Err(other) => return Err(other.into()),
        };
        if pooled {
            return Ok(());
        }
        let bridge = nl.link_by_name(bridge).await?;
        let tap = nl.create_tap(name, None).await?;
        let attached = async {
            nl.set_master(&tap, Some(&bridge)).await?;
            nl.set_up(&tap).await
        };
        if let Err(e) = attached.await {
            let _ = nl.delete_link(&tap).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Deletes the pooled taps on `bridge` (for a network being removed).
    pub(super) async fn delete_pooled_taps(&self, bridge: &Link) -> Result<(), Error> {
        for link in self.netlink.links().await? {
            if link.master == Some(bridge.index) && link.name.starts_with(TAP_PREFIX) {
                match self.netlink.delete_link(&link).await {
                    Ok(()) | Err(NetlinkError::NotFound { .. }) => {}
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_fit_and_differ_by_network_and_address() {
        let a = tap_name("web", Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(a.len(), 15);
        assert!(a.starts_with(TAP_PREFIX));
        assert_eq!(a, tap_name("web", Ipv4Addr::new(10, 0, 0, 2)));
        assert_ne!(a, tap_name("web", Ipv4Addr::new(10, 0, 0, 3)));
        assert_ne!(a, tap_name("db", Ipv4Addr::new(10, 0, 0, 2)));
    }
}

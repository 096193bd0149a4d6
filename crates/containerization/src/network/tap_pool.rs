//! A pool of persistent tap devices per network.
//!
//! Deleting a network device makes the kernel wait for an RCU grace period
//! (`unregister_netdevice`), which costs more than everything else a
//! container's network setup and teardown do together. So a tap is not
//! deleted when its container goes: it stays on the bridge, named after the
//! address it serves (`czt`, the state root's tag and 8 hex digits of a hash
//! of the network and the address), and the next container leasing that address takes it. The
//! pool fills lazily, one tap per address ever leased at once, and the taps
//! go when the network is removed.
//!
//! The tap keeps a MAC of its own: the container's MAC belongs to the guest's
//! NIC on the far side of the tap. Were the tap given it too, the bridge would
//! take frames for the guest as its own (a local forwarding entry) and never
//! pass them from one container to another.

use containerization_netlink::{Link, NetlinkError};

use super::NetworkManager;
use crate::Error;

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
            if link.master == Some(bridge.index) && link.name.starts_with(&self.names.tap_prefix())
            {
                match self.netlink.delete_link(&link).await {
                    Ok(()) | Err(NetlinkError::NotFound { .. }) => {}
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(())
    }
}

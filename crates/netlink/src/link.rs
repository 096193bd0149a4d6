//! Links: listing, looking up, changing, deleting; bridges and veth pairs.

use std::os::fd::{AsRawFd, BorrowedFd};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::{LinkBridge, LinkGetRequest, LinkUnspec, LinkVeth};

use crate::{MacAddress, Netlink, NetlinkError};

/// The longest interface name the kernel accepts (IFNAMSIZ − 1).
const MAX_NAME: usize = 15;

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// The hardware address, for Ethernet-like links.
    pub mac: Option<MacAddress>,
    /// The MTU.
    pub mtu: Option<u32>,
    /// Whether the link is administratively up.
    pub up: bool,
    /// Whether it has a carrier (`LOWER_UP`): for a tap, whether a process
    /// holds it open.
    pub carrier: bool,
    /// The index of the bridge (or other master) it is attached to.
    pub master: Option<u32>,
    /// The link kind (`bridge`, `veth`, `tun`, …) when the kernel says.
    pub kind: Option<String>,
}

impl Link {
    fn from_message(message: &LinkMessage) -> Self {
        let mut link = Link {
            index: message.header.index,
            name: String::new(),
            mac: None,
            mtu: None,
            up: message.header.flags.contains(LinkFlags::Up),
            carrier: message.header.flags.contains(LinkFlags::LowerUp),
            master: None,
            kind: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => link.name = name.clone(),
                LinkAttribute::Address(bytes) => link.mac = MacAddress::from_slice(bytes),
                LinkAttribute::Mtu(mtu) => link.mtu = Some(*mtu),
                LinkAttribute::Controller(index) => link.master = Some(*index),
                LinkAttribute::LinkInfo(infos) => {
                    link.kind = infos.iter().find_map(|info| match info {
                        LinkInfo::Kind(kind) => Some(kind.to_string()),
                        _ => None,
                    });
                }
                _ => {}
            }
        }
        link
    }

    fn describe(&self) -> String {
        format!("interface {}", self.name)
    }
}

/// Checks an interface name the way the kernel will, with a clearer message.
pub(crate) fn check_name(name: &str) -> Result<(), NetlinkError> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(NetlinkError::Invalid(format!(
            "invalid interface name {name:?}: 1 to {MAX_NAME} bytes, without '/', ':' or spaces"
        )));
    }
    Ok(())
}

/// The one link a filtered request finds; `what` names it in errors.
async fn one_link(request: LinkGetRequest, what: String) -> Result<Link, NetlinkError> {
    match request.execute().try_next().await {
        Ok(Some(message)) => Ok(Link::from_message(&message)),
        Ok(None) => Err(NetlinkError::NotFound { what }),
        Err(e) => Err(NetlinkError::from_rtnetlink(what, e)),
    }
}

impl Netlink {
    /// Every link in this network namespace.
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let messages: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink("listing links", e))?;
        Ok(messages.iter().map(Link::from_message).collect())
    }

    /// The link called `name`.
    pub async fn link_by_name(&self, name: &str) -> Result<Link, NetlinkError> {
        check_name(name)?;
        let request = self.handle.link().get().match_name(name);
        one_link(request, format!("interface {name}")).await
    }

    /// The link with interface index `index`.
    pub async fn link_by_index(&self, index: u32) -> Result<Link, NetlinkError> {
        let request = self.handle.link().get().match_index(index);
        one_link(request, format!("interface with index {index}")).await
    }

    /// The link whose hardware address is `mac`.
    pub async fn link_by_mac(&self, mac: MacAddress) -> Result<Link, NetlinkError> {
        self.links()
            .await?
            .into_iter()
            .find(|link| link.mac == Some(mac))
            .ok_or_else(|| NetlinkError::NotFound {
                what: format!("interface with MAC address {mac}"),
            })
    }

    async fn set(
        &self,
        link: &Link,
        change: &str,
        message: LinkMessage,
    ) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink(format!("{} ({change})", link.describe()), e))
    }

    /// Brings `link` up.
    pub async fn set_up(&self, link: &Link) -> Result<(), NetlinkError> {
        let message = LinkUnspec::new_with_index(link.index).up().build();
        self.set(link, "set up", message).await
    }

    /// Takes `link` down.
    pub async fn set_down(&self, link: &Link) -> Result<(), NetlinkError> {
        let message = LinkUnspec::new_with_index(link.index).down().build();
        self.set(link, "set down", message).await
    }

    /// Sets the MTU of `link`.
    pub async fn set_mtu(&self, link: &Link, mtu: u32) -> Result<(), NetlinkError> {
        let message = LinkUnspec::new_with_index(link.index).mtu(mtu).build();
        self.set(link, &format!("set MTU {mtu}"), message).await
    }

    /// Sets the hardware address of `link`.
    pub async fn set_mac(&self, link: &Link, mac: MacAddress) -> Result<(), NetlinkError> {
        let message = LinkUnspec::new_with_index(link.index)
            .address(mac.octets().to_vec())
            .build();
        self.set(link, &format!("set MAC {mac}"), message).await
    }

    /// Renames `link` (it must be down).
    pub async fn set_name(&self, link: &Link, name: &str) -> Result<(), NetlinkError> {
        check_name(name)?;
        let message = LinkUnspec::new_with_index(link.index).name(name).build();
        self.set(link, &format!("rename to {name}"), message).await
    }

    /// Attaches `link` to the bridge `master`, or detaches it with `None`.
    pub async fn set_master(&self, link: &Link, master: Option<&Link>) -> Result<(), NetlinkError> {
        let builder = LinkUnspec::new_with_index(link.index);
        let (message, change) = match master {
            Some(master) => (
                builder.controller(master.index).build(),
                format!("attach to {}", master.name),
            ),
            None => (builder.nocontroller().build(), "detach".to_owned()),
        };
        self.set(link, &change, message).await
    }

    /// Moves `link` into the network namespace open at `namespace` (a file
    /// descriptor of `/proc/<pid>/ns/net` or `/run/netns/<name>`).
    pub async fn set_netns(
        &self,
        link: &Link,
        namespace: BorrowedFd<'_>,
    ) -> Result<(), NetlinkError> {
        let message = LinkUnspec::new_with_index(link.index)
            .setns_by_fd(namespace.as_raw_fd())
            .build();
        self.set(link, "move to another network namespace", message)
            .await
    }

    /// Deletes `link` (for a veth pair, both ends).
    pub async fn delete_link(&self, link: &Link) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .del(link.index)
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink(format!("{} (delete)", link.describe()), e))
    }

    /// Creates a bridge called `name` (down) and returns it.
    pub async fn create_bridge(&self, name: &str) -> Result<Link, NetlinkError> {
        check_name(name)?;
        self.handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink(format!("bridge {name}"), e))?;
        self.link_by_name(name).await
    }

    /// Creates a veth pair `name` ↔ `peer` (both down) and returns both ends.
    pub async fn create_veth(&self, name: &str, peer: &str) -> Result<(Link, Link), NetlinkError> {
        check_name(name)?;
        check_name(peer)?;
        self.handle
            .link()
            .add(LinkVeth::new(name, peer).build())
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink(format!("veth pair {name}/{peer}"), e))?;
        Ok((
            self.link_by_name(name).await?,
            self.link_by_name(peer).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked_before_the_kernel_sees_them() {
        for good in ["eth0", "cz-default", "a", "123456789012345"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1234567890123456", "a/b", "a b", "eth0:1", "..", "."] {
            let err = check_name(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}

//! IPv4 and IPv6 addresses on links.

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};

use crate::{Link, Netlink, NetlinkError};

/// An address assigned to a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The index of the link holding it.
    pub link_index: u32,
    /// The address and its prefix length.
    pub address: IpNet,
    message: AddressMessage,
}

impl Address {
    fn from_message(message: AddressMessage) -> Option<Self> {
        // IFA_LOCAL is the interface's own address on point-to-point links;
        // IFA_ADDRESS elsewhere.
        let ip = message
            .attributes
            .iter()
            .find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            })
            .or_else(|| {
                message.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            })?;
        let address = IpNet::new(ip, message.header.prefix_len).ok()?;
        Some(Self {
            link_index: message.header.index,
            address,
            message,
        })
    }
}

impl Netlink {
    /// Every address in this namespace, or only those of `link`.
    pub async fn addresses(&self, link: Option<&Link>) -> Result<Vec<Address>, NetlinkError> {
        let mut request = self.handle.address().get();
        if let Some(link) = link {
            request = request.set_link_index_filter(link.index);
        }
        let messages: Vec<AddressMessage> = request
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink("listing addresses", e))?;
        Ok(messages
            .into_iter()
            .filter_map(Address::from_message)
            .filter(|a| link.is_none_or(|l| a.link_index == l.index))
            .collect())
    }

    /// Adds `address` (with its prefix length) to `link`.
    pub async fn add_address(&self, link: &Link, address: IpNet) -> Result<(), NetlinkError> {
        self.handle
            .address()
            .add(link.index, address.addr(), address.prefix_len())
            .execute()
            .await
            .map_err(|e| {
                NetlinkError::from_rtnetlink(format!("address {address} on {}", link.name), e)
            })
    }

    /// Removes `address` from `link`.
    pub async fn delete_address(&self, link: &Link, address: IpNet) -> Result<(), NetlinkError> {
        let what = format!("address {address} on {}", link.name);
        let found = self
            .addresses(Some(link))
            .await?
            .into_iter()
            .find(|a| a.address == address)
            .ok_or_else(|| NetlinkError::NotFound { what: what.clone() })?;
        self.handle
            .address()
            .del(found.message)
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink(what, e))
    }
}

//! The guest's one call: configure its network interface.
//!
//! `vminitd` calls [`configure_interface`] once per interface the host gives
//! the VM: it finds the interface by name or MAC, sets the MTU, adds the
//! address, brings it and `lo` up, and adds the default route, preceded by a
//! link-scope route to the gateway when the gateway lies outside the subnet
//! (otherwise the kernel would refuse the default route as unreachable).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::{Link, MacAddress, Netlink, NetlinkError};

/// How to find the interface to configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSelector {
    /// By interface name, such as `eth0`.
    Name(String),
    /// By hardware address, which the host chose when it made the VM's NIC.
    Mac(MacAddress),
}

/// What an interface should look like once configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// The interface.
    pub interface: InterfaceSelector,
    /// Its address and prefix length.
    pub address: IpNet,
    /// Its MTU; left as the kernel set it when `None`.
    pub mtu: Option<u32>,
    /// The default gateway, if the interface carries the default route.
    pub gateway: Option<IpAddr>,
}

/// Configures an interface as `config` says and brings `lo` up; returns the
/// interface. Running it twice with the same configuration changes nothing.
pub async fn configure_interface(
    netlink: &Netlink,
    config: &InterfaceConfig,
) -> Result<Link, NetlinkError> {
    if let Some(gateway) = config.gateway
        && gateway.is_ipv4() != config.address.addr().is_ipv4()
    {
        return Err(NetlinkError::Invalid(format!(
            "gateway {gateway} and address {} are of different IP versions",
            config.address
        )));
    }
    let lo = netlink.link_by_name("lo").await?;
    netlink.set_up(&lo).await?;

    let link = match &config.interface {
        InterfaceSelector::Name(name) => netlink.link_by_name(name).await?,
        InterfaceSelector::Mac(mac) => netlink.link_by_mac(*mac).await?,
    };
    if let Some(mtu) = config.mtu {
        netlink.set_mtu(&link, mtu).await?;
    }
    ignore_existing(netlink.add_address(&link, config.address).await)?;
    netlink.set_up(&link).await?;

    if let Some(gateway) = config.gateway {
        if !config.address.contains(&gateway) {
            let host = IpNet::from(gateway);
            ignore_existing(netlink.add_link_route(&link, host).await)?;
        }
        ignore_existing(netlink.add_default_route(&link, gateway).await)?;
    }
    netlink.link_by_index(link.index).await
}

/// Treats "already exists" as success, for idempotent configuration.
fn ignore_existing(result: Result<(), NetlinkError>) -> Result<(), NetlinkError> {
    match result {
        Err(NetlinkError::AlreadyExists { .. }) => Ok(()),
        other => other,
    }
}

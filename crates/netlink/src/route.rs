//! IPv4 and IPv6 routes in the main table.

use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteVia,
};

use crate::{Link, Netlink, NetlinkError};

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination (`0.0.0.0/0` or `::/0` for a default route).
    pub destination: IpNet,
    /// The next hop, if the route goes through a gateway.
    pub gateway: Option<IpAddr>,
    /// The output link's index.
    pub link_index: Option<u32>,
    /// Whether the route is link-scope (the destination is on the link).
    pub link_scope: bool,
    message: RouteMessage,
}

fn route_ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

impl Route {
    fn from_message(message: RouteMessage, v6: bool) -> Option<Self> {
        let mut destination = None;
        let mut gateway = None;
        let mut link_index = None;
        let mut table = u32::from(message.header.table);
        for attribute in &message.attributes {
            match attribute {
                RouteAttribute::Destination(a) => destination = route_ip(a),
                RouteAttribute::Gateway(a) => gateway = route_ip(a),
                RouteAttribute::Via(RouteVia::Inet6(ip)) => gateway = Some(IpAddr::V6(*ip)),
                RouteAttribute::Oif(index) => link_index = Some(*index),
                RouteAttribute::Table(t) => table = *t,
                _ => {}
            }
        }
        if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
            return None;
        }
        let unspecified = if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        };
        let destination = IpNet::new(
            destination.unwrap_or(unspecified),
            message.header.destination_prefix_length,
        )
        .ok()?;
        Some(Self {
            destination,
            gateway,
            link_index,
            link_scope: message.header.scope == RouteScope::Link,
            message,
        })
    }

    /// Whether this is a default route.
    pub fn is_default(&self) -> bool {
        self.destination.prefix_len() == 0
    }
}

impl Netlink {
    /// The IPv4 and IPv6 routes of the main table.
    pub async fn routes(&self) -> Result<Vec<Route>, NetlinkError> {
        let mut routes = Vec::new();
        for v6 in [false, true] {
            let query = if v6 {
                RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
            } else {
                RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
            };
            let messages: Vec<RouteMessage> = self
                .handle
                .route()
                .get(query)
                .execute()
                .try_collect()
                .await
                .map_err(|e| NetlinkError::from_rtnetlink("listing routes", e))?;
            routes.extend(
                messages
                    .into_iter()
                    .filter_map(|m| Route::from_message(m, v6)),
            );
        }
        Ok(routes)
    }

    /// Adds a default route via `gateway` out of `link`.
    pub async fn add_default_route(
        &self,
        link: &Link,
        gateway: IpAddr,
    ) -> Result<(), NetlinkError> {
        let message = match gateway {
            IpAddr::V4(ip) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .gateway(ip)
                .output_interface(link.index)
                .build(),
            IpAddr::V6(ip) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .gateway(ip)
                .output_interface(link.index)
                .build(),
        };
        self.add_route(
            message,
            format!("default route via {gateway} on {}", link.name),
        )
        .await
    }

    /// Adds a link-scope route to `destination` on `link` (such as a /32 to a
    /// gateway outside the link's subnet).
    pub async fn add_link_route(
        &self,
        link: &Link,
        destination: IpNet,
    ) -> Result<(), NetlinkError> {
        let message = match destination {
            IpNet::V4(net) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(net.network(), net.prefix_len())
                .output_interface(link.index)
                .scope(RouteScope::Link)
                .build(),
            IpNet::V6(net) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(net.network(), net.prefix_len())
                .output_interface(link.index)
                .scope(RouteScope::Link)
                .build(),
        };
        self.add_route(message, format!("route to {destination} on {}", link.name))
            .await
    }

    /// Adds a route to `destination` via `gateway` out of `link` (a default
    /// route when `destination` has prefix length 0).
    pub async fn add_gateway_route(
        &self,
        link: &Link,
        destination: IpNet,
        gateway: IpAddr,
    ) -> Result<(), NetlinkError> {
        let what = format!("route to {destination} via {gateway} on {}", link.name);
        let message = match (destination, gateway) {
            (IpNet::V4(net), IpAddr::V4(ip)) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(net.network(), net.prefix_len())
                .gateway(ip)
                .output_interface(link.index)
                .build(),
            (IpNet::V6(net), IpAddr::V6(ip)) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(net.network(), net.prefix_len())
                .gateway(ip)
                .output_interface(link.index)
                .build(),
            _ => {
                return Err(NetlinkError::Invalid(format!(
                    "{what}: the destination and the gateway are of different IP versions"
                )));
            }
        };
        self.add_route(message, what).await
    }

    async fn add_route(&self, mut message: RouteMessage, what: String) -> Result<(), NetlinkError> {
        // What `ip route add` records, so routes look the same whoever adds them.
        message.header.protocol = RouteProtocol::Boot;
        self.handle
            .route()
            .add(message)
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink(what, e))
    }

    /// Deletes `route` (as listed by [`Netlink::routes`]).
    pub async fn delete_route(&self, route: &Route) -> Result<(), NetlinkError> {
        self.handle
            .route()
            .del(route.message.clone())
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rtnetlink(format!("route to {}", route.destination), e))
    }
}

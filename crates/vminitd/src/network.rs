//! The guest network calls: link set, address add, route add and the one-call
//! interface configuration, through the `containerization-netlink` crate.
//!
//! One netlink connection serves every call; it is opened on first use, in
//! vminitd's network namespace (`lo` is brought up at boot without it, see
//! [`crate::loopback`]). Requests are parsed here, once, into the netlink
//! crate's types; its errors become gRPC codes whose messages name
//! the interface (NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, ...).

use std::net::IpAddr;

use containerization_agent::proto::v1::{
    AddressAddRequest, ConfigureInterfaceRequest, InterfaceState, LinkSetRequest, RouteAddRequest,
    interface_selector::By,
};
use containerization_netlink::{
    InterfaceConfig, InterfaceSelector, Link, MacAddress, Netlink, NetlinkError,
};
use ipnet::IpNet;
use tokio::sync::OnceCell;
use tonic::Status;

/// The guest's network: one lazily opened netlink connection, used by one
/// call at a time: the kernel refuses a dump on a socket while another is
/// in progress (EBUSY), and most calls list the links to find theirs, so
/// a host configuring several cards at once would otherwise see its calls
/// fail.
#[derive(Debug, Default)]
pub(crate) struct Network {
    netlink: OnceCell<Netlink>,
    turn: tokio::sync::Mutex<()>,
}

impl Network {
    async fn netlink(&self) -> Result<&Netlink, Status> {
        self.netlink
            .get_or_try_init(|| async { Netlink::connect() })
            .await
            .map_err(|e| Status::unavailable(format!("guest network: {e}")))
    }

    /// Brings a link up or down, sets its MTU, renames it.
    pub(crate) async fn link_set(&self, request: LinkSetRequest) -> Result<InterfaceState, Status> {
        let _turn = self.turn.lock().await;
        let selector = selector(request.interface.as_ref())?;
        let netlink = self.netlink().await?;
        let mut link = find(netlink, &selector).await?;
        if let Some(mtu) = request.mtu {
            netlink.set_mtu(&link, mtu).await.map_err(status)?;
        }
        if !request.mac.is_empty() {
            let mac: MacAddress = request.mac.parse().map_err(|_| {
                Status::invalid_argument(format!("{:?} is not a MAC address", request.mac))
            })?;
            netlink.set_mac(&link, mac).await.map_err(status)?;
        }
        if !request.name.is_empty() && request.name != link.name {
            netlink
                .set_name(&link, &request.name)
                .await
                .map_err(status)?;
            link = netlink.link_by_index(link.index).await.map_err(status)?;
        }
        match request.up {
            Some(true) => netlink.set_up(&link).await.map_err(status)?,
            Some(false) => netlink.set_down(&link).await.map_err(status)?,
            None => {}
        }
        let link = netlink.link_by_index(link.index).await.map_err(status)?;
        Ok(state(&link))
    }

    /// Adds an IPv4 or IPv6 address to a link.
    pub(crate) async fn address_add(&self, request: AddressAddRequest) -> Result<(), Status> {
        let _turn = self.turn.lock().await;
        let selector = selector(request.interface.as_ref())?;
        let address = cidr(&request.address, &selector)?;
        let netlink = self.netlink().await?;
        let link = find(netlink, &selector).await?;
        netlink.add_address(&link, address).await.map_err(status)
    }

    /// Adds a route out of a link: via a gateway, or link-scope without one.
    pub(crate) async fn route_add(&self, request: RouteAddRequest) -> Result<(), Status> {
        let _turn = self.turn.lock().await;
        let selector = selector(request.interface.as_ref())?;
        let gateway = optional_ip(&request.gateway, "gateway", &selector)?;
        let destination = match request.destination.as_str() {
            "" | "default" => {
                let Some(gateway) = gateway else {
                    return Err(Status::invalid_argument(format!(
                        "route on {}: a default route needs a gateway",
                        describe(&selector)
                    )));
                };
                IpNet::new(unspecified_like(gateway), 0)
                    .map_err(|e| Status::internal(e.to_string()))?
            }
            text => cidr(text, &selector)?,
        };
        let netlink = self.netlink().await?;
        let link = find(netlink, &selector).await?;
        match gateway {
            Some(gateway) if destination.prefix_len() == 0 => {
                netlink.add_default_route(&link, gateway).await
            }
            Some(gateway) => netlink.add_gateway_route(&link, destination, gateway).await,
            None => netlink.add_link_route(&link, destination).await,
        }
        .map_err(status)
    }

    /// Configures an interface in one call, as the netlink crate's guest
    /// helper does.
    pub(crate) async fn configure_interface(
        &self,
        request: ConfigureInterfaceRequest,
    ) -> Result<InterfaceState, Status> {
        let _turn = self.turn.lock().await;
        let interface = selector(request.interface.as_ref())?;
        let config = InterfaceConfig {
            address: cidr(&request.address, &interface)?,
            mtu: (request.mtu != 0).then_some(request.mtu),
            gateway: optional_ip(&request.gateway, "gateway", &interface)?,
            interface,
        };
        let netlink = self.netlink().await?;
        let link = containerization_netlink::configure_interface(netlink, &config)
            .await
            .map_err(status)?;
        Ok(state(&link))
    }
}

/// The interface a request names.
fn selector(
    interface: Option<&containerization_agent::proto::v1::InterfaceSelector>,
) -> Result<InterfaceSelector, Status> {
    match interface.and_then(|i| i.by.as_ref()) {
        Some(By::Name(name)) if !name.is_empty() => Ok(InterfaceSelector::Name(name.clone())),
        Some(By::Mac(mac)) => mac
            .parse::<MacAddress>()
            .map(InterfaceSelector::Mac)
            .map_err(|e| Status::invalid_argument(format!("interface: {e}"))),
        _ => Err(Status::invalid_argument(
            "interface is missing: give its name or its MAC address",
        )),
    }
}

fn describe(selector: &InterfaceSelector) -> String {
    match selector {
        InterfaceSelector::Name(name) => format!("interface {name}"),
        InterfaceSelector::Mac(mac) => format!("interface with MAC address {mac}"),
    }
}

async fn find(netlink: &Netlink, selector: &InterfaceSelector) -> Result<Link, Status> {
    match selector {
        InterfaceSelector::Name(name) => netlink.link_by_name(name).await,
        InterfaceSelector::Mac(mac) => netlink.link_by_mac(*mac).await,
    }
    .map_err(status)
}

/// `10.0.0.2/24` or `fd00::2/64`; the address keeps its host bits.
fn cidr(text: &str, selector: &InterfaceSelector) -> Result<IpNet, Status> {
    text.parse::<IpNet>().map_err(|_| {
        Status::invalid_argument(format!(
            "{}: {text:?} is not an address with a prefix length (10.0.0.2/24, fd00::2/64)",
            describe(selector)
        ))
    })
}

fn optional_ip(
    text: &str,
    field: &str,
    selector: &InterfaceSelector,
) -> Result<Option<IpAddr>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        Status::invalid_argument(format!(
            "{}: {field} {text:?} is not an IP address",
            describe(selector)
        ))
    })
}

fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

fn state(link: &Link) -> InterfaceState {
    InterfaceState {
        index: link.index,
        name: link.name.clone(),
        mac: link.mac.map(|m| m.to_string()).unwrap_or_default(),
        mtu: link.mtu.unwrap_or_default(),
        up: link.up,
    }
}

/// The gRPC status for a netlink error; its message names the interface.
fn status(error: NetlinkError) -> Status {
    const EINVAL: i32 = 22;
    const ERANGE: i32 = 34;
    let message = error.to_string();
    match &error {
        NetlinkError::AlreadyExists { .. } => Status::already_exists(message),
        NetlinkError::NotFound { .. } => Status::not_found(message),
        NetlinkError::PermissionDenied { .. } => Status::permission_denied(message),
        NetlinkError::Invalid(_) => Status::invalid_argument(message),
        NetlinkError::Kernel { source, .. } => match source.raw_os_error().map(i32::abs) {
            Some(EINVAL | ERANGE) => Status::invalid_argument(message),
            _ => Status::failed_precondition(message),
        },
        _ => Status::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_addresses_are_refused_naming_the_interface() {
        let eth0 = InterfaceSelector::Name("eth0".into());
        let err = cidr("10.0.0.2", &eth0).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("interface eth0"), "{err}");
        assert!(cidr("fd00::2/64", &eth0).is_ok());
        let err = optional_ip("10.0.0.300", "gateway", &eth0).unwrap_err();
        assert!(err.message().contains("gateway \"10.0.0.300\""), "{err}");
    }

    #[test]
    fn an_interface_is_named_or_found_by_mac() {
        use containerization_agent::proto::v1::InterfaceSelector as Wire;
        assert!(selector(None).is_err());
        let by_mac = Wire {
            by: Some(By::Mac("02:00:00:00:00:01".into())),
        };
        assert!(matches!(
            selector(Some(&by_mac)),
            Ok(InterfaceSelector::Mac(_))
        ));
        let bad = Wire {
            by: Some(By::Mac("02:00".into())),
        };
        assert!(selector(Some(&bad)).is_err());
    }
}

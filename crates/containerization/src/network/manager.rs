//! Creating, listing and removing named networks.
//!
//! A network is a bridge holding the gateway address (`cz-<name>` in the
//! system root, a name hashed from the root's path elsewhere: see
//! [`super::host_names`]), and a file
//! `network/networks/<name>.json`. Every change holds the lock
//! `network/networks.lock`, so two `cctl` processes cannot create the same
//! network or pick the same subnet. A subnet must not overlap any route the
//! host has nor any interface's address (checked through netlink) nor another
//! network's; without one, the first free /24 of the default address pools
//! is taken ([`super::address_pool`]). A network may also have an IPv6
//! subnet, checked the same way against IPv6 routes and networks.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use containerization_netlink::{Netlink, NetlinkError, NftablesSocket};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::address_pool::{DEFAULT_ADDRESS_POOLS, overlaps, overlaps6, pick_subnet};
use super::config::check_name;
use super::host_names::HostNames;
use super::{Ipam, NetworkConfig, sysctl};
use crate::{Error, state_file};

/// The host's named networks.
#[derive(Debug, Clone)]
pub struct NetworkManager {
    dir: PathBuf,
    pub(super) netlink: Netlink,
    /// What this state root calls its bridges, taps and tables.
    pub(super) names: HostNames,
    /// The nfnetlink socket for published-port changes, opened on first use
    /// and kept: closing it after a change waits for an RCU grace period.
    nftables: Arc<OnceLock<NftablesSocket>>,
}

impl NetworkManager {
    /// Networks whose state lives in `dir` (the state root's `network/`
    /// folder), changed through `netlink`.
    pub fn new(dir: impl Into<PathBuf>, netlink: Netlink) -> Self {
        let dir = dir.into();
        Self {
            names: HostNames::for_network_dir(&dir),
            dir,
            netlink,
            nftables: Arc::default(),
        }
    }

    /// The nfnetlink socket, opened the first time.
    pub(super) fn nftables(&self) -> Result<&NftablesSocket, Error> {
        if self.nftables.get().is_none() {
            // Another thread may win the race; its socket is as good.
            let _ = self.nftables.set(NftablesSocket::open()?);
        }
        self.nftables.get().ok_or_else(|| {
            Error::Netlink(containerization_netlink::NetlinkError::Invalid(
                "the nfnetlink socket did not open".to_owned(),
            ))
        })
    }

    /// The lock every change to networks and attachments holds.
    pub(super) fn lock_path(&self) -> PathBuf {
        self.dir.join("networks.lock")
    }

    /// The leases of every network.
    pub(super) fn all_leases(&self) -> Result<Vec<super::Lease>, Error> {
        let mut leases = Vec::new();
        for network in self.list()? {
            leases.extend(self.ipam(&network)?.leases()?);
        }
        Ok(leases)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join("networks").join(format!("{name}.json"))
    }

    /// Sets network `name`'s labels (Docker's `Labels`, kept with it).
    pub fn set_labels(
        &self,
        name: &str,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<NetworkConfig, Error> {
        let _lock = state_file::lock(&self.lock_path())?;
        let mut config = self.get(name)?;
        config.labels = labels;
        state_file::write_json(&self.file(name), &config)?;
        Ok(config)
    }

    /// Creates network `name` on `subnet` (or a free /24) with `gateway` (or
    /// the subnet's first address): the bridge, its address, up.
    pub async fn create(
        &self,
        name: &str,
        subnet: Option<Ipv4Net>,
        gateway: Option<Ipv4Addr>,
    ) -> Result<NetworkConfig, Error> {
        self.create_with_ipv6(name, subnet, gateway, None).await
    }

    /// Like [`NetworkManager::create`], and with `ipv6` (an IPv6 subnet and
    /// its gateway, by default the subnet's `::1`) on the bridge too:
    /// containers get an address from each subnet, and IPv6 egress is
    /// masqueraded like IPv4's.
    pub async fn create_with_ipv6(
        &self,
        name: &str,
        subnet: Option<Ipv4Net>,
        gateway: Option<Ipv4Addr>,
        ipv6: Option<(Ipv6Net, Option<Ipv6Addr>)>,
    ) -> Result<NetworkConfig, Error> {
        check_name(name)?;
        let _lock = state_file::lock(&self.lock_path())?;
        if self.file(name).exists() {
            return Err(Error::NetworkExists(name.to_owned()));
        }
        let taken = self.taken_subnets().await?;
        let config = match subnet {
            Some(subnet) => {
                let config = NetworkConfig::new(name, subnet, gateway)?;
                if let Some((_, with)) = taken.iter().find(|(net, _)| overlaps(net, &subnet)) {
                    return Err(Error::SubnetOverlap {
                        subnet,
                        with: with.clone(),
                    });
                }
                config
            }
            None => {
                NetworkConfig::new(name, pick_subnet(&DEFAULT_ADDRESS_POOLS, &taken)?, gateway)?
            }
        };
        let config = NetworkConfig {
            bridge: self.names.bridge(name),
            ..config
        };
        let config = match ipv6 {
            None => config,
            Some((subnet6, gateway6)) => {
                let config = config.with_ipv6(subnet6, gateway6)?;
                let taken6 = self.taken_subnets6().await?;
                if let Some((net, with)) = taken6.iter().find(|(net, _)| overlaps6(net, &subnet6)) {
                    return Err(Error::InvalidNetwork(format!(
                        "IPv6 subnet {subnet6} overlaps {net}, {with}"
                    )));
                }
                config
            }
        };

        let bridge = match self.netlink.create_bridge(&config.bridge).await {
            Ok(bridge) => bridge,
            Err(containerization_netlink::NetlinkError::AlreadyExists { .. }) => {
                return Err(Error::InvalidNetwork(format!(
                    "network {name:?} needs bridge {bridge}, which already exists on this host \
                     but is not in this state root ({root}): another state root (CZ_ROOT) \
                     made it, or it was made by hand; remove it there (`cctl network rm \
                     {name}`, or `ip link del {bridge}`) or use another network name",
                    bridge = config.bridge,
                    root = self.dir.display(),
                )));
            }
            Err(error) => return Err(error.into()),
        };
        let address = IpNet::V4(
            Ipv4Net::new(config.gateway, config.subnet.prefix_len())
                .map_err(|e| Error::InvalidNetwork(e.to_string()))?,
        );
        let configured = async {
            // A bridge without an address of its own takes the lowest MAC of
            // its ports, so the gateway's MAC would change under the guests
            // as taps come and go: it gets a fixed one.
            self.netlink
                .set_mac(&bridge, self.names.bridge_mac(&config.name))
                .await?;
            self.netlink.add_address(&bridge, address).await?;
            if let (Some(subnet6), Some(gateway6)) = (config.subnet6, config.gateway6) {
                let address6 = Ipv6Net::new(gateway6, subnet6.prefix_len())
                    .map_err(|e| Error::InvalidNetwork(e.to_string()))?;
                self.netlink
                    .add_address(&bridge, IpNet::V6(address6))
                    .await?;
                sysctl::enable_forwarding6()?;
            }
            self.netlink.set_up(&bridge).await?;
            sysctl::allow_localnet(&config.bridge)?;
            sysctl::enable_forwarding()?;
            state_file::write_json(&self.file(name), &config)?;
            self.sync_firewall()
        };
        if let Err(error) = configured.await {
            // Leave the host as it was: the bridge takes its address with it.
            let _ = self.netlink.delete_link(&bridge).await;
            let _ = std::fs::remove_file(self.file(name));
            let _ = self.sync_firewall();
            return Err(error);
        }
        Ok(config)
    }

    /// Every network, sorted by name.
    pub fn list(&self) -> Result<Vec<NetworkConfig>, Error> {
        let dir = self.dir.join("networks");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Io { path: dir, source }),
        };
        let mut networks = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| Error::Io {
                    path: dir.clone(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|e| e == "json")
                && let Some(config) = state_file::read_json::<NetworkConfig>(&path)?
            {
                networks.push(config);
            }
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// The network called `name`.
    pub fn get(&self, name: &str) -> Result<NetworkConfig, Error> {
        check_name(name)?;
        state_file::read_json(&self.file(name))?
            .ok_or_else(|| Error::NetworkNotFound(name.to_owned()))
    }

    /// The address allocator of `network`.
    pub fn ipam(&self, network: &NetworkConfig) -> Result<Ipam, Error> {
        let ipam = Ipam::new(&self.dir, &network.name, network.subnet, network.gateway)?;
        match (network.subnet6, network.gateway6) {
            (Some(subnet6), Some(gateway6)) => ipam.with_ipv6(subnet6, gateway6),
            _ => Ok(ipam),
        }
    }

    /// Removes network `name` and its bridge; refused while containers hold
    /// addresses on it.
    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        let _lock = state_file::lock(&self.lock_path())?;
        let config = self.get(name)?;
        let ipam = self.ipam(&config)?;
        let leases = ipam.leases()?;
        if !leases.is_empty() {
            let containers: Vec<String> = leases.iter().map(|l| l.container.to_string()).collect();
            return Err(Error::NetworkInUse {
                name: name.to_owned(),
                containers: containers.join(", "),
            });
        }
        match self.netlink.link_by_name(&config.bridge).await {
            Ok(bridge) => {
                self.delete_pooled_taps(&bridge).await?;
                self.netlink.delete_link(&bridge).await?
            }
            Err(NetlinkError::NotFound { .. }) => {}
            Err(other) => return Err(other.into()),
        }
        ipam.remove_files()?;
        let file = self.file(name);
        std::fs::remove_file(&file).map_err(|source| Error::Io { path: file, source })?;
        self.sync_firewall()?;
        // IP forwarding stays on: another runtime's bridge may need it.
        if self.list()?.is_empty() {
            sysctl::forget_saved_forwarding(&self.dir)?;
        }
        Ok(())
    }

    /// The IPv4 subnets in use, each with a description for messages: the
    /// other networks, the host's routes and its interfaces' addresses.
    async fn taken_subnets(&self) -> Result<Vec<(Ipv4Net, String)>, Error> {
        let names: HashMap<u32, String> = self
            .netlink
            .links()
            .await?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect();
        // Networks first, so an overlap names the network, not its bridge's route.
        let mut taken: Vec<(Ipv4Net, String)> = self
            .list()?
            .into_iter()
            .map(|n| (n.subnet, format!("network {:?}", n.name)))
            .collect();
        let routes = self.netlink.routes().await?;
        taken.extend(
            routes
                .into_iter()
                .filter(|r| !r.is_default())
                .filter_map(|r| match r.destination {
                    IpNet::V4(net) => {
                        let device = r
                            .link_index
                            .and_then(|i| names.get(&i))
                            .map_or("", String::as_str);
                        Some((net, format!("the host route to {net} on {device}")))
                    }
                    IpNet::V6(_) => None,
                }),
        );
        // An interface's address counts too: a link that is down has no route.
        let addresses = self.netlink.addresses(None).await?;
        taken.extend(addresses.into_iter().filter_map(|a| match a.address {
            IpNet::V4(address) => {
                let device = names.get(&a.link_index).map_or("", String::as_str);
                Some((
                    address.trunc(),
                    format!("the address {address} on {device}"),
                ))
            }
            IpNet::V6(_) => None,
        }));
        Ok(taken)
    }

    /// The IPv6 subnets in use: the other networks' and the host's routes
    /// (but link-local and multicast ones, which every interface has).
    async fn taken_subnets6(&self) -> Result<Vec<(Ipv6Net, String)>, Error> {
        let mut taken: Vec<(Ipv6Net, String)> = self
            .list()?
            .into_iter()
            .filter_map(|n| Some((n.subnet6?, format!("network {:?}", n.name))))
            .collect();
        let link_local: Ipv6Net = "fe80::/10"
            .parse()
            .map_err(|e: ipnet::AddrParseError| Error::InvalidNetwork(e.to_string()))?;
        let multicast: Ipv6Net = "ff00::/8"
            .parse()
            .map_err(|e: ipnet::AddrParseError| Error::InvalidNetwork(e.to_string()))?;
        for route in self.netlink.routes().await? {
            if let IpNet::V6(net) = route.destination
                && !route.is_default()
                && !overlaps6(&net, &link_local)
                && !overlaps6(&net, &multicast)
            {
                taken.push((net, "a host route".to_owned()));
            }
        }
        Ok(taken)
    }
}

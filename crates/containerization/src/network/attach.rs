//! Attaching a container to a network: its lease, its device on the bridge,
//! its published ports.
//!
//! A VM gets a persistent tap device from the network's pool
//! ([`super::tap_pool`]), with its MAC set; a container that runs in a network
//! namespace instead (and the tests' stand-in guests) gets a veth pair
//! `czv<root tag><hash>`/`czp<root tag><hash>` whose `czp` end moves into
//! the namespace ([`super::host_names`]). The hash is of the container id, so veth names and the MAC address are stable for a
//! container and differ between containers.
//!
//! Attaching writes the lease once (address, device, ports) and adds only the
//! container's own published-port elements to the nftables maps; detaching
//! undoes both.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;

use containerization_netlink::{MacAddress, NetlinkError};
use ipnet::{Ipv4Net, Ipv6Net};
use sha2::{Digest, Sha256};

use super::guard::{self, Guest};
use super::{Lease, NetworkManager, PublishedPort, nft};
use crate::{ContainerId, Error, state_file};

/// Where the container's end of the link goes.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    /// A persistent tap device on the bridge, for QEMU's virtio-net.
    Tap,
    /// A veth pair whose other end moves into this network namespace.
    Veth {
        /// The namespace (an open `/proc/<pid>/ns/net` or `/run/netns/<name>`).
        namespace: BorrowedFd<'a>,
    },
}

/// A container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The network.
    pub network: String,
    /// The container.
    pub container: ContainerId,
    /// Its address with the network's prefix length.
    pub address: Ipv4Net,
    /// Its gateway, the host's address on the bridge.
    pub gateway: Ipv4Addr,
    /// Its IPv6 address with the prefix length, on a network with IPv6.
    pub address6: Option<Ipv6Net>,
    /// Its IPv6 gateway, on a network with IPv6.
    pub gateway6: Option<Ipv6Addr>,
    /// The MAC address its interface should have.
    pub mac: MacAddress,
    /// The host-side link (the tap, or the veth end on the bridge).
    pub device: String,
    /// For a veth endpoint, the name of the end inside the namespace.
    pub guest_device: Option<String>,
    /// The ports published to it.
    pub ports: Vec<PublishedPort>,
}

/// `<prefix><12 hex digits of the id's SHA-256>`, and a MAC from the same hash.
fn names(container: &ContainerId) -> (String, MacAddress) {
    let hash = Sha256::digest(container.as_str().as_bytes());
    let mut seed = [0u8; 6];
    seed.copy_from_slice(&hash[..6]);
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    (hex, MacAddress::local_from_seed(seed))
}

/// The MAC of `container`'s card on `network`: one of its own for each
/// network, so a guest on several networks tells its cards apart.
fn mac_on(container: &ContainerId, network: &str) -> MacAddress {
    let hash = Sha256::digest(format!("{container}\n{network}").as_bytes());
    let mut seed = [0u8; 6];
    seed.copy_from_slice(&hash[..6]);
    MacAddress::local_from_seed(seed)
}

/// What a lease lets its guest send from, when it has a device.
fn guest_of(lease: &Lease) -> Option<Guest> {
    Some(Guest {
        device: lease.device.clone()?,
        mac: lease.mac.unwrap_or_else(|| names(&lease.container).1),
        address: lease.address,
    })
}

impl NetworkManager {
    /// Leases an address on `network` for `container`, gives it its device on
    /// the bridge and publishes `ports`. Nothing is left behind on error.
    pub async fn attach(
        &self,
        network: &str,
        container: &ContainerId,
        endpoint: Endpoint<'_>,
        ports: &[PublishedPort],
    ) -> Result<Attachment, Error> {
        let _lock = state_file::lock(&self.lock_path())?;
        let config = self.get(network)?;
        if !ports.is_empty() {
            self.check_ports_free(container, ports)?;
            for port in ports {
                port.check_host_port_free()?;
            }
        }
        let ipam = self.ipam(&config)?;
        let hash = names(container).0;
        let mac = mac_on(container, &config.name);
        let lease = ipam.lease_with(
            container,
            |address| match endpoint {
                Endpoint::Tap => self.names.tap(&config.name, address),
                Endpoint::Veth { .. } => self.names.veth_pair(&hash).0,
            },
            mac,
            ports,
        )?;
        let device = lease.device.clone().unwrap_or_default();
        let made = async {
            let guest_device = match endpoint {
                Endpoint::Tap => {
                    self.take_tap(&device, &config.bridge).await?;
                    None
                }
                Endpoint::Veth { namespace } => {
                    let guest = self.names.veth_pair(&hash).1;
                    self.make_veth(&device, &guest, mac, &config.bridge, namespace)
                        .await?;
                    Some(guest)
                }
            };
            let guest = Guest {
                device: device.clone(),
                mac,
                address: lease.address,
            };
            let admitted = self.admit(&guest).and_then(|()| {
                if ports.is_empty() {
                    Ok(())
                } else {
                    self.publish(ports, lease.address)
                }
            });
            if let Err(error) = admitted {
                let _ = self
                    .nftables()
                    .and_then(|s| guard::forbid(s, &self.names.table(), &guest));
                self.return_device(&device).await?;
                return Err(error);
            }
            Ok(guest_device)
        };
        let guest_device = match made.await {
            Ok(guest_device) => guest_device,
            Err(error) => {
                ipam.release(container)?;
                return Err(error);
            }
        };
        let address6 = match (lease.address6, config.subnet6) {
            (Some(address6), Some(subnet6)) => Some(
                Ipv6Net::new(address6, subnet6.prefix_len())
                    .map_err(|e| Error::InvalidNetwork(e.to_string()))?,
            ),
            _ => None,
        };
        Ok(Attachment {
            network: config.name,
            container: container.clone(),
            address: Ipv4Net::new(lease.address, config.subnet.prefix_len())
                .map_err(|e| Error::InvalidNetwork(e.to_string()))?,
            gateway: config.gateway,
            address6,
            gateway6: config.gateway6,
            mac,
            device,
            guest_device,
            ports: ports.to_vec(),
        })
    }

    /// Refuses `ports` if another container, on any network, has one.
    fn check_ports_free(
        &self,
        container: &ContainerId,
        ports: &[PublishedPort],
    ) -> Result<(), Error> {
        let others = self
            .all_leases()?
            .into_iter()
            .filter(|l| &l.container != container);
        for other in others {
            for theirs in &other.ports {
                if let Some(mine) = ports.iter().find(|p| p.conflicts_with(theirs)) {
                    return Err(Error::PortInUse {
                        port: mine.to_string(),
                        container: other.container.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes `container` from `network`: its ports, device and lease. A
    /// tap goes back to the pool.
    pub async fn detach(&self, network: &str, container: &ContainerId) -> Result<(), Error> {
        let _lock = state_file::lock(&self.lock_path())?;
        let config = self.get(network)?;
        let ipam = self.ipam(&config)?;
        let lease = ipam
            .leases()?
            .into_iter()
            .find(|l| &l.container == container)
            .ok_or_else(|| Error::NotAttached {
                container: container.to_string(),
                network: network.to_owned(),
            })?;
        // The lease goes last, so a failure leaves it to retry or reclaim.
        let rebuild = self.undo(&lease).await?;
        ipam.release(container)?;
        if rebuild {
            self.sync_firewall()?;
        }
        Ok(())
    }

    /// Detaches every container for which `is_alive` says false (containers
    /// that no longer exist, after a crash), on every network; returns them.
    pub async fn reclaim(
        &self,
        is_alive: impl Fn(&ContainerId) -> bool,
    ) -> Result<Vec<ContainerId>, Error> {
        let _lock = state_file::lock(&self.lock_path())?;
        let mut reclaimed = Vec::new();
        let mut rebuild = false;
        for network in self.list()? {
            for lease in self.ipam(&network)?.reclaim(&is_alive)? {
                rebuild |= self.undo(&lease).await?;
                reclaimed.push(lease.container);
            }
        }
        if rebuild {
            self.sync_firewall()?;
        }
        Ok(reclaimed)
    }

    /// Publishes `ports` forwarded to `address`. When the table is missing
    /// (its ruleset flushed, or made by an earlier version as an `ip` table),
    /// it is rebuilt from the leases on disk, which hold these ports already.
    fn publish(&self, ports: &[PublishedPort], address: Ipv4Addr) -> Result<(), Error> {
        match self
            .nftables()
            .and_then(|socket| nft::publish(socket, &self.names.table(), ports, address))
        {
            Err(Error::Netlink(NetlinkError::NotFound { .. })) => self.sync_firewall(),
            other => other,
        }
    }

    /// Lets a guest send from its addresses. When the table is missing it
    /// is rebuilt from the leases on disk, which hold this guest already.
    fn admit(&self, guest: &Guest) -> Result<(), Error> {
        match self
            .nftables()
            .and_then(|socket| guard::admit(socket, &self.names.table(), guest))
        {
            Err(Error::Netlink(NetlinkError::NotFound { .. })) => self.sync_firewall(),
            other => other,
        }
    }

    /// Unpublishes a lease's ports, forbids its addresses and returns its
    /// device; says whether the table was missing and must be rebuilt once
    /// the lease is gone.
    async fn undo(&self, lease: &Lease) -> Result<bool, Error> {
        let mut rebuild = false;
        if let Some(guest) = guest_of(lease) {
            match guard::forbid(self.nftables()?, &self.names.table(), &guest) {
                Err(Error::Netlink(NetlinkError::NotFound { .. })) => rebuild = true,
                other => other?,
            }
        }
        if !lease.ports.is_empty() {
            match nft::unpublish(
                self.nftables()?,
                &self.names.table(),
                &lease.ports,
                lease.address,
            ) {
                Err(Error::Netlink(NetlinkError::NotFound { .. })) => rebuild = true,
                other => other?,
            }
        }
        if let Some(device) = &lease.device {
            self.return_device(device).await?;
        }
        Ok(rebuild)
    }

    async fn make_veth(
        &self,
        host_name: &str,
        guest_name: &str,
        mac: MacAddress,
        bridge: &str,
        namespace: BorrowedFd<'_>,
    ) -> Result<(), Error> {
        let nl = &self.netlink;
        let bridge = nl.link_by_name(bridge).await?;
        self.delete_device(host_name).await?;
        let (host, guest) = nl.create_veth(host_name, guest_name).await?;
        let attached = async {
            nl.set_mac(&guest, mac).await?;
            nl.set_master(&host, Some(&bridge)).await?;
            nl.set_up(&host).await?;
            nl.set_netns(&guest, namespace).await
        };
        if let Err(e) = attached.await {
            let _ = nl.delete_link(&host).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Gives back a container's host-side device: a tap stays in the pool,
    /// a veth is deleted.
    async fn return_device(&self, name: &str) -> Result<(), Error> {
        if name.starts_with(&self.names.tap_prefix()) {
            return Ok(());
        }
        self.delete_device(name).await
    }

    /// Deletes a host-side device if it exists.
    async fn delete_device(&self, name: &str) -> Result<(), Error> {
        match self.netlink.link_by_name(name).await {
            Ok(link) => Ok(self.netlink.delete_link(&link).await?),
            Err(NetlinkError::NotFound { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Rewrites the whole nftables table from the networks and leases on
    /// disk (after a network comes or goes).
    pub(crate) fn sync_firewall(&self) -> Result<(), Error> {
        let networks = self.list()?;
        let mut ports = Vec::new();
        let mut guests = Vec::new();
        for lease in self.all_leases()? {
            ports.extend(lease.ports.iter().map(|p| (*p, lease.address)));
            guests.extend(guest_of(&lease));
        }
        nft::apply(&nft::render(&self.names, &networks, &ports, &guests))
    }
}

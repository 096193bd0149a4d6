//! Attaching a container to a network: its lease, its device on the bridge,
//! its published ports.
//!
//! A VM gets a persistent tap device named `czt<hash>`; a container that runs
//! in a network namespace instead (and the tests' stand-in guests) gets a veth
//! pair `czv<hash>`/`czp<hash>` whose `czp` end moves into the namespace. The
//! hash is of the container id, so names and the MAC address are stable for a
//! container and differ between containers.

use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

use containerization_netlink::{Link, MacAddress, NetlinkError};
use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use super::{NetworkManager, PublishedPort, nft};
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

impl NetworkManager {
    /// Leases an address on `network` for `container`, creates its device on
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
        let ipam = self.ipam(&config)?;
        let lease = ipam.lease(container)?;
        let (hash, mac) = names(container);
        let bridge = self.netlink.link_by_name(&config.bridge).await?;
        let made = self.make_device(&hash, mac, &bridge, endpoint).await;
        let (device, guest_device) = match made {
            Ok(names) => names,
            Err(error) => {
                ipam.release(container)?;
                return Err(error);
            }
        };
        let recorded = async {
            ipam.set_endpoint(container, &device, ports)?;
            self.sync_ports()
        };
        if let Err(error) = recorded.await {
            self.delete_device(&device).await?;
            ipam.release(container)?;
            let _ = self.sync_ports();
            return Err(error);
        }
        Ok(Attachment {
            network: config.name,
            container: container.clone(),
            address: Ipv4Net::new(lease.address, config.subnet.prefix_len())
                .map_err(|e| Error::InvalidNetwork(e.to_string()))?,
            gateway: config.gateway,
            mac,
            device,
            guest_device,
            ports: ports.to_vec(),
        })
    }

    /// Removes `container` from `network`: its device, ports and lease.
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
        if let Some(device) = &lease.device {
            self.delete_device(device).await?;
        }
        ipam.release(container)?;
        self.sync_ports()
    }

    /// Detaches every container for which `is_alive` says false (containers
    /// that no longer exist, after a crash), on every network; returns them.
    pub async fn reclaim(
        &self,
        is_alive: impl Fn(&ContainerId) -> bool,
    ) -> Result<Vec<ContainerId>, Error> {
        let _lock = state_file::lock(&self.lock_path())?;
        let mut reclaimed = Vec::new();
        for network in self.list()? {
            for lease in self.ipam(&network)?.reclaim(&is_alive)? {
                if let Some(device) = &lease.device {
                    self.delete_device(device).await?;
                }
                reclaimed.push(lease.container);
            }
        }
        self.sync_ports()?;
        Ok(reclaimed)
    }

    async fn make_device(
        &self,
        hash: &str,
        mac: MacAddress,
        bridge: &Link,
        endpoint: Endpoint<'_>,
    ) -> Result<(String, Option<String>), Error> {
        let nl = &self.netlink;
        match endpoint {
            Endpoint::Tap => {
                let name = format!("czt{hash}");
                // A tap left by a crashed run of this container is replaced.
                self.delete_device(&name).await?;
                let tap = nl.create_tap(&name, None).await?;
                let attached = async {
                    nl.set_master(&tap, Some(bridge)).await?;
                    nl.set_up(&tap).await
                };
                if let Err(e) = attached.await {
                    let _ = nl.delete_link(&tap).await;
                    return Err(e.into());
                }
                Ok((name, None))
            }
            Endpoint::Veth { namespace } => {
                let (host_name, guest_name) = (format!("czv{hash}"), format!("czp{hash}"));
                self.delete_device(&host_name).await?;
                let (host, guest) = nl.create_veth(&host_name, &guest_name).await?;
                let attached = async {
                    nl.set_mac(&guest, mac).await?;
                    nl.set_master(&host, Some(bridge)).await?;
                    nl.set_up(&host).await?;
                    nl.set_netns(&guest, namespace).await
                };
                if let Err(e) = attached.await {
                    let _ = nl.delete_link(&host).await;
                    return Err(e.into());
                }
                Ok((host_name, Some(guest_name)))
            }
        }
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
        nft::apply(&nft::render(&networks, &self.published_ports()?))
    }

    /// Rewrites only the port-forwarding rules (after a container comes or
    /// goes); the table exists while any network does.
    fn sync_ports(&self) -> Result<(), Error> {
        nft::apply(&nft::render_ports(&self.published_ports()?))
    }

    /// Every published port with the address it forwards to.
    fn published_ports(&self) -> Result<Vec<(PublishedPort, Ipv4Addr)>, Error> {
        let mut ports = Vec::new();
        for lease in self.all_leases()? {
            ports.extend(lease.ports.iter().map(|p| (*p, lease.address)));
        }
        Ok(ports)
    }
}

//! `cctl network …`: container networks.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::Context;
use clap::Subcommand;
use containerization::network::NetworkManager;
use containerization::{ContainerManager, ContainerStore, StateRoot};
use containerization_netlink::Netlink;
use ipnet::{Ipv4Net, Ipv6Net};

/// Subcommands of `cctl network`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network: a host bridge `cz-NAME` holding the gateway address.
    Create {
        /// The network's name (1 to 64 of a-z, 0-9, '-', '_').
        name: String,
        /// Its subnet, such as 10.89.0.0/24; by default a /24 that no host route,
        /// interface or network overlaps, from 172.18.0.0/15, 172.20.0.0/14,
        /// 172.24.0.0/13, then 192.168.0.0/16.
        #[arg(long)]
        subnet: Option<Ipv4Net>,
        /// The host's address on it; the subnet's first address by default.
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        /// An IPv6 subnet as well, such as fd00:89::/64 (a unique local /64):
        /// containers get an IPv6 address, and their IPv6 egress is masqueraded.
        #[arg(long)]
        subnet6: Option<Ipv6Net>,
        /// The host's IPv6 address on it; the subnet's ::1 by default.
        #[arg(long, requires = "subnet6")]
        gateway6: Option<Ipv6Addr>,
    },
    /// List the networks.
    Ls,
    /// Show a network and its address leases as JSON.
    Inspect {
        /// The network's name.
        name: String,
    },
    /// Remove a network and its bridge (refused while containers use it).
    Rm {
        /// Remove it although stopped containers are configured on it (they
        /// cannot start until a network of that name exists again); running
        /// ones still refuse it.
        #[arg(short, long)]
        force: bool,
        /// The networks' names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Put a container that is not running on a network too: its first
    /// network when it has none, another network card otherwise (its
    /// default route stays on its first).
    Connect {
        /// Another name it answers to on this network.
        #[arg(long = "alias", value_name = "NAME")]
        aliases: Vec<String>,
        /// The network's name.
        network: String,
        /// The container's name or id.
        container: String,
    },
    /// Take a container that is not running off a network (its next network
    /// becomes its first).
    Disconnect {
        /// The network's name.
        network: String,
        /// The container's name or id.
        container: String,
    },
}

impl NetworkCommand {
    /// Runs the subcommand.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(self.run_async(root))
    }

    async fn run_async(self, root: &StateRoot) -> anyhow::Result<()> {
        // Neither needs the host's network: the change is the container's
        // record, used when it starts.
        let containers = || ContainerManager::new(root.clone(), root.tools_bin().join("vminitd"));
        match &self {
            Self::Connect {
                aliases,
                network,
                container,
            } => {
                containers()
                    .connect_network(container, network, aliases.clone())
                    .await?;
                return Ok(());
            }
            Self::Disconnect { network, container } => {
                containers().disconnect_network(container, network)?;
                return Ok(());
            }
            _ => {}
        }
        let netlink = Netlink::connect()?;
        let manager = NetworkManager::new(root.network_dir(), netlink);
        match self {
            Self::Create {
                name,
                subnet,
                gateway,
                subnet6,
                gateway6,
            } => {
                let ipv6 = subnet6.map(|subnet6| (subnet6, gateway6));
                let network = manager
                    .create_with_ipv6(&name, subnet, gateway, ipv6)
                    .await?;
                println!("{}", network.name);
            }
            Self::Ls => {
                println!(
                    "{:<14} {:<16} {:<18} {:<16} IPV6 SUBNET",
                    "NAME", "BRIDGE", "SUBNET", "GATEWAY"
                );
                for network in manager.list()? {
                    let subnet6 = network.subnet6.map(|s| s.to_string()).unwrap_or_default();
                    println!(
                        "{:<14} {:<16} {:<18} {:<16} {subnet6}",
                        network.name,
                        network.bridge,
                        network.subnet.to_string(),
                        network.gateway.to_string(),
                    );
                }
            }
            Self::Inspect { name } => {
                let network = manager.get(&name)?;
                let leases = manager.ipam(&network)?.leases()?;
                let json = serde_json::json!({ "network": network, "leases": leases });
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
            Self::Connect { .. } | Self::Disconnect { .. } => {}
            Self::Rm { force, names } => {
                let containers =
                    ContainerStore::new(root.path().join("containers"), root.run_dir());
                let pods =
                    containerization::pod::PodStore::new(root.path().join("pods"), root.run_dir());
                for name in names {
                    let mut users = containers.using_network(&name)?;
                    users.extend(pods.using_network(&name)?);
                    if !force && !users.is_empty() {
                        let users: Vec<String> = users
                            .iter()
                            .map(|(id, container)| {
                                format!(
                                    "{container} ({})",
                                    id.as_str().get(..12).unwrap_or(id.as_str())
                                )
                            })
                            .collect();
                        anyhow::bail!(
                            "network {name:?} is used by container or pod {}; remove them first, \
                             or remove it anyway with `cctl network rm -f {name}` (they \
                             cannot start until it exists again)",
                            users.join(", ")
                        );
                    }
                    manager.remove(&name).await?;
                    println!("{name}");
                }
            }
        }
        Ok(())
    }
}

//! `cctl network …`: container networks.

use std::net::Ipv4Addr;

use anyhow::Context;
use clap::Subcommand;
use containerization::StateRoot;
use containerization::network::NetworkManager;
use containerization_netlink::Netlink;
use ipnet::Ipv4Net;

/// Subcommands of `cctl network`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network: a host bridge `cz-NAME` holding the gateway address.
    Create {
        /// The network's name (1 to 12 of a-z, 0-9, '-', '_').
        name: String,
        /// Its subnet, such as 10.89.0.0/24; a free /24 of 10.88.0.0/16 by default.
        #[arg(long)]
        subnet: Option<Ipv4Net>,
        /// The host's address on it; the subnet's first address by default.
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
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
        /// The networks' names.
        #[arg(required = true)]
        names: Vec<String>,
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
        let netlink = Netlink::connect()?;
        let manager = NetworkManager::new(root.network_dir(), netlink);
        match self {
            Self::Create {
                name,
                subnet,
                gateway,
            } => {
                let network = manager.create(&name, subnet, gateway).await?;
                println!("{}", network.name);
            }
            Self::Ls => {
                println!("{:<14} {:<16} {:<18} GATEWAY", "NAME", "BRIDGE", "SUBNET");
                for network in manager.list()? {
                    println!(
                        "{:<14} {:<16} {:<18} {}",
                        network.name,
                        network.bridge,
                        network.subnet.to_string(),
                        network.gateway
                    );
                }
            }
            Self::Inspect { name } => {
                let network = manager.get(&name)?;
                let leases = manager.ipam(&network)?.leases()?;
                let json = serde_json::json!({ "network": network, "leases": leases });
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
            Self::Rm { names } => {
                for name in names {
                    manager.remove(&name).await?;
                    println!("{name}");
                }
            }
        }
        Ok(())
    }
}

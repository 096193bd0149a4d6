//! Host networking: a dedicated address for every container.
//!
//! - [`NetworkManager`]: named networks, each a bridge with a subnet and a
//!   gateway, created and removed through netlink;
//! - [`Ipam`]: address leases persisted under the state root's `network/`
//!   folder behind a file lock, so concurrent `cctl` processes never hand out
//!   one address twice;
//! - [`NetworkManager::attach`]: a container's lease, its device on the
//!   bridge (a tap for a VM from the network's pool, with a MAC derived from
//!   the container id) and its published ports;
//! - egress NAT (IPv4, and IPv6 for a network with an IPv6 subnet) and port
//!   forwarding in one nftables table owned by the project: rewritten whole
//!   when a network comes or goes, while a container only adds and deletes
//!   its own elements of the published-port maps; and IP forwarding, turned
//!   on and left on (other runtimes' bridges may need it).

mod address_pool;
mod attach;
mod config;
mod guard;
mod host_names;
mod ipam;
mod manager;
mod nft;
mod port;
mod sysctl;
mod tap_pool;

pub use attach::{Attachment, Endpoint};
pub use config::NetworkConfig;
pub use ipam::{Ipam, Lease};
pub use manager::NetworkManager;
pub use port::{Protocol, PublishedPort};

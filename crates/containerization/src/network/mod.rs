//! Host networking: a dedicated address for every container.
//!
//! Today this holds named networks ([`NetworkManager`]: a bridge with a
//! subnet and a gateway, created and removed through netlink) and address
//! management ([`Ipam`]): leases persisted under the state root's `network/`
//! folder behind a file lock, so concurrent `cctl` processes never hand out
//! one address twice. Tap devices per VM, NAT and published ports are still
//! to come.

mod config;
mod ipam;
mod manager;

pub use config::NetworkConfig;
pub use ipam::{Ipam, Lease};
pub use manager::NetworkManager;

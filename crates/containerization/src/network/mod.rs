//! Host networking: a dedicated address for every container.
//!
//! Today this holds address management ([`Ipam`]): leases persisted under
//! the state root's `network/` folder behind a file lock, so concurrent `cctl`
//! processes never hand out one address twice. Bridges, tap devices, NAT and
//! published ports, built on `containerization-netlink`, are still to come.

mod ipam;

pub use ipam::{Ipam, Lease};

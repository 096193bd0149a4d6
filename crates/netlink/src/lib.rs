//! Netlink for containerization, on the host and in the guest.
//!
//! A small typed async API over the maintained [`rtnetlink`] crate: links
//! (list, look up, up/down, MTU, MAC, name, master, network namespace,
//! delete), bridges, veth pairs and persistent tap devices, IPv4 and IPv6
//! addresses and routes. One [`Netlink`] holds one netlink socket and reuses it
//! for every request. Errors are [`NetlinkError`] variants a caller can match
//! (already exists, not found, permission denied), each naming the interface or
//! address involved.
//!
//! [`configure_interface`] is the one call the guest's `vminitd` uses to set up
//! its network interface.
//!
//! [`SetElementBatch`] adds and deletes elements of nftables sets and maps in
//! one transaction over nfnetlink, on an [`NftablesSocket`] kept for many
//! batches: what changes when a container with published ports comes or goes,
//! without starting `nft`.
//!
//! ```no_run
//! use containerization_netlink::{Netlink, NetlinkError};
//!
//! # async fn demo() -> Result<(), NetlinkError> {
//! let netlink = Netlink::connect()?;
//! let bridge = netlink.create_bridge("cz0").await?;
//! netlink.add_address(&bridge, "10.88.0.1/24".parse().unwrap()).await?;
//! netlink.set_up(&bridge).await?;
//! for link in netlink.links().await? {
//!     println!("{} {}", link.index, link.name);
//! }
//! # Ok(())
//! # }
//! ```

mod address;
mod error;
mod guest;
mod handle;
mod link;
mod mac;
mod nftables;
mod route;
mod tap;

pub use address::Address;
pub use error::NetlinkError;
pub use guest::{InterfaceConfig, InterfaceSelector, configure_interface};
pub use handle::Netlink;
pub use link::Link;
pub use mac::MacAddress;
pub use nftables::{NftablesSocket, SetElementBatch, TableFamily};
pub use route::Route;
pub use tap::open_tap;

//! Where a network created without a subnet gets one.
//!
//! As Docker's `default-address-pools`: a list of pools, each a base range
//! and the size of the subnets cut from it, tried in order; the first subnet
//! that nothing on the host overlaps (a route, an interface's address,
//! another of our networks) is taken. The ranges are chosen to stay out of
//! the way of the other runtimes a host is likely to have (see
//! [`DEFAULT_ADDRESS_POOLS`]), and checking the host's routes and addresses
//! keeps us off whatever they, a VPN or the LAN use already.

use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::Error;

/// A range that subnets of one size are cut from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddressPool {
    /// The range.
    pub(crate) base: Ipv4Net,
    /// The prefix length of each subnet cut from it.
    pub(crate) size: u8,
}

impl AddressPool {
    const fn new(base: Ipv4Addr, prefix_len: u8, size: u8) -> Self {
        Self {
            base: Ipv4Net::new_assert(base, prefix_len),
            size,
        }
    }
}

/// The pools a network without a subnet is given a /24 from, in order.
///
/// Docker's default pools (172.17.0.0/16 to 172.31.0.0/16, then
/// 192.168.0.0/16) without 172.17.0.0/16, which Docker's `docker0` takes
/// when its daemon first starts (often on demand, long after boot).
/// 192.168.0.0/16 comes last because home and office LANs live there, and a
/// LAN reached through the default route has no route of its own to avoid.
/// 10.0.0.0/8 is left alone: Podman takes 10.88.0.0/16 for its default
/// network whatever the host routes, and its other networks come from
/// 10.89.0.0/16 upwards. Each network gets a /24 rather than Docker's /16:
/// 253 containers, each its own VM, are plenty for one network, and a small
/// subnet claims less of what a VPN or a LAN may want later.
pub(crate) const DEFAULT_ADDRESS_POOLS: [AddressPool; 4] = [
    AddressPool::new(Ipv4Addr::new(172, 18, 0, 0), 15, 24),
    AddressPool::new(Ipv4Addr::new(172, 20, 0, 0), 14, 24),
    AddressPool::new(Ipv4Addr::new(172, 24, 0, 0), 13, 24),
    AddressPool::new(Ipv4Addr::new(192, 168, 0, 0), 16, 24),
];

/// Whether two IPv4 ranges share an address.
pub(crate) fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether two IPv6 ranges share an address.
pub(crate) fn overlaps6(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet of `pools` that overlaps none of the `taken` ranges.
pub(crate) fn pick_subnet(
    pools: &[AddressPool],
    taken: &[(Ipv4Net, String)],
) -> Result<Ipv4Net, Error> {
    for pool in pools {
        let mut subnets = pool
            .base
            .subnets(pool.size)
            .map_err(|e| Error::InvalidNetwork(format!("address pool {}: {e}", pool.base)))?;
        if let Some(free) =
            subnets.find(|candidate| taken.iter().all(|(net, _)| !overlaps(net, candidate)))
        {
            return Ok(free);
        }
    }
    let ranges: Vec<String> = pools.iter().map(|p| p.base.to_string()).collect();
    Err(Error::InvalidNetwork(format!(
        "no free subnet left in the default address pools ({}): host routes, interface \
         addresses or other networks cover them all; give the network a subnet yourself \
         (`cctl network create <name> --subnet <cidr>`; the default network is \"default\")",
        ranges.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(nets: &[&str]) -> Vec<(Ipv4Net, String)> {
        nets.iter()
            .map(|n| (n.parse().unwrap(), format!("route {n}")))
            .collect()
    }

    #[test]
    fn picking_skips_taken_and_overlapping_subnets() {
        let pick = |nets: &[&str]| {
            pick_subnet(&DEFAULT_ADDRESS_POOLS, &taken(nets))
                .unwrap()
                .to_string()
        };
        assert_eq!(pick(&[]), "172.18.0.0/24");
        assert_eq!(pick(&["10.88.0.0/16", "172.17.0.0/16"]), "172.18.0.0/24");
        assert_eq!(
            pick(&["172.18.0.0/24", "172.18.1.128/25", "172.18.2.0/23"]),
            "172.18.4.0/24"
        );
        assert_eq!(pick(&["172.18.0.0/15"]), "172.20.0.0/24");
        assert_eq!(pick(&["172.16.0.0/12"]), "192.168.0.0/24");
        assert_eq!(pick(&["172.16.0.0/12", "192.168.0.0/24"]), "192.168.1.0/24");
    }

    #[test]
    fn exhausted_pools_are_named_with_the_way_out() {
        let err = pick_subnet(
            &DEFAULT_ADDRESS_POOLS,
            &taken(&["172.16.0.0/12", "192.168.0.0/16"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("172.18.0.0/15") && err.contains("192.168.0.0/16"),
            "{err}"
        );
        assert!(err.contains("--subnet"), "{err}");
    }
}

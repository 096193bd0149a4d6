//! The container's own lines in `/etc/hosts`, Docker's way: its address
//! mapped to its hostname. The `localhost` lines (127.0.0.1 and ::1) are
//! written by the guest agent (its `localhost` flag), so they are not here.

use std::net::IpAddr;

/// The `/etc/hosts` entries for a container called `hostname` with
/// `address` on its network: that address → the hostname; nothing for a
/// container without a network (Docker's `--network none`).
pub fn hosts_entries(hostname: &str, address: Option<IpAddr>) -> Vec<(IpAddr, Vec<String>)> {
    match address {
        Some(address) if !hostname.is_empty() => vec![(address, vec![hostname.to_owned()])],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_maps_to_the_hostname() {
        let ip: IpAddr = "10.88.0.2".parse().unwrap();
        assert_eq!(
            hosts_entries("c0ffee", Some(ip)),
            [(ip, vec!["c0ffee".to_owned()])]
        );
    }

    #[test]
    fn no_network_means_no_entries() {
        assert!(hosts_entries("c0ffee", None).is_empty());
    }
}

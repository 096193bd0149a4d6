//! Frames from a guest carry only the guest's own addresses.
//!
//! A `bridge` family table of the same name as the `inet` one filters every
//! frame entering one of the root's bridges from a guest's host-side device
//! (its taps `czt<tag>*`, veths `czv<tag>*`): an IPv4 packet must come from the MAC and address the
//! guest was given on that device, an ARP message must claim them, and IPv6
//! must come from the guest's MAC; anything else from a guest is dropped. So
//! one container cannot pass as another, or as the gateway, on its network.
//!
//! The allowed triples are elements of a set, changed with the container's
//! lease over nfnetlink as published ports are, and rendered whole when the
//! table is rewritten.

use std::net::Ipv4Addr;

use containerization_netlink::{MacAddress, NftablesSocket, SetElementBatch, TableFamily};

use super::host_names::HostNames;
use crate::Error;

/// Linux's `IFNAMSIZ`: an interface name's field in a set key.
const IFNAMSIZ: usize = 16;

/// One guest's device on a bridge and the addresses it may use there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Guest {
    /// The host-side device (tap or veth end).
    pub device: String,
    /// The guest's MAC.
    pub mac: MacAddress,
    /// The guest's IPv4 address.
    pub address: Ipv4Addr,
}

/// The table for `guests`, in nft's language.
/// Frames from other roots' guests pass: their own root's table filters them.
pub(crate) fn render(names: &HostNames, guests: &[Guest]) -> String {
    let mut text = format!("table bridge {} {{\n", names.table());
    let triples: Vec<String> = guests
        .iter()
        .map(|g| format!("\"{}\" . {} . {}", g.device, g.mac, g.address))
        .collect();
    let pairs: Vec<String> = guests
        .iter()
        .map(|g| format!("\"{}\" . {}", g.device, g.mac))
        .collect();
    for (name, key, elements) in [
        ("guests", "ifname . ether_addr . ipv4_addr", triples),
        ("guest_macs", "ifname . ether_addr", pairs),
    ] {
        text.push_str(&format!("\tset {name} {{\n\t\ttype {key}\n"));
        if !elements.is_empty() {
            text.push_str(&format!("\t\telements = {{ {} }}\n", elements.join(", ")));
        }
        text.push_str("\t}\n");
    }
    text.push_str(&format!(
        "\tchain prerouting {{\n\t\ttype filter hook prerouting priority -200; policy accept;\n\
         \t\tiifname != \"{}*\" iifname != \"{}*\" accept\n",
        names.tap_prefix(),
        names.veth_prefix()
    ));
    text.push_str(
        "
         \t\tether type ip iifname . ether saddr . ip saddr @guests accept\n\
         \t\tether type arp iifname . ether saddr . arp saddr ip @guests iifname . arp saddr ether @guest_macs accept\n\
         \t\tether type ip6 iifname . ether saddr @guest_macs accept\n\
         \t\tdrop\n\t}\n}\n",
    );
    text
}

/// An interface name as a set key field: zero-padded to `IFNAMSIZ`.
fn name_field(name: &str) -> Vec<u8> {
    let mut field = name.as_bytes().to_vec();
    field.resize(IFNAMSIZ, 0);
    field
}

/// A MAC as a concatenation field: six bytes padded to eight.
fn mac_field(mac: MacAddress) -> Vec<u8> {
    let mut field = mac.octets().to_vec();
    field.resize(8, 0);
    field
}

fn keys(guest: &Guest) -> (Vec<u8>, Vec<u8>) {
    let pair = [name_field(&guest.device), mac_field(guest.mac)].concat();
    let triple = [pair.clone(), guest.address.octets().to_vec()].concat();
    (triple, pair)
}

/// Lets `guest` send from its addresses on its device.
pub(crate) fn admit(socket: &NftablesSocket, table: &str, guest: &Guest) -> Result<(), Error> {
    let (triple, pair) = keys(guest);
    let mut batch = SetElementBatch::new(TableFamily::Bridge, table);
    batch.add("guests", &triple, None);
    batch.add("guest_macs", &pair, None);
    Ok(socket.commit(&batch)?)
}

/// Takes back what [`admit`] allowed, present or not.
pub(crate) fn forbid(socket: &NftablesSocket, table: &str, guest: &Guest) -> Result<(), Error> {
    let (triple, pair) = keys(guest);
    let mut batch = SetElementBatch::new(TableFamily::Bridge, table);
    batch.add("guests", &triple, None);
    batch.delete("guests", &triple);
    batch.add("guest_macs", &pair, None);
    batch.delete("guest_macs", &pair);
    Ok(socket.commit(&batch)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_laid_out_as_the_sets_types_say() {
        let guest = Guest {
            device: "czt0123".into(),
            mac: MacAddress::new([2, 1, 2, 3, 4, 5]),
            address: Ipv4Addr::new(10, 0, 0, 2),
        };
        let (triple, pair) = keys(&guest);
        assert_eq!(triple.len(), 16 + 8 + 4);
        assert_eq!(&pair[..7], b"czt0123");
        assert_eq!(&pair[16..], [2, 1, 2, 3, 4, 5, 0, 0]);
        assert_eq!(&triple[24..], [10, 0, 0, 2]);
        let names =
            HostNames::for_network_dir(std::path::Path::new("/var/lib/containerization/network"));
        let text = render(&names, &[guest]);
        assert!(
            text.contains("\"czt0123\" . 02:01:02:03:04:05 . 10.0.0.2"),
            "{text}"
        );
    }
}

//! A state root's nftables table: egress NAT and published ports.
//!
//! Each state root has its own table ([`super::host_names`]), named
//! `containerization` in the system root, so roots never rewrite each other's.
//!
//! There is no well-kept nftables crate under a licence this project can use
//! (`rustables` is GPL-3.0; `nftnl` binds the C library). So the table is
//! rendered as nft's own ruleset language and applied with `nft -f -` when a
//! network comes or goes; the kernel applies it as one transaction, the old
//! table replaced whole or not at all, and with no networks left it is gone.
//!
//! Published ports are elements of four maps (TCP or UDP, on every local
//! address or on one), looked up by fixed DNAT rules. A container coming or
//! going only adds or deletes its own elements, in one nfnetlink batch sent
//! directly ([`containerization_netlink::SetElementBatch`]) on a socket the
//! manager keeps, without starting `nft`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use containerization_netlink::{NftablesSocket, SetElementBatch, TableFamily};

use super::guard::Guest;
use super::host_names::HostNames;
use super::{NetworkConfig, Protocol, PublishedPort};
use crate::Error;

/// The map holding `port`: by protocol, and whether it names a host address.
fn map_name(port: &PublishedPort) -> &'static str {
    match (port.protocol, port.host_ip.is_some()) {
        (Protocol::Tcp, false) => "published_tcp",
        (Protocol::Udp, false) => "published_udp",
        (Protocol::Tcp, true) => "published_tcp_at",
        (Protocol::Udp, true) => "published_udp_at",
    }
}

/// A port as a concatenation field: big-endian, padded to 4 bytes.
fn port_field(port: u16) -> [u8; 4] {
    let [high, low] = port.to_be_bytes();
    [high, low, 0, 0]
}

/// The map element of `port` forwarded to `address`: key and data bytes.
fn element(port: &PublishedPort, address: Ipv4Addr) -> (Vec<u8>, Vec<u8>) {
    let key = match port.host_ip {
        Some(ip) => [ip.octets(), port_field(port.host_port)].concat(),
        None => port.host_port.to_be_bytes().to_vec(),
    };
    let data = [address.octets(), port_field(port.container_port)].concat();
    (key, data)
}

/// The same element in nft's language.
fn element_text(port: &PublishedPort, address: Ipv4Addr) -> String {
    let key = match port.host_ip {
        Some(ip) => format!("{ip} . {}", port.host_port),
        None => port.host_port.to_string(),
    };
    format!("{key} : {address} . {}", port.container_port)
}

/// Renders the whole table for `networks` and the published `ports` (each
/// with the container address it forwards to), and the `bridge` table that
/// lets `guests` send only from their own addresses ([`super::guard`]).
pub(crate) fn render(
    names: &HostNames,
    networks: &[NetworkConfig],
    ports: &[(PublishedPort, Ipv4Addr)],
    guests: &[Guest],
) -> String {
    // Creating then deleting makes the delete valid when the table is absent;
    // the `ip` table is the one earlier versions made.
    let table = names.table();
    let mut text = String::new();
    for family in ["ip", "inet", "bridge"] {
        text.push_str(&format!(
            "table {family} {table}\ndelete table {family} {table}\n"
        ));
    }
    if networks.is_empty() {
        return text;
    }
    text.push_str(&format!("table inet {table} {{\n"));
    for (name, key) in [
        ("published_tcp", "inet_service"),
        ("published_udp", "inet_service"),
        ("published_tcp_at", "ipv4_addr . inet_service"),
        ("published_udp_at", "ipv4_addr . inet_service"),
    ] {
        text.push_str(&format!(
            "\tmap {name} {{\n\t\ttype {key} : ipv4_addr . inet_service\n"
        ));
        let elements: Vec<String> = ports
            .iter()
            .filter(|(port, _)| map_name(port) == name)
            .map(|(port, address)| element_text(port, *address))
            .collect();
        if !elements.is_empty() {
            text.push_str(&format!("\t\telements = {{ {} }}\n", elements.join(", ")));
        }
        text.push_str("\t}\n");
    }
    // Packets for 127.0.0.0/8 that arrive on any interface but `lo` are
    // dropped before conntrack and NAT: our bridges carry loopback sources
    // (`route_localnet`, for ports published on 127.0.0.1), which would
    // otherwise let a guest reach the host's loopback services
    // (CVE-2020-8558), and the DNAT of a port published on 127.0.0.1 would
    // let a LAN neighbour reach it (as Docker fixed in 28.0).
    text.push_str(
        "\tchain loopback_guard {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\
         \t\tiifname != \"lo\" ip daddr 127.0.0.0/8 drop\n\t}\n",
    );
    let dnat = "\t\tdnat ip to ip daddr . tcp dport map @published_tcp_at\n\
                \t\tdnat ip to ip daddr . udp dport map @published_udp_at\n\
                \t\tfib daddr type local dnat ip to tcp dport map @published_tcp\n\
                \t\tfib daddr type local dnat ip to udp dport map @published_udp\n";
    text.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
    );
    text.push_str(dnat);
    text.push_str(
        "\t}\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n",
    );
    text.push_str(dnat);
    text.push_str("\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    for network in networks {
        let (subnet, bridge) = (network.subnet, &network.bridge);
        text.push_str(&format!(
            "\t\tip saddr {subnet} ip daddr != {subnet} masquerade\n"
        ));
        // Connections to a port published on 127.0.0.1 leave from a loopback address.
        text.push_str(&format!(
            "\t\tip saddr 127.0.0.0/8 oifname \"{bridge}\" masquerade\n"
        ));
        if let Some(subnet6) = network.subnet6 {
            text.push_str(&format!(
                "\t\tip6 saddr {subnet6} ip6 daddr != {subnet6} masquerade\n"
            ));
        }
    }
    text.push_str(
        "\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n",
    );
    // Networks are isolated from each other, as Docker's are: a packet from
    // one bridge to another is dropped, unless it was sent to a published
    // port (DNAT), which any client may reach. Every root's bridges start
    // with `cz`, so this root's guests reach no other root's networks either.
    text.push_str("\t\tct status dnat accept\n");
    for network in networks {
        let bridge = &network.bridge;
        text.push_str(&format!(
            "\t\tiifname \"{bridge}\" oifname \"cz*\" oifname != \"{bridge}\" drop\n"
        ));
    }
    for network in networks {
        let bridge = &network.bridge;
        text.push_str(&format!(
            "\t\tiifname \"{bridge}\" accept\n\t\toifname \"{bridge}\" accept\n"
        ));
    }
    text.push_str("\t}\n}\n");
    text.push_str(&super::guard::render(names, guests));
    text
}

/// Adds the elements forwarding `ports` to `address`. Adding what is there
/// already changes nothing.
pub(crate) fn publish(
    socket: &NftablesSocket,
    table: &str,
    ports: &[PublishedPort],
    address: Ipv4Addr,
) -> Result<(), Error> {
    let mut batch = SetElementBatch::new(TableFamily::Inet, table);
    for port in ports {
        let (key, data) = element(port, address);
        batch.add(map_name(port), &key, Some(&data));
    }
    Ok(socket.commit(&batch)?)
}

/// Deletes the elements forwarding `ports` to `address`, present or not:
/// each is added (a no-op when there) then deleted, in one transaction.
pub(crate) fn unpublish(
    socket: &NftablesSocket,
    table: &str,
    ports: &[PublishedPort],
    address: Ipv4Addr,
) -> Result<(), Error> {
    let mut batch = SetElementBatch::new(TableFamily::Inet, table);
    for port in ports {
        let (key, data) = element(port, address);
        batch.add(map_name(port), &key, Some(&data));
        batch.delete(map_name(port), &key);
    }
    Ok(socket.commit(&batch)?)
}

/// Applies a rendered ruleset with `nft -f -`.
pub(crate) fn apply(ruleset: &str) -> Result<(), Error> {
    let failed = |detail: String| Error::Firewall {
        detail,
        ruleset: ruleset.to_owned(),
    };
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run nft ({e}); install nftables")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(|e| failed(format!("cannot write to nft: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(format!("nft did not finish: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(failed(String::from_utf8_lossy(&output.stderr).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "containerization";

    fn system_root() -> HostNames {
        HostNames::for_network_dir(std::path::Path::new("/var/lib/containerization/network"))
    }

    #[test]
    fn no_networks_means_no_table() {
        assert_eq!(
            render(&system_root(), &[], &[], &[]),
            format!(
                "table ip {TABLE}\ndelete table ip {TABLE}\ntable inet {TABLE}\ndelete table inet {TABLE}\ntable bridge {TABLE}\ndelete table bridge {TABLE}\n"
            )
        );
    }

    #[test]
    fn rules_cover_masquerade_and_each_published_port() {
        let mut net = NetworkConfig::new("web", "10.88.0.0/24".parse().unwrap(), None).unwrap();
        net.subnet6 = Some("fd00:88::/64".parse().unwrap());
        let ports = [
            ("8080:80".parse().unwrap(), Ipv4Addr::new(10, 88, 0, 2)),
            (
                "127.0.0.1:5353:53/udp".parse().unwrap(),
                Ipv4Addr::new(10, 88, 0, 3),
            ),
        ];
        let text = render(&system_root(), &[net], &ports, &[]);
        assert!(text.contains("ip saddr 10.88.0.0/24 ip daddr != 10.88.0.0/24 masquerade"));
        assert!(text.contains("ip6 saddr fd00:88::/64 ip6 daddr != fd00:88::/64 masquerade"));
        assert!(text.contains("elements = { 8080 : 10.88.0.2 . 80 }"));
        assert!(text.contains("elements = { 127.0.0.1 . 5353 : 10.88.0.3 . 53 }"));
    }

    #[test]
    fn elements_are_laid_out_as_the_maps_types_say() {
        let (key, data) = element(&"8080:80".parse().unwrap(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(key, [0x1f, 0x90]);
        assert_eq!(data, [10, 0, 0, 2, 0, 80, 0, 0]);
        let (key, _) = element(
            &"127.0.0.1:53:53/udp".parse().unwrap(),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        assert_eq!(key, [127, 0, 0, 1, 0, 53, 0, 0]);
    }
}

//! The project's one nftables table: egress NAT and published ports.
//!
//! There is no well-kept nftables crate under a licence this project can use
//! (`rustables` is GPL-3.0; `nftnl` binds the C library), so the table is
//! rendered as nft's own ruleset language and applied with `nft -f -`, which
//! the kernel applies as one transaction: the old table is replaced whole or
//! not at all, and with no networks left the table is gone. When only
//! containers change, just the DNAT chains are rewritten ([`render_ports`]).

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::{NetworkConfig, PublishedPort};
use crate::Error;

/// The table's family and name.
const TABLE: &str = "ip containerization";

/// One DNAT rule body per published port.
fn dnat_rules(ports: &[(PublishedPort, Ipv4Addr)]) -> Vec<String> {
    ports
        .iter()
        .map(|(port, address)| {
            let destination = match port.host_ip {
                Some(ip) => format!("ip daddr {ip}"),
                None => "fib daddr type local".to_owned(),
            };
            format!(
                "{destination} {} dport {} dnat to {address}:{}",
                port.protocol, port.host_port, port.container_port
            )
        })
        .collect()
}

/// Renders the whole table for `networks` and the published `ports` (each
/// with the container address it forwards to).
pub(crate) fn render(networks: &[NetworkConfig], ports: &[(PublishedPort, Ipv4Addr)]) -> String {
    // Creating then deleting makes the delete valid when the table is absent.
    let mut text = format!("table {TABLE}\ndelete table {TABLE}\n");
    if networks.is_empty() {
        return text;
    }
    let dnat: String = dnat_rules(ports)
        .iter()
        .map(|r| format!("\t\t{r}\n"))
        .collect();
    text.push_str(&format!("table {TABLE} {{\n"));
    text.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
    );
    text.push_str(&dnat);
    text.push_str(
        "\t}\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n",
    );
    text.push_str(&dnat);
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
    }
    text.push_str(
        "\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n",
    );
    for network in networks {
        let bridge = &network.bridge;
        text.push_str(&format!(
            "\t\tiifname \"{bridge}\" accept\n\t\toifname \"{bridge}\" accept\n"
        ));
    }
    text.push_str("\t}\n}\n");
    text
}

/// Renders only the port-forwarding rules, for when containers come and go
/// but networks do not. Flushing and refilling the two DNAT chains keeps the
/// base chains registered, so the kernel need not wait for an RCU grace
/// period as it does when a table with base chains is replaced.
pub(crate) fn render_ports(ports: &[(PublishedPort, Ipv4Addr)]) -> String {
    let mut text = String::new();
    for chain in ["prerouting", "output"] {
        text.push_str(&format!("flush chain {TABLE} {chain}\n"));
        for rule in dnat_rules(ports) {
            text.push_str(&format!("add rule {TABLE} {chain} {rule}\n"));
        }
    }
    text
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

    #[test]
    fn no_networks_means_no_table() {
        assert_eq!(
            render(&[], &[]),
            format!("table {TABLE}\ndelete table {TABLE}\n")
        );
    }

    #[test]
    fn rules_cover_masquerade_and_each_published_port() {
        let net = NetworkConfig::new("web", "10.88.0.0/24".parse().unwrap(), None).unwrap();
        let ports = [
            ("8080:80".parse().unwrap(), Ipv4Addr::new(10, 88, 0, 2)),
            (
                "127.0.0.1:5353:53/udp".parse().unwrap(),
                Ipv4Addr::new(10, 88, 0, 3),
            ),
        ];
        let text = render(&[net], &ports);
        assert!(text.contains("ip saddr 10.88.0.0/24 ip daddr != 10.88.0.0/24 masquerade"));
        assert!(text.contains("fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80"));
        assert!(text.contains("ip daddr 127.0.0.1 udp dport 5353 dnat to 10.88.0.3:53"));
        assert_eq!(text.matches("dnat to").count(), 4, "prerouting and output");
        let update = render_ports(&ports);
        assert!(update.starts_with("flush chain ip containerization prerouting\n"));
        assert!(update.contains("add rule ip containerization output ip daddr 127.0.0.1 udp"));
        assert_eq!(update.matches("dnat to").count(), 4);
    }
}

//! The container's DNS settings, Docker's way: `--dns` servers when given,
//! else the host's `resolv.conf` without its loopback servers (a VM cannot
//! reach the host's 127.0.0.53), else Google's public servers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The host's resolver configuration.
const ETC_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Where systemd-resolved lists the real upstream servers when
/// `/etc/resolv.conf` points at its local stub.
const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// Docker's fallback IPv4 servers.
const FALLBACK_V4: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
];

/// Docker's fallback IPv6 servers, for containers with IPv6.
const FALLBACK_V6: [IpAddr; 2] = [
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8844)),
];

/// What goes into the container's `/etc/resolv.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    /// `nameserver` lines, in order.
    pub nameservers: Vec<IpAddr>,
    /// The `search` domains, in order.
    pub search: Vec<String>,
    /// The `options` (`ndots:2`, `edns0`, …), in order.
    pub options: Vec<String>,
}

/// The container's DNS from the host's `resolv.conf` text and the `--dns`
/// flags; `ipv6` says whether the container has IPv6.
///
/// With `--dns`, those servers are used as given. Otherwise the host's
/// servers are used without the loopback ones (127.0.0.0/8, ::1), and without
/// the IPv6 ones when the container has no IPv6; when none remain, Docker's
/// defaults 8.8.8.8 and 8.8.4.4 (plus 2001:4860:4860::8888 and ::8844 with
/// IPv6). The `search` domains and `options` always come from the host.
pub fn dns_for_container(host_resolv_conf: &str, dns_flags: &[IpAddr], ipv6: bool) -> Dns {
    let host = parse(host_resolv_conf);
    let nameservers = if dns_flags.is_empty() {
        let usable: Vec<IpAddr> = host
            .nameservers
            .iter()
            .copied()
            .filter(|ip| !ip.is_loopback() && (ipv6 || ip.is_ipv4()))
            .collect();
        if usable.is_empty() {
            let mut fallback = FALLBACK_V4.to_vec();
            if ipv6 {
                fallback.extend(FALLBACK_V6);
            }
            fallback
        } else {
            usable
        }
    } else {
        dns_flags.to_vec()
    };
    Dns {
        nameservers,
        ..host
    }
}

/// The host's `/etc/resolv.conf`, or systemd-resolved's upstream list when
/// every server in `/etc/resolv.conf` is loopback (its 127.0.0.53 stub) and
/// that list exists; empty when nothing can be read (the container then gets
/// the fallback servers).
pub fn host_resolv_conf() -> String {
    choose(Path::new(ETC_RESOLV_CONF), Path::new(SYSTEMD_RESOLV_CONF))
}

/// [`host_resolv_conf`] with the two files named.
fn choose(etc: &Path, systemd: &Path) -> String {
    let text = std::fs::read_to_string(etc).unwrap_or_default();
    if parse(&text).nameservers.iter().all(IpAddr::is_loopback)
        && let Ok(upstream) = std::fs::read_to_string(systemd)
    {
        return upstream;
    }
    text
}

/// Parses `resolv.conf` text: `nameserver`, `search`, `domain` and `options`
/// lines; comments start with `#` or `;`. Servers that are not plain
/// addresses (an IPv6 one with a `%zone`) are skipped. As in the resolver, the
/// last `search` or `domain` line wins and `options` lines add up.
fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                    dns.nameservers.push(ip);
                }
            }
            Some("search") => dns.search = words.map(str::to_owned).collect(),
            Some("domain") => dns.search = words.take(1).map(str::to_owned).collect(),
            Some("options") => dns.options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const HOST: &str = "# generated\n\
        nameserver 127.0.0.53\n\
        nameserver 192.168.1.1 ; the router\n\
        nameserver ::1\n\
        nameserver 2001:db8::53\n\
        nameserver fe80::1%eth0\n\
        domain old.example\n\
        search corp.example lab.example\n\
        options ndots:2\n\
        options edns0 trust-ad\n";

    #[test]
    fn parses_servers_search_and_options() {
        let dns = parse(HOST);
        assert_eq!(
            dns.nameservers,
            [
                ip("127.0.0.53"),
                ip("192.168.1.1"),
                ip("::1"),
                ip("2001:db8::53")
            ]
        );
        assert_eq!(dns.search, ["corp.example", "lab.example"]);
        assert_eq!(dns.options, ["ndots:2", "edns0", "trust-ad"]);
    }

    #[test]
    fn last_of_search_and_domain_wins() {
        assert_eq!(parse("search a b\ndomain c\n").search, ["c"]);
    }

    #[test]
    fn loopback_servers_are_dropped() {
        let dns = dns_for_container(HOST, &[], false);
        assert_eq!(dns.nameservers, [ip("192.168.1.1")]);
        assert_eq!(dns.search, ["corp.example", "lab.example"]);
        let dns = dns_for_container(HOST, &[], true);
        assert_eq!(dns.nameservers, [ip("192.168.1.1"), ip("2001:db8::53")]);
    }

    #[test]
    fn only_loopback_falls_back_to_googles_servers() {
        let stub = "nameserver 127.0.0.53\noptions edns0\nsearch home\n";
        let dns = dns_for_container(stub, &[], false);
        assert_eq!(dns.nameservers, [ip("8.8.8.8"), ip("8.8.4.4")]);
        assert_eq!(dns.search, ["home"]);
        assert_eq!(dns.options, ["edns0"]);
        let dns = dns_for_container("", &[], true);
        assert_eq!(
            dns.nameservers,
            [
                ip("8.8.8.8"),
                ip("8.8.4.4"),
                ip("2001:4860:4860::8888"),
                ip("2001:4860:4860::8844")
            ]
        );
    }

    #[test]
    fn dns_flags_replace_the_hosts_servers_only() {
        let dns = dns_for_container(HOST, &[ip("1.1.1.1"), ip("127.0.0.1")], false);
        assert_eq!(dns.nameservers, [ip("1.1.1.1"), ip("127.0.0.1")]);
        assert_eq!(dns.search, ["corp.example", "lab.example"]);
        assert_eq!(dns.options, ["ndots:2", "edns0", "trust-ad"]);
    }

    #[test]
    fn systemd_upstream_replaces_a_loopback_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("resolv.conf");
        let systemd = dir.path().join("upstream.conf");
        std::fs::write(&etc, "nameserver 127.0.0.53\n").unwrap();
        assert_eq!(choose(&etc, &systemd), "nameserver 127.0.0.53\n");
        std::fs::write(&systemd, "nameserver 10.0.0.1\n").unwrap();
        assert_eq!(choose(&etc, &systemd), "nameserver 10.0.0.1\n");
        std::fs::write(&etc, "nameserver 127.0.0.53\nnameserver 10.0.0.2\n").unwrap();
        assert_eq!(
            choose(&etc, &systemd),
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\n"
        );
    }
}

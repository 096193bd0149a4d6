//! Values of `run` and `create` flags checked as clap parses them, so a bad
//! one ends the command with Docker's 125 before anything is pulled or made:
//! `--cpus`, `--memory` and `--publish` (whose bare `CONTAINER_PORT` form
//! takes a free host port, as Docker's does).

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::str::FromStr;

use anyhow::Context;
use containerization::host::HostResources;
use containerization::network::{Protocol, PublishedPort};
use containerization::spec;

/// `--cpus`: a number of CPUs above 0 and at most this host's.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of CPUs, such as 1 or 1.5"))?;
    let host = HostResources::detect().cpus;
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(format!(
            "{text:?}: the number of CPUs must be above 0 (this host has {host})"
        ));
    }
    if cpus > host as f64 {
        return Err(format!(
            "{text:?}: this host has {host} CPUs; ask for at most that many"
        ));
    }
    Ok(cpus)
}

/// `--memory`: a size such as 512m or 1g, in bytes (0 means no limit), at
/// most this host's memory (a container's VM cannot be given more).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    if text.trim_start().starts_with('-') {
        return Err(format!(
            "{text:?}: a memory limit must be positive, such as 512m or 1g"
        ));
    }
    let bytes = spec::parse_memory(text.trim()).map_err(|e| e.to_string())?;
    HostResources::detect()
        .check_memory_limit(bytes)
        .map_err(|e| format!("{text:?}: {e}"))?;
    Ok(bytes)
}

/// A `--publish` flag: a full publication, or only a container port whose
/// host port is chosen when the container is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortFlag {
    /// `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]`.
    Fixed(PublishedPort),
    /// `CONTAINER_PORT[/PROTOCOL]`: any free host port.
    ContainerOnly {
        /// The container port.
        port: u16,
        /// TCP or UDP.
        protocol: Protocol,
    },
}

impl FromStr for PortFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (port, protocol) = match text.rsplit_once('/') {
            Some((port, "tcp")) => (port, Protocol::Tcp),
            Some((port, "udp")) => (port, Protocol::Udp),
            _ => (text, Protocol::Tcp),
        };
        if port.contains(':')
            || text
                .rsplit_once('/')
                .is_some_and(|(_, p)| p != "tcp" && p != "udp")
        {
            return text
                .parse::<PublishedPort>()
                .map(Self::Fixed)
                .map_err(|e| e.to_string());
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok(Self::ContainerOnly { port, protocol }),
            _ => Err(format!(
                "invalid published port {text:?}: {port:?} is not a port from 1 to 65535; \
                 expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp] or CONTAINER_PORT"
            )),
        }
    }
}

impl PortFlag {
    /// The publication, a container-only one given a host port that is free
    /// now (the kernel's choice of an ephemeral port).
    pub fn resolve(&self) -> anyhow::Result<PublishedPort> {
        match *self {
            Self::Fixed(port) => Ok(port),
            Self::ContainerOnly { port, protocol } => {
                let any = (Ipv4Addr::UNSPECIFIED, 0);
                let host_port = match protocol {
                    Protocol::Tcp => TcpListener::bind(any).and_then(|l| l.local_addr()),
                    Protocol::Udp => UdpSocket::bind(any).and_then(|s| s.local_addr()),
                }
                .with_context(|| format!("cannot find a free host port to publish {port}"))?
                .port();
                Ok(PublishedPort {
                    host_ip: None,
                    host_port,
                    container_port: port,
                    protocol,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_are_above_zero_and_at_most_the_hosts() {
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("nan").is_err());
        assert!(parse_cpus("100000").is_err());
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
    }

    #[test]
    fn memory_is_a_positive_size() {
        assert!(parse_memory("-5m").is_err());
        assert!(parse_memory("lots").is_err());
        assert_eq!(parse_memory("2m").unwrap(), 2 << 20);
        let host = HostResources::detect().memory_bytes;
        let too_much = format!("{}", host + 1);
        let err = parse_memory(&too_much).unwrap_err();
        assert!(err.contains("this host has"), "{err}");
    }

    #[test]
    fn a_bare_container_port_gets_a_free_host_port() {
        assert!("99999:80".parse::<PortFlag>().is_err());
        assert!("0".parse::<PortFlag>().is_err());
        assert!("80/sctp".parse::<PortFlag>().is_err());
        let flag: PortFlag = "80/udp".parse().unwrap();
        let port = flag.resolve().unwrap();
        assert_eq!(port.container_port, 80);
        assert_eq!(port.protocol, Protocol::Udp);
        assert_ne!(port.host_port, 0);
        let fixed: PortFlag = "8080:80".parse().unwrap();
        assert_eq!(fixed.resolve().unwrap().host_port, 8080);
    }
}

//! Published ports: `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`, as Docker writes them.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// A host port forwarded to a container port.
///
/// ```
/// use containerization::network::PublishedPort;
///
/// let port: PublishedPort = "127.0.0.1:8080:80/udp".parse().unwrap();
/// assert_eq!(port.to_string(), "127.0.0.1:8080:80/udp");
/// assert_eq!("8080:80".parse::<PublishedPort>().unwrap().to_string(), "8080:80/tcp");
/// assert!("80".parse::<PublishedPort>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublishedPort {
    /// The host address it listens on; every local address when `None`.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl PublishedPort {
    /// Whether two publications would claim the same host port.
    pub fn conflicts_with(&self, other: &PublishedPort) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

impl FromStr for PublishedPort {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |why: &str| {
            Error::InvalidPort(format!(
                "{text:?}: {why}; expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]"
            ))
        };
        let (ports, protocol) = match text.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some(_) => return Err(invalid("the protocol must be tcp or udp")),
            None => (text, Protocol::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host, container) = match parts.as_slice() {
            [host, container] => (None, *host, *container),
            [ip, host, container] => (
                Some(
                    ip.parse()
                        .map_err(|_| invalid("the host address is not IPv4"))?,
                ),
                *host,
                *container,
            ),
            _ => return Err(invalid("a host port and a container port are needed")),
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(invalid(&format!("{p:?} is not a port from 1 to 65535"))),
            Ok(n) => Ok(n),
        };
        Ok(Self {
            host_ip,
            host_port: port(host)?,
            container_port: port(container)?,
            protocol,
        })
    }
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.host_ip {
            write!(f, "{ip}:")?;
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

impl TryFrom<String> for PublishedPort {
    type Error = Error;

    fn try_from(text: String) -> Result<Self, Error> {
        text.parse()
    }
}

impl From<PublishedPort> for String {
    fn from(port: PublishedPort) -> String {
        port.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_publications_are_refused_naming_them() {
        for bad in [
            "80",
            "a:80",
            "0:80",
            "8080:70000",
            "1.2.3:80:80",
            "8080:80/sctp",
            "::80:80",
        ] {
            let err = bad.parse::<PublishedPort>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn conflicts_follow_protocol_port_and_address() {
        let p = |s: &str| s.parse::<PublishedPort>().unwrap();
        assert!(p("8080:80").conflicts_with(&p("127.0.0.1:8080:81")));
        assert!(!p("8080:80").conflicts_with(&p("8080:80/udp")));
        assert!(!p("127.0.0.1:8080:80").conflicts_with(&p("127.0.0.2:8080:80")));
    }
}

//! Published ports: `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`, as Docker writes them.

use std::fmt;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
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

    /// Refuses the port if a program on the host has it bound already
    /// ("address already in use"), as Docker does: the DNAT rules would take
    /// the host's own connections to that port away from the program.
    ///
    /// The check binds the host address (`0.0.0.0` when none is given) and
    /// port with the publication's protocol, in the calling thread's network
    /// namespace, and closes the socket at once. Keeping the socket open for
    /// as long as the port is published, as Docker's proxy does, would also
    /// stop a program that starts listening later; but the socket would have
    /// to travel with the attachment into the process that owns the VM, and
    /// a publication outlives that process when it dies (until the lease is
    /// reclaimed), so the guarantee would still have a hole. The check
    /// refuses what the user can act on, a port already taken, with nothing
    /// to keep.
    ///
    /// A TCP bind uses `SO_REUSEADDR` (the standard library sets it), so only
    /// a listening socket refuses it, never connections still in TIME_WAIT;
    /// the socket listens for the instant it exists, and a connection that
    /// arrives in that instant is reset. A UDP bind does not, so any bound
    /// socket refuses it. Other errors (an address not on this host, a port
    /// below 1024 without the right to bind it) say nothing about the port
    /// being taken, and leave the publication to the DNAT rules as before.
    pub(crate) fn check_host_port_free(&self) -> Result<(), Error> {
        let address = (
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
        );
        let bound = match self.protocol {
            Protocol::Tcp => TcpListener::bind(address).map(drop),
            Protocol::Udp => UdpSocket::bind(address).map(drop),
        };
        match bound {
            Err(e) if e.kind() == ErrorKind::AddrInUse => Err(Error::InvalidPort(format!(
                "{self}: host port {}:{}/{} is taken: address already in use; stop the \
                 program listening on it or publish another host port",
                address.0, address.1, self.protocol
            ))),
            _ => Ok(()),
        }
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

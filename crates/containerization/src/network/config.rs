//! A named network: a bridge with a subnet and a gateway address.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The longest network name: the bridge is `cz-<name>`, and interface names
/// stop at 15 bytes.
const MAX_NAME: usize = 12;

/// A network as stored in `network/networks/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// The network's name.
    pub name: String,
    /// The host bridge carrying it.
    pub bridge: String,
    /// Its subnet.
    pub subnet: Ipv4Net,
    /// The host's address on the bridge, the containers' gateway.
    pub gateway: Ipv4Addr,
}

impl NetworkConfig {
    /// A network `name` on `subnet`; the gateway defaults to the first host address.
    pub fn new(name: &str, subnet: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<Self, Error> {
        check_name(name)?;
        if subnet.trunc() != subnet {
            return Err(Error::InvalidNetwork(format!(
                "{subnet} is not a network address; did you mean {}?",
                subnet.trunc()
            )));
        }
        if subnet.prefix_len() > 30 {
            return Err(Error::InvalidNetwork(format!(
                "subnet {subnet} is too small: use a /30 or larger"
            )));
        }
        let first = subnet.hosts().next().ok_or_else(|| {
            Error::InvalidNetwork(format!("subnet {subnet} has no host addresses"))
        })?;
        let gateway = gateway.unwrap_or(first);
        if !subnet.hosts().any(|h| h == gateway) {
            return Err(Error::InvalidNetwork(format!(
                "gateway {gateway} is not a host address of {subnet}"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            bridge: format!("cz-{name}"),
            subnet,
            gateway,
        })
    }
}

/// Network names: 1 to 12 lowercase letters, digits, `-` or `_`, starting
/// with a letter or digit.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !first_ok || !rest_ok || name.len() > MAX_NAME {
        return Err(Error::InvalidNetwork(format!(
            "invalid network name {name:?}: 1 to {MAX_NAME} lowercase letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_defaults_to_the_first_host() {
        let net = NetworkConfig::new("web", "10.88.0.0/24".parse().unwrap(), None).unwrap();
        assert_eq!(net.gateway, Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(net.bridge, "cz-web");
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let cases = [
            ("Web", "10.0.0.0/24", None, "invalid network name"),
            (
                "a-name-too-long",
                "10.0.0.0/24",
                None,
                "invalid network name",
            ),
            ("x", "10.0.0.5/24", None, "did you mean 10.0.0.0/24"),
            ("x", "10.0.0.0/31", None, "too small"),
            ("x", "10.0.0.0/24", Some("10.0.1.1"), "not a host address"),
            ("x", "10.0.0.0/24", Some("10.0.0.255"), "not a host address"),
        ];
        for (name, subnet, gateway, expected) in cases {
            let err = NetworkConfig::new(
                name,
                subnet.parse().unwrap(),
                gateway.map(|g| g.parse().unwrap()),
            )
            .unwrap_err();
            assert!(err.to_string().contains(expected), "{name} {subnet}: {err}");
        }
    }
}

//! A named network: a bridge with a subnet and a gateway address.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The longest network name: the bridge is `cz-<name>`, and interface names
/// stop at 15 bytes.
const MAX_NAME: usize = 64;

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
    /// Its IPv6 subnet, if it has one (a unique local /64 such as `fd00:1::/64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Ipv6Net>,
    /// The host's IPv6 address on the bridge, with `subnet6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// Labels given when it was made (Docker's; Compose names its project
    /// in them).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
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
            bridge: super::host_names::system_bridge(name),
            subnet,
            gateway,
            subnet6: None,
            gateway6: None,
            labels: std::collections::BTreeMap::new(),
        })
    }

    /// Adds IPv6 `subnet6` to the network; the gateway defaults to the
    /// subnet's `::1` address.
    pub fn with_ipv6(
        mut self,
        subnet6: Ipv6Net,
        gateway6: Option<Ipv6Addr>,
    ) -> Result<Self, Error> {
        if subnet6.trunc() != subnet6 {
            return Err(Error::InvalidNetwork(format!(
                "{subnet6} is not a network address; did you mean {}?",
                subnet6.trunc()
            )));
        }
        if subnet6.prefix_len() > 126 {
            return Err(Error::InvalidNetwork(format!(
                "IPv6 subnet {subnet6} is too small: use a /126 or larger (a /64 is usual)"
            )));
        }
        let network = subnet6.network();
        let gateway6 = gateway6.unwrap_or_else(|| Ipv6Addr::from(u128::from(network) + 1));
        if !subnet6.contains(&gateway6) || gateway6 == network {
            return Err(Error::InvalidNetwork(format!(
                "IPv6 gateway {gateway6} is not a host address of {subnet6}"
            )));
        }
        self.subnet6 = Some(subnet6);
        self.gateway6 = Some(gateway6);
        Ok(self)
    }

    /// The network's id: 64 hexadecimal digits (Docker's shape), the same
    /// for as long as the network lives, another for a network made again
    /// on another bridge or subnet.
    ///
    /// ```
    /// use containerization::network::NetworkConfig;
    ///
    /// let net = NetworkConfig::new("web", "10.9.0.0/24".parse().unwrap(), None).unwrap();
    /// assert_eq!(net.id().len(), 64);
    /// assert_eq!(net.id(), net.clone().id());
    /// ```
    pub fn id(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::new()
            .chain_update(b"containerization network\0")
            .chain_update(self.name.as_bytes())
            .chain_update(b"\0")
            .chain_update(self.bridge.as_bytes())
            .chain_update(b"\0")
            .chain_update(self.subnet.to_string().as_bytes())
            .finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Network names: 1 to 64 lowercase letters, digits, `-` or `_`, starting
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
    fn an_ipv6_subnet_gets_its_first_address_as_gateway() {
        let net = NetworkConfig::new("web", "10.88.0.0/24".parse().unwrap(), None)
            .unwrap()
            .with_ipv6("fd00:88::/64".parse().unwrap(), None)
            .unwrap();
        assert_eq!(net.gateway6, Some("fd00:88::1".parse().unwrap()));
        let base = NetworkConfig::new("x", "10.0.0.0/24".parse().unwrap(), None).unwrap();
        for (subnet, gateway, expected) in [
            ("fd00::1/64", None, "did you mean fd00::/64"),
            ("fd00::/127", None, "too small"),
            ("fd00::/64", Some("fd01::1"), "not a host address"),
            ("fd00::/64", Some("fd00::"), "not a host address"),
        ] {
            let err = base
                .clone()
                .with_ipv6(subnet.parse().unwrap(), gateway.map(|g| g.parse().unwrap()))
                .unwrap_err();
            assert!(err.to_string().contains(expected), "{subnet}: {err}");
        }
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let cases = [
            ("Web", "10.0.0.0/24", None, "invalid network name"),
            (
                "a-name-longer-than-sixty-four-bytes-is-refused-because-it-is-far-too-long",
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

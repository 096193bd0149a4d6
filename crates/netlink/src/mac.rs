//! Ethernet hardware addresses.

use std::fmt;
use std::str::FromStr;

use crate::NetlinkError;

/// A 48-bit Ethernet MAC address.
///
/// ```
/// use containerization_netlink::MacAddress;
///
/// let mac: MacAddress = "02:42:ac:11:00:02".parse().unwrap();
/// assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
/// assert!(mac.is_locally_administered());
/// assert!("02:42".parse::<MacAddress>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// The address with these bytes.
    pub const fn new(bytes: [u8; 6]) -> Self {
        Self(bytes)
    }

    /// A locally administered unicast address made from the first six bytes of
    /// `seed` (for example a hash of a container id): stable for a seed, and
    /// never a vendor's address or a multicast one.
    pub fn local_from_seed(seed: [u8; 6]) -> Self {
        let mut bytes = seed;
        bytes[0] = (bytes[0] & 0xfc) | 0x02;
        Self(bytes)
    }

    /// The six bytes.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether the locally administered bit is set.
    pub const fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The address from a netlink attribute, if it has six bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 6]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddress {
    type Err = NetlinkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            NetlinkError::Invalid(format!(
                "invalid MAC address {text:?}: expected six hex pairs like 02:42:ac:11:00:02"
            ))
        };
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 {
                return Err(invalid());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self(bytes))
    }
}

/// Written as its text (`02:42:ac:11:00:02`), as records on disk keep it.
impl serde::Serialize for MacAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read from its text; anything else is refused with the parser's message.
impl<'de> serde::Deserialize<'de> for MacAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_writes_and_reads_the_text() {
        let mac: MacAddress = "02:42:ac:11:00:02".parse().unwrap();
        let json = serde_json::to_string(&mac).unwrap();
        assert_eq!(json, "\"02:42:ac:11:00:02\"");
        assert_eq!(serde_json::from_str::<MacAddress>(&json).unwrap(), mac);
        let bad = serde_json::from_str::<MacAddress>("\"02:42\"").unwrap_err();
        assert!(bad.to_string().contains("invalid MAC address"), "{bad}");
    }

    #[test]
    fn parses_and_prints_round_trip() {
        let mac: MacAddress = "AA:bb:0C:dd:ee:0f".parse().unwrap();
        assert_eq!(mac.octets(), [0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0x0f]);
        assert_eq!(mac.to_string(), "aa:bb:0c:dd:ee:0f");
    }

    #[test]
    fn rejects_malformed_addresses_naming_them() {
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:gg",
            "a:b:c:d:e:f",
        ] {
            let err = bad.parse::<MacAddress>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn seeded_addresses_are_local_unicast() {
        let mac = MacAddress::local_from_seed([0xff; 6]);
        assert_eq!(mac.octets()[0], 0xfe);
        assert!(mac.is_locally_administered());
        assert_eq!(mac.octets()[0] & 1, 0, "unicast");
    }
}

//! Container identifiers.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The longest container id accepted.
const MAX_LEN: usize = 128;

/// A container's id: 1 to 128 characters from `[A-Za-z0-9_.-]`, starting with
/// a letter or digit, so it is safe as a file name and in messages.
///
/// ```
/// use containerization::ContainerId;
///
/// let id: ContainerId = "web-1".parse().unwrap();
/// assert_eq!(id.as_str(), "web-1");
/// assert!("../etc".parse::<ContainerId>().is_err());
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    /// A new id: 64 hexadecimal digits from the kernel's random source.
    pub fn random() -> Result<Self, Error> {
        use std::io::Read;
        let path = std::path::Path::new("/dev/urandom");
        let mut bytes = [0u8; 32];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        hex.parse()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerId {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let mut chars = text.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !first_ok || !rest_ok || text.len() > MAX_LEN {
            return Err(Error::InvalidContainerId(text.to_owned()));
        }
        Ok(Self(text.to_owned()))
    }
}

impl TryFrom<String> for ContainerId {
    type Error = Error;

    fn try_from(text: String) -> Result<Self, Error> {
        text.parse()
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_docker_style_ids_and_rejects_paths() {
        for good in ["a", "web-1", "0f3c.x_y", &"a".repeat(128)] {
            assert!(good.parse::<ContainerId>().is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "../x", "a b", &"a".repeat(129)] {
            let err = bad.parse::<ContainerId>().unwrap_err();
            assert!(matches!(err, Error::InvalidContainerId(_)), "{bad}");
        }
    }
}

//! The one error type of this crate.

/// Everything that can go wrong in `containerization`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No state root could be chosen: the user is not root, `CZ_ROOT` is unset,
    /// and neither `XDG_DATA_HOME` nor `HOME` is set.
    #[error(
        "cannot choose a state folder: set CZ_ROOT, or XDG_DATA_HOME or HOME \
         (root uses /var/lib/containerization)"
    )]
    NoStateRoot,
    /// A container id is malformed.
    #[error(
        "invalid container id {0:?}: use 1 to 128 letters, digits, '_', '.' or '-', \
         starting with a letter or digit"
    )]
    InvalidContainerId(String),
    /// A network's settings are inconsistent.
    #[error("invalid network: {0}")]
    InvalidNetwork(String),
    /// Every address of a subnet is leased.
    #[error("no free address left in {subnet}: {leases} containers hold leases")]
    SubnetFull {
        /// The subnet.
        subnet: ipnet::Ipv4Net,
        /// How many leases it has.
        leases: usize,
    },
    /// A state file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A state file holds something this version cannot read; it is left as is.
    #[error("{path} is corrupt ({detail}); it was left untouched, move it away to start afresh")]
    CorruptState {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A network of that name exists already.
    #[error("network {0:?} already exists")]
    NetworkExists(String),
    /// No network has that name.
    #[error("no network named {0:?}; `cctl network ls` lists them")]
    NetworkNotFound(String),
    /// A network still has containers attached.
    #[error("network {name:?} is in use by {containers}; remove them first")]
    NetworkInUse {
        /// The network.
        name: String,
        /// The containers, comma-separated.
        containers: String,
    },
    /// A subnet overlaps one the host already routes.
    #[error("subnet {subnet} overlaps {with}; choose another with --subnet")]
    SubnetOverlap {
        /// The subnet asked for.
        subnet: ipnet::Ipv4Net,
        /// What it overlaps, as a user would name it.
        with: String,
    },
    /// A port publication is malformed.
    #[error("invalid published port {0}")]
    InvalidPort(String),
    /// A host port is published already.
    #[error("host port {port} is already published for container {container}")]
    PortInUse {
        /// The publication asked for.
        port: String,
        /// The container holding it.
        container: String,
    },
    /// The container has no address on the network.
    #[error("container {container} is not attached to network {network:?}")]
    NotAttached {
        /// The container.
        container: String,
        /// The network.
        network: String,
    },
    /// nftables refused the project's ruleset.
    #[error("nftables refused the ruleset: {detail}\nthe ruleset was:\n{ruleset}")]
    Firewall {
        /// What nft said.
        detail: String,
        /// The ruleset it was given.
        ruleset: String,
    },
    /// A netlink operation failed.
    #[error(transparent)]
    Netlink(#[from] containerization_netlink::NetlinkError),
    /// A VM-layer operation failed.
    #[error(transparent)]
    Vmm(#[from] containerization_vmm::VmmError),
}

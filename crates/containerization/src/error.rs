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
    /// A VM-layer operation failed.
    #[error(transparent)]
    Vmm(#[from] containerization_vmm::VmmError),
}

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
    /// An image operation failed (store, registry, layers).
    #[error(transparent)]
    Oci(#[from] containerization_oci::Error),
    /// Building or reading an ext4 root file system failed.
    #[error(transparent)]
    Ext4(#[from] containerization_ext4::Error),
    /// A call to the guest agent failed.
    #[error(transparent)]
    Agent(#[from] containerization_agent::AgentError),
    /// A root file system could not be built, cached or cloned.
    #[error("root file system for {image}: {detail}")]
    Rootfs {
        /// The image (its manifest digest) or the file involved.
        image: String,
        /// What went wrong and what to do.
        detail: String,
    },
    /// An image's platform cannot run here.
    #[error("image platform {platform} cannot run: {detail}")]
    UnsupportedPlatform {
        /// The platform (`linux/z80`).
        platform: String,
        /// Why, and what would make it run.
        detail: String,
    },
    /// An option given for a container or process is invalid.
    #[error("invalid {option}: {detail}")]
    InvalidOption {
        /// The option, as the user wrote it (`--env-file`, `--user`, …).
        option: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No container has that name or id.
    #[error("no such container: {0}")]
    ContainerNotFound(String),
    /// A container's records cannot be read: it is listed as dead and can
    /// only be removed.
    #[error(
        "container {id} is dead: {detail}; `cctl rm {id}` removes it and releases what it held"
    )]
    ContainerDamaged {
        /// Its id.
        id: String,
        /// What is wrong with its records.
        detail: String,
    },
    /// A container of that name exists already.
    #[error("the container name {0:?} is already in use; remove it or choose another")]
    NameInUse(String),
    /// No pod has that name or id.
    #[error("no such pod: {0}; `cctl pod ls` lists them")]
    PodNotFound(String),
    /// A pod of that name exists already.
    #[error("the pod name {0:?} is already in use; remove it or choose another")]
    PodNameInUse(String),
    /// The pod is not in a state that allows the operation.
    #[error("pod {pod} is {state}: {detail}")]
    PodState {
        /// The pod.
        pod: String,
        /// Its state.
        state: String,
        /// What cannot be done, and what to do instead.
        detail: String,
    },
    /// The pod's owner refused or failed a request (a disk to attach, say).
    #[error("pod {pod}: {detail}")]
    PodRequest {
        /// The pod.
        pod: String,
        /// What failed.
        detail: String,
    },
    /// The container is not in a state that allows the operation.
    #[error("container {container} is {state}: {detail}")]
    InvalidState {
        /// The container.
        container: String,
        /// Its state.
        state: String,
        /// What cannot be done, and what to do instead.
        detail: String,
    },
    /// A path a copy names is not in the container (Docker's message).
    #[error("Could not find the file {path} in container {container}")]
    PathNotInContainer {
        /// The path, as the container sees it.
        path: String,
        /// The container, as the user named it.
        container: String,
    },
    /// A copy that Docker's rules refuse ("cannot copy a directory to a
    /// file", "destination directory does not exist", a host path that is
    /// not there).
    #[error("{0}")]
    CopyRefused(String),
    /// A copy's archive could not be made or unpacked on the host.
    #[error(transparent)]
    Archive(#[from] containerization_archive::ArchiveError),
    /// The container's program is not of an architecture this VM runs:
    /// no emulator is registered for it (the image's platform names another
    /// architecture than its binaries). Podman's exit code 1.
    #[error("{0}")]
    ExecFormat(String),
    /// The container's process could not be started because its program is
    /// missing (Docker's exit code 127).
    #[error("{0}")]
    CommandNotFound(String),
    /// The container's program exists but cannot be run (Docker's 126).
    #[error("{0}")]
    CommandNotRunnable(String),
    /// The static vminitd for the guest is nowhere to be found.
    #[error(
        "no static vminitd: build it with `{build}` and copy \
         target/x86_64-unknown-linux-musl/{profile}/vminitd to {installed}, or set CZ_VMINITD"
    )]
    MissingVminitd {
        /// Where an installed one would be (`tools/bin/vminitd`).
        installed: std::path::PathBuf,
        /// The cargo command that builds one of this program's profile.
        build: &'static str,
        /// That profile: `release` or `debug`.
        profile: &'static str,
    },
    /// A folder this user must own alone belongs to someone else, or is not
    /// a folder.
    #[error(
        "{path} is not a folder owned by you (uid {user}; it belongs to uid {owner}, or is a \
         symlink or a file): another user may have made it to reach your containers; \
         refusing to use it. Remove it, or set XDG_RUNTIME_DIR or CZ_ROOT elsewhere"
    )]
    NotOurFolder {
        /// The folder.
        path: std::path::PathBuf,
        /// Its owner.
        owner: u32,
        /// This user.
        user: u32,
    },
}

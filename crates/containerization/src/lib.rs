//! Run Linux containers, each in its own lightweight virtual machine.
//!
//! This is the façade of the project: it will hold `ContainerManager`,
//! `LinuxContainer` and `LinuxProcess`, the root file system cache, host
//! networking and container state. What works today is the **state root** (the
//! one folder that holds the content store, root file systems, containers,
//! kernels and the project's helper tools), [`ContainerId`], and address
//! leases in [`network::Ipam`].
//!
//! ```
//! use containerization::StateRoot;
//!
//! let root = StateRoot::new("/srv/cz");
//! assert_eq!(root.kernels().dir(), std::path::Path::new("/srv/cz/kernels"));
//! ```

mod container;
mod container_id;
pub mod emulation;
mod error;
pub mod host;
pub mod network;
pub mod pod;
mod private_dir;
pub mod rootfs;
pub mod spec;
mod state_file;
mod state_root;
pub mod volume;

pub use container::{
    BundleOptions, ContainerConfig, ContainerManager, ContainerState, ContainerStore, CopyOptions,
    CreateOptions, DEFAULT_NETWORK, DamagedContainer, ExitStatus, Found, LinuxContainer,
    LinuxProcess, LogReader, LogRecord, LogStream, LogWriter, MAX_NETWORKS, NetworkJoin,
    NetworkMode, PathInfo, PathKind, PodTmpfs, ProcessStreams, RestartPolicy, Statistics, Status,
    StdioConfig, VolumeUse, log_lines, log_tail, parse_signal,
};
pub use container_id::ContainerId;
/// The host end of one of a process's standard streams.
pub use containerization_agent::BoxedStream;
pub use error::Error;
pub use state_root::StateRoot;

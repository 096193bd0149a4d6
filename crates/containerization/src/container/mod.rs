//! Containers: each one a process tree in its own VM, made from an image.
//!
//! - [`ContainerManager`] creates containers from images in the image store
//!   (the base root file system is built once per image, each container gets
//!   a writable clone), and finds them again by name or id;
//! - [`LinuxContainer`] starts, waits on, stops, kills, execs into, resizes
//!   and deletes one; [`LinuxProcess`] is one of its processes;
//! - its configuration and state live under `containers/<id>/` and survive
//!   the process that made them ([`ContainerStore`]); a detached container's
//!   output goes to a log ([`LogWriter`], [`LogReader`]);
//! - a container whose records cannot be read is listed as dead
//!   ([`DamagedContainer`]) and can still be removed.

mod bundle;
mod copy;
mod damaged;
mod in_pod;
mod linux_container;
mod log;
mod manager;
mod neighbours;
pub(crate) mod owner;
mod process;
mod record;
mod restart;
pub(crate) mod sandbox;
mod store;

pub use bundle::BundleOptions;
pub use copy::{CopyOptions, PathInfo, PathKind};
pub use linux_container::{LinuxContainer, Statistics};
pub use log::{LogReader, LogRecord, LogStream, LogWriter, lines as log_lines, tail as log_tail};
pub(crate) use manager::Inner;
pub(crate) use manager::check_name;
pub use manager::{
    ContainerManager, CreateOptions, DEFAULT_NETWORK, Found, MAX_NETWORKS, parse_signal,
};
pub use process::{ExitStatus, LinuxProcess, ProcessStreams, StdioConfig};
pub(crate) use record::now_ms;
pub use record::{
    ContainerConfig, ContainerState, NetworkJoin, NetworkMode, PodTmpfs, Status, VolumeUse,
};
pub use restart::RestartPolicy;
pub(crate) use store::new_id;
pub use store::{ContainerStore, DamagedContainer};

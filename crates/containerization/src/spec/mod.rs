//! The container's OCI runtime spec from an image config and run options,
//! Docker's way.
//!
//! Everything here is a pure function of its inputs (the image's config, the
//! options the user gave, and, where Docker reads the host, a closure or a
//! string standing for it), so each of Docker's rules has a unit test beside
//! it. The host sends the resulting [`oci_spec::runtime::Spec`] to `vminitd`,
//! which launches the container's process from it inside the VM.
//!
//! - [`process()`]: the command (Entrypoint and Cmd merged as `docker run`
//!   does), environment, working folder and user.
//! - [`container_spec`]: the whole spec: the process plus hostname, root,
//!   Docker's default mounts, namespaces (no network namespace: the VM's
//!   network is the container's), masked and read-only paths and resource
//!   limits.
//! - [`parse_memory`] and [`parse_env_file`]: Docker's `--memory` and
//!   `--env-file` syntaxes.
//! - [`dns_for_container`] and [`hosts_entries`]: what goes into the
//!   container's `/etc/resolv.conf` and `/etc/hosts`.
//!
//! ```
//! use containerization::spec::{ContainerOptions, ProcessOptions, container_spec};
//! use oci_spec::image::ImageConfiguration;
//!
//! let image: ImageConfiguration = serde_json::from_str(
//!     r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
//!        "config":{"Cmd":["sh"]}}"#,
//! )?;
//! let options = ContainerOptions {
//!     hostname: "web".into(),
//!     process: ProcessOptions { args: vec!["echo".into(), "hi".into()], ..Default::default() },
//!     ..Default::default()
//! };
//! let spec = container_spec(&image, &options, &|_| None)?;
//! let process = spec.process().as_ref().ok_or("no process")?;
//! assert_eq!(process.args().as_deref(), Some(&["echo".to_string(), "hi".to_string()][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod args;
mod container;
mod defaults;
mod dns;
mod env;
mod env_file;
mod exec;
mod hosts;
mod mounts;
mod process;
mod resources;
mod user;

pub use container::{ContainerOptions, container_spec, stop_signal};
pub use dns::{Dns, dns_for_container, host_resolv_conf};
pub use env_file::parse_env_file;
pub use exec::exec_process;
pub use hosts::hosts_entries;
pub use mounts::{
    BindMount, GUEST_SHARES, Mount, TmpfsMount, VolumeMount, guest_pod_tmpfs_path,
    guest_share_path, guest_volume_path,
};
pub use process::{ProcessOptions, process};
pub use resources::parse_memory;

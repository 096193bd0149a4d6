//! The host–guest API of containerization.
//!
//! One versioned protocol, `containerization.sandbox.v1`
//! (`proto/containerization/sandbox/v1/sandbox.proto`), is the whole contract
//! between the host and `vminitd` inside each VM. This crate holds its
//! generated tonic code ([`proto`]), a typed client ([`AgentClient`]) whose
//! errors say which call failed and why, and the transports behind one
//! [`Connector`] trait:
//!
//! - [`VsockConnector`]: AF_VSOCK to a guest CID (the kernel's vhost-vsock);
//! - [`HybridVsockConnector`]: a unix socket speaking `CONNECT <port>\n` →
//!   `OK <port>\n` (`vhost-device-vsock`, Firecracker, Cloud Hypervisor);
//! - [`UnixConnector`]: a plain unix socket, for running the agent on a host
//!   in tests;
//! - [`mux`]: the serial transport, yamux over one virtio-serial port, which
//!   the host side serves as a hybrid vsock socket (so [`HybridVsockConnector`]
//!   dials it) and which, unlike vhost-user vsock, survives a VM snapshot.
//!
//! A process runs in the guest itself, in a new container (its
//! `CreateProcessRequest` carries a `ContainerSpec`: an OCI runtime spec as
//! JSON and a rootfs folder), or inside a running container (an `ExecSpec`:
//! the container's first process id and an OCI `process` object). Its
//! standard streams, and the tar streams of `copy_in` and `copy_out`, are
//! connections of their own that the agent dials.
//!
//! The guest's network is set up through netlink in the guest: `link_set`,
//! `address_add`, `route_add`, or `configure_interface` for the usual case
//! (address, MTU, up, default route), naming the interface with an
//! [`proto::v1::InterfaceSelector`] by name or by the MAC the host gave its
//! NIC. A missing interface is [`AgentError::NotFound`], an address or route
//! already there [`AgentError::AlreadyExists`], each naming the interface.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use containerization_agent::{AgentClient, Connector, UnixConnector};
//!
//! # async fn demo() -> Result<(), containerization_agent::AgentError> {
//! let connector: Arc<dyn Connector> = Arc::new(UnixConnector::new("/run/vminitd.sock"));
//! let agent = AgentClient::connect(&connector, Duration::from_secs(5)).await?;
//! let version = agent.version().await?;
//! println!("guest kernel {}", version.release);
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod interface;
pub mod mux;
mod transport;

pub use client::AgentClient;
pub use error::AgentError;
pub use transport::{
    AGENT_PORT, BoxedStream, Connector, HOST_CID, HybridVsockConnector, IoStream, READY_PORT,
    UnixConnector, VsockConnector,
};

/// The generated protocol: messages, the client and the server trait.
pub mod proto {
    /// Version 1 of the sandbox protocol.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("containerization.sandbox.v1");
    }
}

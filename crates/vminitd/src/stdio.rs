//! Standard streams: each one a connection the agent dials to the host.
//!
//! Over vsock the socket itself becomes the process's descriptor, so output
//! goes straight from the process to the host with the kernel's flow
//! control and no copy in vminitd; end of file on the host's side is end of
//! stdin here. Over the serial transport the descriptor is one end of a
//! socket pair that vminitd copies to and from the multiplexed stream, with
//! the same end-of-file rules.

use std::os::fd::OwnedFd;

use containerization_agent::HOST_CID;
use containerization_agent::proto::v1::{StreamEndpoint, stream_endpoint::Target};

/// Dials the host end of one stream. Blocking: call from a blocking task.
pub(crate) fn connect(endpoint: &StreamEndpoint) -> std::io::Result<Option<OwnedFd>> {
    match &endpoint.target {
        None => Ok(None),
        Some(Target::VsockPort(port)) => {
            if let Some(dialer) = crate::serial::dialer() {
                return crate::serial::dial_as_socket(dialer, *port).map(Some);
            }
            let stream = vsock::VsockStream::connect_with_cid_port(HOST_CID, *port)?;
            Ok(Some(OwnedFd::from(stream)))
        }
        Some(Target::UnixPath(path)) => {
            let stream = std::os::unix::net::UnixStream::connect(path).map_err(|err| {
                std::io::Error::new(err.kind(), format!("cannot connect to {path}: {err}"))
            })?;
            Ok(Some(OwnedFd::from(stream)))
        }
    }
}

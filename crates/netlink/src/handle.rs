//! The connection: one netlink socket, reused for every request.

use crate::NetlinkError;

/// A connection to the kernel's routing netlink interface.
///
/// It is bound to the network namespace of the thread that calls
/// [`Netlink::connect`], and must be created inside a tokio runtime, which runs
/// its socket. Cloning is cheap and shares the socket.
#[derive(Debug, Clone)]
pub struct Netlink {
    pub(crate) handle: rtnetlink::Handle,
}

impl Netlink {
    /// Opens the socket and starts serving it on the current tokio runtime.
    pub fn connect() -> Result<Self, NetlinkError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetlinkError::Io {
                what: "cannot open a netlink socket".to_owned(),
                source,
            })?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            NetlinkError::Invalid("Netlink::connect must be called inside a tokio runtime".into())
        })?;
        runtime.spawn(connection);
        Ok(Self { handle })
    }
}

//! Transports to the agent: one [`Connector`] trait, three back ends.
//!
//! A connector opens a byte stream to a port of the guest. The gRPC channel
//! runs over one such stream to [`AGENT_PORT`]; process stdio streams use
//! their own ports so bulk data never crosses the gRPC channel.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::AgentError;

/// The vsock port the agent serves gRPC on.
pub const AGENT_PORT: u32 = 1024;
/// The CID by which a guest reaches its host over vsock.
pub const HOST_CID: u32 = 2;
/// The host port vminitd dials once it listens on [`AGENT_PORT`], to say it
/// is ready. A host that listens there need not dial a guest that is still
/// booting: a vsock dial that races the guest's driver can stall.
pub const READY_PORT: u32 = 1023;

/// A connected byte stream of any transport.
pub trait IoStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> IoStream for T {}

/// A boxed [`IoStream`].
pub type BoxedStream = Box<dyn IoStream>;

/// The future a [`Connector`] returns.
pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<BoxedStream, AgentError>> + Send + 'a>>;

/// Opens streams to ports of one guest.
///
/// Implementors connect afresh on every call and may be called concurrently;
/// a refused or absent peer is an [`AgentError::Connect`] naming the target,
/// so callers can retry while the guest boots.
pub trait Connector: Send + Sync {
    /// Opens a stream to `port` in the guest.
    fn connect(&self, port: u32) -> ConnectFuture<'_>;
    /// Where this connector dials, for messages.
    fn describe(&self) -> String;
}

/// AF_VSOCK to a guest context id (needs the kernel's vhost-vsock).
#[derive(Debug, Clone, Copy)]
pub struct VsockConnector {
    cid: u32,
}

impl VsockConnector {
    /// A connector to the guest with context id `cid`.
    pub fn new(cid: u32) -> Self {
        Self { cid }
    }
}

impl Connector for VsockConnector {
    fn connect(&self, port: u32) -> ConnectFuture<'_> {
        Box::pin(async move {
            let addr = tokio_vsock::VsockAddr::new(self.cid, port);
            let stream = tokio_vsock::VsockStream::connect(addr)
                .await
                .map_err(|source| AgentError::Connect {
                    target: format!("vsock cid {} port {port}", self.cid),
                    source,
                })?;
            Ok(Box::new(stream) as BoxedStream)
        })
    }

    fn describe(&self) -> String {
        format!("vsock cid {}", self.cid)
    }
}

/// A unix socket speaking the hybrid vsock protocol (`CONNECT <port>\n`).
///
/// `vhost-device-vsock`, Firecracker and Cloud Hypervisor expose a guest's
/// vsock device this way. Connections the guest opens to host port `P` arrive
/// on the unix socket `<path>_<P>`, which [`HybridVsockConnector::host_listener_path`] names.
#[derive(Debug, Clone)]
pub struct HybridVsockConnector {
    path: PathBuf,
}

impl HybridVsockConnector {
    /// A connector through the unix socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The unix socket path on which the host must listen to accept guest
    /// connections to host port `port`.
    pub fn host_listener_path(&self, port: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!("_{port}"));
        PathBuf::from(name)
    }
}

impl Connector for HybridVsockConnector {
    fn connect(&self, port: u32) -> ConnectFuture<'_> {
        Box::pin(async move {
            let target = self.path.display().to_string();
            let mut stream =
                tokio::net::UnixStream::connect(&self.path)
                    .await
                    .map_err(|source| AgentError::Connect {
                        target: target.clone(),
                        source,
                    })?;
            // A peer that closes at once (nothing listens on the port) shows
            // as end of file or a reset; both are a refused handshake.
            let closed = |e: &std::io::Error| {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                )
            };
            let io_error = |source| AgentError::Connect {
                target: target.clone(),
                source,
            };
            match stream
                .write_all(format!("CONNECT {port}\n").as_bytes())
                .await
            {
                Ok(()) => {}
                Err(e) if closed(&e) => {}
                Err(e) => return Err(io_error(e)),
            }
            // Read the answer a byte at a time: what follows the newline is
            // the guest's data and must stay in the stream.
            let mut answer = Vec::with_capacity(16);
            loop {
                let byte = match stream.read_u8().await {
                    Ok(byte) => byte,
                    Err(e) if closed(&e) => break,
                    Err(e) => return Err(io_error(e)),
                };
                if byte == b'\n' || answer.len() >= 64 {
                    break;
                }
                answer.push(byte);
            }
            let answer = String::from_utf8_lossy(&answer).into_owned();
            if !answer.starts_with("OK ") {
                return Err(AgentError::Handshake {
                    target,
                    port,
                    answer: if answer.is_empty() {
                        "the connection closed (nothing listens on that port yet)".to_owned()
                    } else {
                        answer
                    },
                });
            }
            Ok(Box::new(stream) as BoxedStream)
        })
    }

    fn describe(&self) -> String {
        format!("hybrid vsock {}", self.path.display())
    }
}

/// A plain unix socket: the agent running on a host, for tests.
///
/// The agent listens on one socket, so `connect` ignores the port.
#[derive(Debug, Clone)]
pub struct UnixConnector {
    path: PathBuf,
}

impl UnixConnector {
    /// A connector to the agent socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Connector for UnixConnector {
    fn connect(&self, _port: u32) -> ConnectFuture<'_> {
        Box::pin(async move {
            let stream = tokio::net::UnixStream::connect(&self.path)
                .await
                .map_err(|source| AgentError::Connect {
                    target: self.path.display().to_string(),
                    source,
                })?;
            Ok(Box::new(stream) as BoxedStream)
        })
    }

    fn describe(&self) -> String {
        format!("unix socket {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hybrid_handshake_keeps_the_bytes_after_ok() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vsock.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 13];
            stream.read_exact(&mut request).await.unwrap();
            assert_eq!(&request, b"CONNECT 1024\n");
            stream.write_all(b"OK 1234\nhello").await.unwrap();
        });
        let mut stream = HybridVsockConnector::new(&path)
            .connect(1024)
            .await
            .unwrap();
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "hello");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn hybrid_handshake_refused_names_the_port() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vsock.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            drop(stream);
        });
        let err = HybridVsockConnector::new(&path)
            .connect(77)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("port 77"), "{err}");
    }

    #[test]
    fn host_listener_path_appends_the_port() {
        let c = HybridVsockConnector::new("/run/vm/vsock.sock");
        assert_eq!(
            c.host_listener_path(5000),
            Path::new("/run/vm/vsock.sock_5000")
        );
    }
}

//! The serial transport: many streams over one byte pipe.
//!
//! A VM without a vsock device still has a virtio-serial port named
//! [`SERIAL_PORT_NAME`], whose host end is a unix socket. Unlike QEMU's
//! vhost-user vsock device, a virtio-serial port can be migrated, so a VM
//! that talks to its host this way can be snapshotted and restored.
//!
//! The pipe carries yamux (`tokio-yamux`). Each yamux stream is one of the
//! connections vsock would have carried, and opens with the line the hybrid
//! vsock protocol uses: `CONNECT <port>\n`, answered by `OK <port>\n` or by
//! closing the stream (nothing listens on that port).
//!
//! - On the host, [`HostProxy`] owns the pipe and serves the *same* hybrid
//!   vsock socket as `vhost-device-vsock`: clients dial `CONNECT <port>` on
//!   it, and streams the guest opens to host port `P` are passed to
//!   whatever listens on `<socket>_<P>`. Nothing above the transport
//!   changes.
//! - In the guest, [`guest_session`] runs one session per host connection:
//!   streams to [`AGENT_PORT`] go to the gRPC server, and a
//!   [`GuestDialer`] opens streams to host ports.
//!
//! A session starts when the guest writes [`MUX_HELLO`] after it sees the
//! host connect; the host discards anything before it (bytes a previous
//! session left in the port's buffers), and the guest drops what the host
//! sent before the hello. When the host closes the pipe, the session ends
//! and the guest waits for the next host: that is how a VM snapshotted
//! without a host connection takes a new one after it is restored.
//!
//! A host peer that half-closes its socket ends the guest's reads (FIN); one
//! that closes it entirely resets the stream, so the guest's writes fail as
//! a pipe's do when its reader is gone ([`host_peer`]).

mod host_peer;

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_yamux::{Config, Control, Session, StreamHandle};

use crate::transport::{AGENT_PORT, HybridVsockConnector, READY_PORT};
use host_peer::HostPeer;

/// The name of the virtio-serial port that carries the serial transport.
pub const SERIAL_PORT_NAME: &str = "cz.agent";

/// What the guest writes when it sees a host connect, before yamux starts.
pub const MUX_HELLO: &[u8] = b"CZMUX1\n";

/// The longest handshake line either side reads.
const MAX_LINE: usize = 64;

fn mux_config() -> Config {
    Config {
        // One local pipe: a keep-alive finds nothing a closed pipe does not.
        enable_keepalive: false,
        // A paused VM or a stopped host process must not end the session.
        connection_write_timeout: Duration::from_secs(7 * 24 * 3600),
        ..Config::default()
    }
}

/// Reads one `\n`-terminated line a byte at a time (what follows it stays in
/// the stream), without the newline.
async fn read_line<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<String> {
    let mut line = Vec::with_capacity(16);
    loop {
        let byte = reader.read_u8().await?;
        if byte == b'\n' {
            break;
        }
        if line.len() >= MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "handshake line too long",
            ));
        }
        line.push(byte);
    }
    String::from_utf8(line).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// The port of a `CONNECT <port>` line.
fn connect_port(line: &str) -> Option<u32> {
    line.strip_prefix("CONNECT ")?.trim().parse().ok()
}

/// One yamux stream, usable as a tonic server connection.
#[derive(Debug)]
pub struct MuxStream(StreamHandle);

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for MuxStream {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

/// The host end of the serial transport, run as a task of its owner.
///
/// The VM's serial port reaches it over a socket pair: [`HostProxy::pair`]
/// returns the other end, which QEMU inherits as its chardev's descriptor
/// (`-chardev socket,fd=N`), so there is no socket path the VM's side could
/// be reached by. Clients connect on `hybrid`, exactly as `vhost-device-vsock`
/// serves its unix socket. Dropping it ends the session and removes
/// `hybrid`.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use containerization_agent::{Connector, HybridVsockConnector, mux::HostProxy};
/// let (proxy, vm_end) = HostProxy::pair("/run/vm/vsock.sock")?;
/// // … start QEMU with a virtio-serial port whose chardev is `vm_end` …
/// let connector: std::sync::Arc<dyn Connector> =
///     std::sync::Arc::new(HybridVsockConnector::new("/run/vm/vsock.sock"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HostProxy {
    task: JoinHandle<()>,
    hybrid: PathBuf,
}

impl HostProxy {
    /// Binds `hybrid` (replacing a stale file), makes the socket pair and
    /// starts serving; returns the VM's end of the pair, a blocking socket
    /// with close-on-exec set. Must be called within a tokio runtime.
    pub fn pair(hybrid: impl AsRef<Path>) -> io::Result<(Self, std::os::unix::net::UnixStream)> {
        let hybrid = hybrid.as_ref().to_path_buf();
        let _ = std::fs::remove_file(&hybrid);
        let clients = UnixListener::bind(&hybrid).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot listen on {}: {err}", hybrid.display()),
            )
        })?;
        let (ours, vm_end) = std::os::unix::net::UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let ours = UnixStream::from_std(ours)?;
        let task = tokio::spawn(run_host(ours, clients, hybrid.clone()));
        Ok((Self { task, hybrid }, vm_end))
    }

    /// Whether the session is over (the VM closed its end, or it failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for HostProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.hybrid);
    }
}

/// Finds the VM's hello on `conn`, then serves one session.
async fn run_host(mut conn: UnixStream, clients: UnixListener, hybrid: PathBuf) {
    if let Err(err) = skip_to_hello(&mut conn).await {
        tracing::debug!("serial transport: the VM closed its pipe before the hello: {err}");
        return;
    }
    let mut session = Session::new_client(conn, mux_config());
    let control = session.control();
    let accepting = tokio::spawn(async move {
        while let Ok((client, _)) = clients.accept().await {
            if !peer_may_connect(&client) {
                continue;
            }
            tokio::spawn(forward_client(client, control.clone()));
        }
    });
    let targets = HybridVsockConnector::new(hybrid);
    while let Some(Ok(stream)) = session.next().await {
        tokio::spawn(forward_from_guest(stream, targets.clone()));
    }
    accepting.abort();
    tracing::debug!("serial transport: session over");
}

/// Whether the process at the other end of a host client's connection may
/// reach the guest: this user or root (`SO_PEERCRED`). The agent runs as
/// root in the guest, so a connection from anyone else is closed unserved,
/// whatever the socket's folder and mode allow.
pub fn peer_may_connect(client: &UnixStream) -> bool {
    let me = rustix::process::geteuid().as_raw();
    match client.peer_cred() {
        Ok(cred) if cred.uid() == me || cred.uid() == 0 => true,
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                pid = ?cred.pid(),
                "serial transport: refused a connection from another user"
            );
            false
        }
        Err(err) => {
            tracing::warn!("serial transport: refused a connection of unknown origin: {err}");
            false
        }
    }
}

/// Reads until [`MUX_HELLO`] has gone by.
async fn skip_to_hello<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<()> {
    let mut matched = 0;
    while matched < MUX_HELLO.len() {
        let byte = reader.read_u8().await?;
        matched = if byte == MUX_HELLO[matched] {
            matched + 1
        } else if byte == MUX_HELLO[0] {
            1
        } else {
            0
        };
    }
    Ok(())
}

/// A host client's connection: its `CONNECT` line opens a stream to the
/// guest, which answers it; then bytes flow both ways.
async fn forward_client(mut client: UnixStream, mut control: Control) {
    let Ok(line) = read_line(&mut client).await else {
        return;
    };
    if connect_port(&line).is_none() {
        let _ = client.write_all(b"ERROR expected CONNECT <port>\n").await;
        return;
    }
    let Ok(mut stream) = control.open_stream().await else {
        return;
    };
    answer_then_splice(&mut stream, &line, client).await;
}

/// Writes `line` to `stream`, then copies both ways between it and the host
/// peer `host` until both directions end, or until one fails: the caller's
/// drop of `stream` then resets it (see [`host_peer`]).
async fn answer_then_splice(stream: &mut StreamHandle, line: &str, host: UnixStream) {
    if stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .is_ok()
    {
        let mut host = HostPeer::new(host);
        let _ = tokio::io::copy_bidirectional(stream, &mut host).await;
    }
}

/// A stream the guest opened to a host port: passed to `<socket>_<port>`,
/// or closed when nothing listens there.
async fn forward_from_guest(mut stream: StreamHandle, targets: HybridVsockConnector) {
    let Ok(line) = read_line(&mut stream).await else {
        return;
    };
    let Some(port) = connect_port(&line) else {
        return;
    };
    let Ok(target) = UnixStream::connect(targets.host_listener_path(port)).await else {
        tracing::debug!("serial transport: nothing listens on host port {port}");
        return;
    };
    answer_then_splice(&mut stream, &format!("OK {port}"), target).await;
}

/// Opens streams from the guest to host ports over the current session.
#[derive(Default, Clone)]
pub struct GuestDialer {
    control: Arc<Mutex<Option<Control>>>,
}

impl std::fmt::Debug for GuestDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let connected = self.control.lock().map(|c| c.is_some()).unwrap_or(false);
        f.debug_struct("GuestDialer")
            .field("connected", &connected)
            .finish()
    }
}

impl GuestDialer {
    /// A dialer with no session yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a stream to host port `port`; refused when no host is connected
    /// or nothing listens on that port.
    pub async fn dial(&self, port: u32) -> io::Result<StreamHandle> {
        let control = self.control.lock().expect("dialer lock").clone();
        let Some(mut control) = control else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "no host is connected to the serial transport",
            ));
        };
        let mut stream = control.open_stream().await.map_err(|err| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("serial transport: {err:?}"),
            )
        })?;
        stream
            .write_all(format!("CONNECT {port}\n").as_bytes())
            .await?;
        let refused = || {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("nothing listens on host port {port}"),
            )
        };
        match read_line(&mut stream).await {
            Ok(answer) if answer.starts_with("OK ") => Ok(stream),
            Ok(_) => Err(refused()),
            // The host closes the stream (yamux resets it) to refuse.
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                Err(refused())
            }
            Err(err) => Err(err),
        }
    }

    fn set(&self, control: Option<Control>) {
        *self.control.lock().expect("dialer lock") = control;
    }
}

/// Serves one session on `pipe`, a host connection the guest has just seen:
/// says hello, then passes streams to [`AGENT_PORT`] to `agent` (after
/// answering their `CONNECT`), refuses other ports, and dials the host's
/// [`READY_PORT`] once. Returns when the host closes the pipe.
pub async fn guest_session<T>(pipe: T, agent: mpsc::Sender<MuxStream>, dialer: &GuestDialer)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut pipe = pipe;
    if pipe.write_all(MUX_HELLO).await.is_err() || pipe.flush().await.is_err() {
        return;
    }
    let mut session = Session::new_server(pipe, mux_config());
    dialer.set(Some(session.control()));
    let ready_dialer = dialer.clone();
    let ready = tokio::spawn(async move {
        match ready_dialer.dial(READY_PORT).await {
            Ok(mut stream) => {
                let _ = stream.write_all(b"ready\n").await;
                let _ = stream.shutdown().await;
            }
            Err(err) => tracing::debug!("the host does not wait for the ready call: {err}"),
        }
    });
    while let Some(Ok(stream)) = session.next().await {
        let agent = agent.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let Ok(line) = read_line(&mut stream).await else {
                return;
            };
            if connect_port(&line) != Some(AGENT_PORT) {
                tracing::debug!("serial transport: refused {line:?}");
                return;
            }
            if stream
                .write_all(format!("OK {AGENT_PORT}\n").as_bytes())
                .await
                .is_ok()
            {
                let _ = agent.send(MuxStream(stream)).await;
            }
        });
    }
    ready.abort();
    dialer.set(None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Connector;

    /// A host proxy and a guest session joined by a socket pair, as QEMU's
    /// chardev joins them; returns the hybrid socket path.
    struct Joined {
        _dir: tempfile::TempDir,
        hybrid: PathBuf,
        agent: mpsc::Receiver<MuxStream>,
        dialer: GuestDialer,
        ready: UnixListener,
        _proxy: HostProxy,
    }

    async fn joined(stale: &[u8]) -> Joined {
        let dir = tempfile::tempdir().unwrap();
        let hybrid = dir.path().join("vsock.sock");
        let (proxy, vm_end) = HostProxy::pair(&hybrid).unwrap();
        // The guest's ready call goes out as soon as the session starts.
        let ready =
            UnixListener::bind(HybridVsockConnector::new(&hybrid).host_listener_path(READY_PORT))
                .unwrap();
        vm_end.set_nonblocking(true).unwrap();
        let mut guest_end = UnixStream::from_std(vm_end).unwrap();
        guest_end.write_all(stale).await.unwrap();
        let (tx, rx) = mpsc::channel(4);
        let dialer = GuestDialer::new();
        let session_dialer = dialer.clone();
        tokio::spawn(async move { guest_session(guest_end, tx, &session_dialer).await });
        Joined {
            _dir: dir,
            hybrid,
            agent: rx,
            dialer,
            ready,
            _proxy: proxy,
        }
    }

    #[tokio::test]
    async fn a_host_client_reaches_the_agent_port_after_stale_bytes() {
        let mut joined = joined(b"junk CZM left by an older session").await;
        let connector = HybridVsockConnector::new(&joined.hybrid);
        let mut client = connector.connect(AGENT_PORT).await.unwrap();
        let mut served = joined.agent.recv().await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        served.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        served.write_all(b"pong").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }

    #[tokio::test]
    async fn a_client_of_another_user_is_refused_whatever_the_socket_allows() {
        if !rustix::process::geteuid().is_root() {
            return; // only root can connect as another user here
        }
        let joined = joined(b"").await;
        // As if the folder and socket modes had been opened to everyone.
        for path in [joined._dir.path(), joined.hybrid.as_path()] {
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .unwrap();
        }
        let program = format!(
            "import socket\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.connect({:?})\n\
             s.settimeout(5)\n\
             try:\n\
             \x20   s.sendall(b'CONNECT {AGENT_PORT}\\n')\n\
             \x20   print(repr(s.recv(64)))\n\
             except OSError:\n\
             \x20   print(repr(b''))",
            joined.hybrid.display().to_string()
        );
        let out = tokio::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["/usr/bin/python3", "-c", &program])
            .output()
            .await
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.trim() == "b''",
            "another user's CONNECT was answered: {said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // This user is still served.
        HybridVsockConnector::new(&joined.hybrid)
            .connect(AGENT_PORT)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn other_guest_ports_are_refused() {
        let joined = joined(b"").await;
        let err = HybridVsockConnector::new(&joined.hybrid)
            .connect(77)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("port 77"), "{err}");
    }

    #[tokio::test]
    async fn the_guest_dials_host_listeners_and_says_ready() {
        let joined = joined(b"").await;
        let connector = HybridVsockConnector::new(&joined.hybrid);
        let (mut ready_call, _) = joined.ready.accept().await.unwrap();
        let mut said = String::new();
        ready_call.read_to_string(&mut said).await.unwrap();
        assert_eq!(said, "ready\n");

        let listener = UnixListener::bind(connector.host_listener_path(5000)).unwrap();
        let mut dialed = joined.dialer.dial(5000).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        dialed.write_all(b"out").await.unwrap();
        dialed.shutdown().await.unwrap();
        let mut got = String::new();
        accepted.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "out");

        let err = joined.dialer.dial(5001).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    /// A stream the guest dialed to a fresh host listener on `port` once its
    /// session runs (its ready call came), and the host's end of it.
    async fn dialed_pair(joined: &Joined, port: u32) -> (StreamHandle, UnixStream) {
        let _ready_call = joined.ready.accept().await.unwrap();
        let connector = HybridVsockConnector::new(&joined.hybrid);
        let listener = UnixListener::bind(connector.host_listener_path(port)).unwrap();
        let dialed = joined.dialer.dial(port).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (dialed, accepted)
    }

    #[tokio::test]
    async fn a_host_reader_that_closes_its_socket_fails_the_guests_writes() {
        let joined = joined(b"").await;
        let (mut dialed, mut accepted) = dialed_pair(&joined, 5002).await;
        dialed.write_all(b"y\n").await.unwrap();
        let mut got = [0u8; 2];
        accepted.read_exact(&mut got).await.unwrap();
        drop(accepted);
        // Far more than the stream's window: without a reset the writer
        // would wait for window updates that never come.
        let chunk = vec![b'y'; 64 * 1024];
        let writing = async {
            loop {
                if let Err(err) = dialed.write_all(&chunk).await {
                    return err;
                }
            }
        };
        let err = tokio::time::timeout(Duration::from_secs(10), writing)
            .await
            .expect("the guest's writes fail once the host reader is gone");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    }

    #[tokio::test]
    async fn a_host_half_close_is_end_of_file_and_the_guest_may_still_write() {
        let joined = joined(b"").await;
        let (mut dialed, mut accepted) = dialed_pair(&joined, 5003).await;
        accepted.write_all(b"input").await.unwrap();
        accepted.shutdown().await.unwrap();
        let mut got = Vec::new();
        dialed.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"input");
        dialed.write_all(b"output").await.unwrap();
        dialed.shutdown().await.unwrap();
        let mut back = String::new();
        accepted.read_to_string(&mut back).await.unwrap();
        assert_eq!(back, "output");
    }

    #[tokio::test]
    async fn what_a_host_writes_before_closing_its_socket_arrives_first() {
        let joined = joined(b"").await;
        let (mut dialed, mut accepted) = dialed_pair(&joined, 5004).await;
        let input = vec![b'i'; 600 * 1024];
        let writer = tokio::spawn(async move {
            accepted.write_all(&input).await.unwrap();
            accepted.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match dialed.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        writer.await.unwrap();
        assert_eq!(got.len(), 600 * 1024);
    }

    #[tokio::test]
    async fn several_mib_in_window_sized_frames_arrive_whole_and_in_order() {
        let joined = joined(b"").await;
        let (mut dialed, mut accepted) = dialed_pair(&joined, 5005).await;
        // As vminitd splices a process's output: a socket pair copied into
        // the stream 256 KiB at a time, each read a frame as large as the
        // stream's window. (The copy also reads the stream: a yamux stream
        // only ever written is not woken by window updates.)
        let (mut process, mut ours) = UnixStream::pair().unwrap();
        tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional_with_sizes(
                &mut ours,
                &mut dialed,
                256 * 1024,
                64 * 1024,
            )
            .await;
        });
        let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            process.write_all(&sent).await.unwrap();
            process.shutdown().await.unwrap();
            process
        });
        let mut got = Vec::with_capacity(data.len());
        tokio::time::timeout(Duration::from_secs(60), accepted.read_to_end(&mut got))
            .await
            .expect("8 MiB within a minute")
            .unwrap();
        drop(writer.await.unwrap());
        assert_eq!(got.len(), data.len());
        assert!(got == data, "the bytes arrived out of order or changed");
    }

    #[tokio::test]
    async fn dialing_without_a_host_says_so() {
        let err = GuestDialer::new().dial(5000).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    }
}

//! The guest end of the serial transport: the virtio-serial port named
//! `cz.agent`, one yamux session per host connection
//! (`containerization_agent::mux`).
//!
//! The port is opened once (a virtio-serial port admits one opener) and
//! kept; each time a host connects, stale input is dropped and a session
//! runs until the host goes away. A VM snapshotted while no host was
//! connected therefore takes a new host after it is restored.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use containerization_agent::mux::{GuestDialer, MuxStream, SERIAL_PORT_NAME, guest_session};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// How long boot may take to name the port before vminitd gives up.
const PORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The dialer of the current session, for the process streams vminitd dials
/// to the host; set once the serial transport serves.
pub(crate) fn dialer() -> Option<&'static GuestDialer> {
    DIALER.get()
}

static DIALER: OnceLock<GuestDialer> = OnceLock::new();

/// The opened port.
#[derive(Debug)]
pub(crate) struct SerialPort {
    fd: OwnedFd,
    path: PathBuf,
}

/// The device node of the port named `name`, once the host has named it
/// (the name arrives in a control message after the port appears).
fn find_port(name: &str) -> io::Result<PathBuf> {
    let deadline = Instant::now() + PORT_TIMEOUT;
    loop {
        if let Ok(entries) = std::fs::read_dir("/sys/class/virtio-ports") {
            for entry in entries.flatten() {
                let named = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
                if named.trim_end() == name {
                    return Ok(Path::new("/dev").join(entry.file_name()));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no virtio-serial port named {name} within {PORT_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether a host holds the other end of `port`: it polls writable, not
/// hung up.
fn host_connected(port: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        port,
        rustix::event::PollFlags::OUT,
    )];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(_) => {
            let events = fds[0].revents();
            events.contains(rustix::event::PollFlags::OUT)
                && !events.contains(rustix::event::PollFlags::HUP)
        }
        Err(_) => false,
    }
}

/// Blocks until a host connects to `port`. While none is, the port polls
/// hung up, so a level-triggered wait would return at once: an
/// edge-triggered epoll reports the port's state when it is added, then
/// only the port's next wake-ups, one of which is the host's arrival.
fn wait_for_host(port: &OwnedFd) -> io::Result<()> {
    use rustix::event::epoll;
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &epoll,
        port,
        epoll::EventData::new_u64(0),
        epoll::EventFlags::OUT | epoll::EventFlags::ET,
    )?;
    let mut events = [std::mem::MaybeUninit::<epoll::Event>::uninit(); 1];
    while !host_connected(port) {
        match epoll::wait(&epoll, &mut events[..], None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

impl SerialPort {
    /// Finds and opens the `cz.agent` port.
    pub(crate) fn open() -> io::Result<Self> {
        let path = find_port(SERIAL_PORT_NAME)?;
        let fd = rustix::fs::open(
            &path,
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
        Ok(Self { fd, path })
    }

    /// The device node.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Drops what a previous host left unread.
    fn drain(&self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = rustix::io::read(&self.fd, &mut buf) {
            if n == 0 {
                break;
            }
        }
    }

    /// Serves sessions for as long as vminitd runs: each host connection's
    /// agent streams go to `agent`.
    pub(crate) async fn serve(self, agent: mpsc::Sender<MuxStream>) {
        let dialer = DIALER.get_or_init(GuestDialer::new);
        loop {
            if let Err(err) = self.next_session(&agent, dialer).await {
                tracing::error!("serial transport: {}: {err}", self.path.display());
                return;
            }
        }
    }

    /// Waits for a host, then serves its session until it goes away.
    ///
    /// Each session registers the port with the runtime afresh (a duplicate
    /// descriptor, deregistered when the session ends): tokio keeps a hang-up
    /// as a final state of a registration, so a registration that saw one
    /// host leave would poll ready forever for the next, and its session
    /// would spin (a whole CPU, in every VM restored from a template).
    async fn next_session(
        &self,
        agent: &mpsc::Sender<MuxStream>,
        dialer: &GuestDialer,
    ) -> io::Result<()> {
        let waiting = self.fd.try_clone()?;
        tokio::task::spawn_blocking(move || wait_for_host(&waiting))
            .await
            .map_err(io::Error::other)??;
        self.drain();
        // SAFETY: the duplicate is an open descriptor the `AsyncFd` owns from
        // here on, and an `OwnedFd` always returns the same descriptor.
        let session_fd = unsafe { AsyncFd::register(self.fd.try_clone()?) }?;
        tracing::debug!("serial transport: host connected");
        guest_session(PortIo(session_fd), agent.clone(), dialer).await;
        tracing::debug!("serial transport: host gone");
        Ok(())
    }
}

/// The port as an async byte stream, for one session.
struct PortIo(AsyncFd<OwnedFd>);

impl AsyncRead for PortIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| {
                rustix::io::read(fd.get_ref(), &mut *unfilled).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PortIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard
                .try_io(|fd| rustix::io::write(fd.get_ref().as_fd(), data).map_err(io::Error::from))
            {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The most of a process's output read at once, and so the largest yamux
/// frame it becomes. tokio's default, 8 KiB, made a frame, a port write and
/// a wake-up of the session per 8 KiB; at 256 KiB a GiB from `dd bs=64k`
/// crossed about twice as fast under TCG (`bench/agent`).
const PROCESS_TO_HOST_CHUNK: usize = 256 * 1024;

/// The most input given to a process at once.
const HOST_TO_PROCESS_CHUNK: usize = 64 * 1024;

/// Dials host port `port` over the serial transport and returns one end of
/// a socket pair whose other end vminitd copies to and from the stream: a
/// process's standard stream must be a descriptor. Blocking: call from a
/// blocking task of the runtime.
pub(crate) fn dial_as_socket(dialer: &GuestDialer, port: u32) -> io::Result<OwnedFd> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|err| io::Error::other(format!("serial transport: {err}")))?;
    let mut stream = runtime.block_on(dialer.dial(port))?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    runtime.spawn(async move {
        let Ok(mut ours) = tokio::net::UnixStream::from_std(ours) else {
            return;
        };
        let _ = tokio::io::copy_bidirectional_with_sizes(
            &mut ours,
            &mut stream,
            PROCESS_TO_HOST_CHUNK,
            HOST_TO_PROCESS_CHUNK,
        )
        .await;
    });
    Ok(OwnedFd::from(theirs))
}

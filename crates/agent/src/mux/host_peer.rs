//! The host end of a spliced stream: a unix socket whose peer closing it
//! entirely reads as a reset, not as an end of file.
//!
//! A host peer ends its side of a stream in one of two ways. It may shut
//! down only its writing half (standard input at its end): the guest must
//! read end of file and may go on writing. Or it may close the socket
//! entirely (a reader that went away, as `cctl run … | head -1` leaves):
//! the guest's writes must then fail, as a pipe's do when its reader is
//! gone. A read cannot tell the two apart, but the socket can: it polls
//! hung up only when both halves are shut.
//!
//! The difference matters because of how `tokio-yamux` ends a stream: its
//! `shutdown` sends FIN, which only ends the guest's reads; a stream dropped
//! *before* that sends RST, which fails the guest's writes; and data that
//! arrives for a stream the host already dropped is discarded with neither a
//! reset nor a window update, so a guest writer that has used its window
//! waits forever. [`HostPeer`] reports a full close as
//! [`io::ErrorKind::ConnectionReset`], so `copy_bidirectional` stops before
//! it shuts the yamux stream, and the proxy's drop of the stream resets it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

/// A host peer's socket, spliced to a yamux stream by the host proxy.
#[derive(Debug)]
pub(super) struct HostPeer {
    socket: UnixStream,
    /// The proxy has shut down its writing half (the guest's FIN came): the
    /// socket then polls hung up after a half-close too, and an end of file
    /// is only that.
    shut_for_writing: bool,
}

impl HostPeer {
    pub(super) fn new(socket: UnixStream) -> Self {
        Self {
            socket,
            shut_for_writing: false,
        }
    }

    /// Whether the peer has closed the socket entirely: both halves are
    /// shut, and this end did not shut its own.
    fn peer_closed(&self) -> bool {
        if self.shut_for_writing {
            return false;
        }
        let mut fds = [rustix::event::PollFd::new(
            &self.socket,
            rustix::event::PollFlags::empty(),
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&zero)) {
            Ok(_) => fds[0].revents().contains(rustix::event::PollFlags::HUP),
            Err(_) => false,
        }
    }
}

impl AsyncRead for HostPeer {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.socket).poll_read(cx, buf))?;
        let end_of_file = buf.filled().len() == before && buf.remaining() > 0;
        if end_of_file && self.peer_closed() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the host end closed its socket",
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for HostPeer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.socket).poll_shutdown(cx))?;
        self.shut_for_writing = true;
        Poll::Ready(Ok(()))
    }
}

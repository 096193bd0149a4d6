//! The host end of a connection the guest opened on the hybrid vsock
//! socket: closed so that the guest learns it as a pipe's writer would.
//!
//! Closing a unix socket with unread data in it makes the peer's next read
//! fail with `ECONNRESET` instead of returning end of file. A reader that
//! goes away mid-stream (`cctl run … yes | head -1`) always leaves data
//! unread. `vhost-device-vsock` 0.3.0 ignores that error (it sends the
//! guest nothing, and it drops the guest's later data without returning its
//! credit), so the guest's writer waits forever. [`GuestStream`] therefore
//! shuts both halves when dropped, which stops the peer from queueing more,
//! and drains what is queued before the descriptor closes: the peer reads
//! a clean end of file, and tells the guest both halves are shut.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

/// A guest-initiated connection accepted on a hybrid vsock listener.
#[derive(Debug)]
pub(crate) struct GuestStream(pub(crate) UnixStream);

impl Drop for GuestStream {
    fn drop(&mut self) {
        // After both halves are shut, the peer's sends fail, so what is
        // queued is all there will be, and a read returns 0 once it is gone.
        if rustix::net::shutdown(&self.0, rustix::net::Shutdown::Both).is_err() {
            return;
        }
        let mut unread = [0u8; 16 * 1024];
        while let Ok(1..) = rustix::io::read(&self.0, &mut unread) {}
    }
}

impl AsyncRead for GuestStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuestStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[tokio::test]
    async fn dropping_it_with_unread_data_is_end_of_file_for_the_peer() {
        let (peer, ours) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let ours = GuestStream(UnixStream::from_std(ours).unwrap());
        (&peer).write_all(b"output nobody reads").unwrap();
        drop(ours);
        let mut rest = Vec::new();
        // A plain close would make this read fail with ECONNRESET.
        assert_eq!((&peer).read_to_end(&mut rest).unwrap(), 0);
        let err = (&peer).write_all(b"more").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    }
}

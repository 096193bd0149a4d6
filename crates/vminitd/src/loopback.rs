//! Bringing up `lo` at boot with two `ioctl`s on a datagram socket.
//!
//! Everything else in the guest network goes through netlink
//! ([`crate::network`]), but the loopback at boot only needs its `IFF_UP`
//! flag: the ioctl pair costs two system calls, where opening the netlink
//! connection, finding the link and setting it up took about 30 ms of boot
//! under TCG (mostly first-time code translation).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// An `ifreq` naming `lo`.
fn lo_request() -> libc::ifreq {
    // SAFETY: `ifreq` is plain old data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    request
}

fn inet_socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?)
}

/// The flags of `lo`, read through `socket`.
fn lo_flags(socket: &OwnedFd) -> io::Result<libc::ifreq> {
    let mut request = lo_request();
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the
    // `ifreq` it is given, which lives for the whole call.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(request)
}

/// Whether an `ifreq` filled by SIOCGIFFLAGS says the link is up.
fn is_up(request: &libc::ifreq) -> bool {
    // SAFETY: the flags member is the one SIOCGIFFLAGS wrote.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    flags & libc::IFF_UP as libc::c_short != 0
}

/// Sets `IFF_UP` on `lo`.
pub(crate) fn bring_up() -> io::Result<()> {
    let socket = inet_socket()?;
    let mut request = lo_flags(&socket)?;
    if is_up(&request) {
        return Ok(());
    }
    // SAFETY: the flags member is the one SIOCGIFFLAGS just wrote.
    unsafe { request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the name and flags of the `ifreq`.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS as _, &request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lo_comes_up_in_a_fresh_network_namespace() {
        // A network namespace needs root; without it there is nothing to test.
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let (before, after) = std::thread::spawn(|| {
            // SAFETY: this thread shares no file descriptor table changes
            // with others that could race; it only enters a new network
            // namespace, which affects this thread alone.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                .expect("unshare the network namespace");
            let socket = inet_socket().unwrap();
            let before = is_up(&lo_flags(&socket).unwrap());
            bring_up().expect("lo up");
            (before, is_up(&lo_flags(&socket).unwrap()))
        })
        .join()
        .unwrap();
        assert!(!before, "lo starts down in a new network namespace");
        assert!(after, "lo is up afterwards");
    }
}

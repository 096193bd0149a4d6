//! How the host reaches the guest's vsock: two back ends behind one choice.
//!
//! With the kernel's `/dev/vhost-vsock`, QEMU hands the device to the host
//! kernel and the host dials `(guest CID, port)` over `AF_VSOCK`. CIDs are
//! global on the host, so each VM holds a [`CidLease`]: an exclusive `flock`
//! on `<dir>/<cid>.lock`, released when the VM goes away, which keeps
//! concurrent VMs (even from different processes) on distinct CIDs.
//!
//! Without it (as on this project's CI machines), a `vhost-device-vsock`
//! process per VM serves the same virtio device to QEMU over vhost-user and
//! exposes a unix socket speaking the hybrid protocol (`CONNECT <port>\n`).
//! Each helper has its own guest, so every guest can be CID 3.
//!
//! The default is neither: the serial transport ([`VsockBackend::Serial`],
//! `containerization_agent::mux`) carries the same connections over one
//! virtio-serial port, with the host end served by a task of the VM's owner
//! as the same hybrid vsock socket. It needs no helper process and no host
//! kernel module, and, unlike QEMU's vhost-user vsock device (which refuses
//! migration), it lets a VM be snapshotted and restored.
//! `CZ_AGENT_TRANSPORT=vsock` chooses vsock instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerization_agent::{BoxedStream, Connector, HybridVsockConnector, VsockConnector};

use crate::VmmError;
use crate::error::io_at;
use crate::lease::NumberLease;

mod guest_stream;
use guest_stream::GuestStream;

/// The first CID a guest may have (0–2 are reserved for the hypervisor, the
/// loopback and the host).
pub const FIRST_GUEST_CID: u32 = 3;

/// The vsock back end of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsockBackend {
    /// The host kernel's vhost-vsock (`/dev/vhost-vsock`).
    Kernel,
    /// One `vhost-device-vsock` process per VM, at this path.
    VhostUser {
        /// The `vhost-device-vsock` binary.
        program: PathBuf,
    },
    /// No vsock device: a virtio-serial port carrying yamux, served on the
    /// host as a hybrid vsock socket by an in-process proxy.
    Serial,
}

impl VsockBackend {
    /// The serial transport, unless `CZ_AGENT_TRANSPORT=vsock` asks for
    /// vsock: then the kernel back end when `/dev/vhost-vsock` opens,
    /// otherwise the vhost-user helper `program`. With the reason for the
    /// choice.
    pub fn detect(program: impl Into<PathBuf>) -> (Self, String) {
        if std::env::var("CZ_AGENT_TRANSPORT").as_deref() != Ok("vsock") {
            return (
                VsockBackend::Serial,
                "a virtio-serial port carries the agent (CZ_AGENT_TRANSPORT=vsock for vsock)"
                    .to_owned(),
            );
        }
        Self::detect_vsock(program)
    }

    /// The kernel back end when `/dev/vhost-vsock` opens, otherwise the
    /// vhost-user helper `program`; with the reason for the choice.
    pub fn detect_vsock(program: impl Into<PathBuf>) -> (Self, String) {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/vhost-vsock")
        {
            Ok(_) => (VsockBackend::Kernel, "/dev/vhost-vsock opens".to_owned()),
            Err(err) => (
                VsockBackend::VhostUser {
                    program: program.into(),
                },
                format!(
                    "/dev/vhost-vsock does not open ({err}), so vhost-device-vsock serves vsock"
                ),
            ),
        }
    }
}

/// Where a running guest's vsock is reached from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsockEndpoint {
    /// `AF_VSOCK` to this guest CID.
    Cid(u32),
    /// The hybrid unix socket of a `vhost-device-vsock`.
    Hybrid(PathBuf),
}

impl VsockEndpoint {
    /// A connector for the agent client (and for stdio streams).
    pub fn connector(&self) -> Arc<dyn Connector> {
        match self {
            VsockEndpoint::Cid(cid) => Arc::new(VsockConnector::new(*cid)),
            VsockEndpoint::Hybrid(path) => Arc::new(HybridVsockConnector::new(path.clone())),
        }
    }
}

impl VsockEndpoint {
    /// Listens for connections the guest opens to host `port` (how a
    /// process's stdio streams reach the host): `AF_VSOCK` on the host CID,
    /// or the hybrid back end's `<socket>_<port>` unix socket.
    ///
    /// Only this VM is served: over `AF_VSOCK`, a connection from another
    /// guest CID (every guest can reach a port bound to any CID) is closed
    /// unserved; on a unix socket (0600), one from a user other than this
    /// one and root.
    pub fn listen(&self, port: u32) -> Result<HostListener, VmmError> {
        match self {
            VsockEndpoint::Cid(cid) => {
                let address = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port);
                tokio_vsock::VsockListener::bind(address)
                    .map(|listener| HostListener::Vsock(listener, *cid))
                    .map_err(|source| VmmError::Io {
                        path: PathBuf::from(format!("vsock port {port}")),
                        source,
                    })
            }
            VsockEndpoint::Hybrid(path) => {
                let path = HybridVsockConnector::new(path.clone()).host_listener_path(port);
                let _ = std::fs::remove_file(&path);
                let listener = tokio::net::UnixListener::bind(&path).map_err(io_at(&path))?;
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .map_err(io_at(&path))?;
                Ok(HostListener::Unix(listener, path))
            }
        }
    }
}

/// The host end of guest-initiated vsock connections to one port.
#[derive(Debug)]
pub enum HostListener {
    /// `AF_VSOCK`, serving only this guest CID.
    Vsock(tokio_vsock::VsockListener, u32),
    /// A unix socket of the hybrid back end, removed on drop.
    Unix(tokio::net::UnixListener, PathBuf),
}

impl HostListener {
    /// Waits for the guest's next connection; others are closed unserved.
    pub async fn accept(&self) -> Result<BoxedStream, VmmError> {
        loop {
            match self {
                HostListener::Vsock(listener, cid) => {
                    let (stream, peer) =
                        listener.accept().await.map_err(|source| VmmError::Io {
                            path: PathBuf::from("vsock listener"),
                            source,
                        })?;
                    if peer.cid() == *cid {
                        return Ok(Box::new(stream));
                    }
                    tracing::warn!(
                        peer = peer.cid(),
                        cid,
                        "refused a vsock connection from another guest"
                    );
                }
                HostListener::Unix(listener, path) => {
                    let (stream, _) = listener.accept().await.map_err(io_at(path))?;
                    if containerization_agent::mux::peer_may_connect(&stream) {
                        return Ok(Box::new(GuestStream(stream)));
                    }
                }
            }
        }
    }
}

impl Drop for HostListener {
    fn drop(&mut self) {
        if let HostListener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An exclusive claim on a guest CID, held as long as the value lives.
#[derive(Debug)]
pub struct CidLease(NumberLease);

impl CidLease {
    /// Claims the lowest free CID, using lock files in `dir`.
    pub fn acquire(dir: &Path) -> Result<Self, VmmError> {
        NumberLease::acquire(dir, FIRST_GUEST_CID..FIRST_GUEST_CID + 65_536, "vsock CID").map(Self)
    }

    /// The folder of CID locks shared by every process on this host.
    pub fn default_dir() -> PathBuf {
        let run = Path::new("/run/containerization/vsock-cids");
        if std::fs::create_dir_all(run).is_ok() {
            return run.to_path_buf();
        }
        std::env::temp_dir().join("containerization-vsock-cids")
    }

    /// The claimed CID.
    pub fn cid(&self) -> u32 {
        self.0.number()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_leases_get_distinct_cids_and_reuse_freed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = CidLease::acquire(dir.path()).unwrap();
        let b = CidLease::acquire(dir.path()).unwrap();
        assert_eq!(a.cid(), FIRST_GUEST_CID);
        assert_eq!(b.cid(), FIRST_GUEST_CID + 1);
        drop(a);
        // A child another test forks at that moment holds a copy of the
        // lock's descriptor until it execs, so the CID may come free a
        // moment later: it must be handed out again once it has.
        let mut reused = false;
        for _ in 0..200 {
            let c = CidLease::acquire(dir.path()).unwrap();
            assert_ne!(c.cid(), b.cid(), "a held CID is never handed out");
            if c.cid() == FIRST_GUEST_CID {
                reused = true;
                break;
            }
            drop(c);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(reused, "a freed CID is handed out again");
    }

    #[tokio::test]
    async fn a_port_listener_is_0600_and_serves_only_this_user_and_root() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let endpoint = VsockEndpoint::Hybrid(dir.path().join("vsock.sock"));
        let listener = endpoint.listen(1025).unwrap();
        let path = dir.path().join("vsock.sock_1025");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        if rustix::process::geteuid().is_root() {
            // Opened to everyone, as if its folder and mode had been: another
            // user's connection is closed, not handed on as the guest's.
            std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o777)).unwrap();
            std::fs::set_permissions(&path, PermissionsExt::from_mode(0o777)).unwrap();
            let program = format!(
                "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({:?})\n\
                 s.settimeout(5)\ntry:\n s.sendall(b'stdout of a stranger')\n \
                 print(repr(s.recv(8)))\nexcept OSError:\n print(repr(b''))",
                path.display().to_string()
            );
            let stranger = tokio::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .args(["/usr/bin/python3", "-c", &program])
                .output();
            let (out, accepted) = tokio::join!(stranger, async {
                tokio::time::timeout(std::time::Duration::from_secs(2), listener.accept()).await
            });
            let out = out.unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(said.trim(), "b''", "closed unserved: {stderr}");
            assert!(accepted.is_err(), "a stranger's connection was accepted");
        }
        let _mine = tokio::net::UnixStream::connect(&path).await.unwrap();
        let accepted = tokio::time::timeout(std::time::Duration::from_secs(5), listener.accept());
        assert!(accepted.await.unwrap().is_ok(), "this user's connection");
    }

    #[test]
    fn vsock_detection_picks_vhost_user_without_dev_vhost_vsock() {
        let (backend, why) = VsockBackend::detect_vsock("/opt/vhost-device-vsock");
        if Path::new("/dev/vhost-vsock").exists() {
            eprintln!("this host has /dev/vhost-vsock: {why}");
        } else {
            assert_eq!(
                backend,
                VsockBackend::VhostUser {
                    program: PathBuf::from("/opt/vhost-device-vsock")
                }
            );
            assert!(why.contains("does not open"), "{why}");
        }
    }

    #[test]
    fn the_serial_transport_is_the_default() {
        if std::env::var_os("CZ_AGENT_TRANSPORT").is_none() {
            let (backend, why) = VsockBackend::detect("/opt/vhost-device-vsock");
            assert_eq!(backend, VsockBackend::Serial, "{why}");
        }
    }
}

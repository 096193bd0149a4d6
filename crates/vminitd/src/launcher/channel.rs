//! The typed channel between vminitd and the launcher's stages.
//!
//! One `socketpair(2)`: vminitd keeps one end, the launcher gets the other
//! (its number is passed on the launcher's command line, never assumed).
//! Each message is a little-endian `u32` length and that many bytes of JSON;
//! a message that carries a descriptor ([`Message::Terminal`]) sends it with
//! its first byte (`SCM_RIGHTS`), in the same `sendmsg(2)`, so the launcher's
//! two stages writing at once can never separate the two.
//! The launcher's end is close-on-exec in the last stage, so end of file
//! after [`Message::Registered`] means the container process is running.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The largest message accepted: a spec is a few kilobytes.
const MAX_MESSAGE: u32 = 16 << 20;

/// What the stages tell each other.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Message {
    /// vminitd → launcher: what to start.
    Launch(Box<LaunchConfig>),
    /// launcher → vminitd: the container process exists with this pid (as
    /// vminitd sees it); it waits for [`Message::Registered`] to go on.
    Started {
        /// The process's pid in vminitd's PID namespace.
        pid: i32,
    },
    /// vminitd → launcher: the reaper knows the pid; the launcher may go on.
    Registered,
    /// launcher → vminitd: the launch failed, and why.
    Failed(Failure),
    /// launcher → vminitd: something was skipped on purpose; vminitd logs it
    /// (the launcher's own standard streams belong to the container).
    Warning(String),
    /// launcher → vminitd: the primary end of the process's terminal, opened
    /// in the container's own `devpts` (the process has the secondary end).
    Terminal {
        /// The descriptor, passed beside the message; `None` only when it
        /// did not arrive.
        #[serde(skip)]
        primary: Option<OwnedFd>,
    },
}

impl Message {
    /// The descriptor that travels with this message, if any.
    fn descriptor(&self) -> Option<&OwnedFd> {
        match self {
            Message::Terminal { primary } => primary.as_ref(),
            _ => None,
        }
    }

    /// Gives the message the descriptor that arrived with it.
    fn attach(&mut self, fd: OwnedFd) {
        if let Message::Terminal { primary } = self {
            *primary = Some(fd);
        }
    }
}

/// What to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LaunchConfig {
    /// The container's OCI runtime spec; its `process` is the one to run.
    pub(crate) spec: oci_spec::runtime::Spec,
    /// A new container, or a process joining a running one.
    pub(crate) target: Target,
    /// A terminal of this size for the process, opened in the container's
    /// `devpts` by the last stage; `None`: the streams vminitd passed.
    pub(crate) terminal: Option<TerminalSize>,
    /// The cgroup (a folder of the cgroup2 hierarchy) to join, if any.
    pub(crate) cgroup: Option<PathBuf>,
}

/// A terminal's size in characters.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct TerminalSize {
    /// Lines.
    pub(crate) rows: u32,
    /// Characters per line.
    pub(crate) columns: u32,
}

/// A new container or an existing one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Target {
    /// New namespaces and `pivot_root` into this folder.
    Create {
        /// The container's root file system.
        rootfs: PathBuf,
    },
    /// Join the namespaces of this running process (the container's init).
    Exec {
        /// Its pid in vminitd's PID namespace.
        init_pid: i32,
    },
}

/// Why a launch failed, in words for the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Failure {
    /// What kind of failure, for the gRPC status code.
    pub(crate) kind: FailureKind,
    /// What happened, naming the step and the path or value.
    pub(crate) message: String,
}

/// Failure categories, mapped to gRPC status codes by vminitd.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// A file (often the program) does not exist.
    NotFound,
    /// The kernel refused.
    PermissionDenied,
    /// The spec asks for something impossible.
    InvalidArgument,
    /// Anything else.
    Other,
}

impl Failure {
    /// A failure of `step` because of `err`, categorised by its errno.
    pub(crate) fn io(step: impl std::fmt::Display, err: &std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => FailureKind::NotFound,
            std::io::ErrorKind::PermissionDenied => FailureKind::PermissionDenied,
            std::io::ErrorKind::InvalidInput => FailureKind::InvalidArgument,
            _ => FailureKind::Other,
        };
        Self {
            kind,
            message: format!("{step}: {}", describe_errno(err)),
        }
    }

    /// A failure of kind `kind` with `message`.
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<rustix::io::Errno> for Failure {
    fn from(errno: rustix::io::Errno) -> Self {
        Failure::io("system call", &errno.into())
    }
}

/// "no such file or directory" rather than "No such file or directory (os error 2)".
pub(crate) fn describe_errno(err: &std::io::Error) -> String {
    let text = err.to_string();
    text.split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_lowercase()
}

/// One end of the channel.
#[derive(Debug)]
pub(crate) struct Channel {
    stream: UnixStream,
}

impl Channel {
    /// A connected pair; both ends close on exec.
    pub(crate) fn pair() -> std::io::Result<(Channel, Channel)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Channel { stream: a }, Channel { stream: b }))
    }

    /// Wraps an inherited end.
    pub(crate) fn from_fd(fd: OwnedFd) -> Self {
        Self {
            stream: UnixStream::from(fd),
        }
    }

    /// The socket, to pass to the launcher or to change its flags.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.stream)
    }

    /// Bounds every later receive.
    pub(crate) fn set_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// Sends one message.
    pub(crate) fn send(&mut self, message: &Message) -> std::io::Result<()> {
        let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
        let len = u32::try_from(body.len())
            .ok()
            .filter(|len| *len <= MAX_MESSAGE)
            .ok_or_else(|| std::io::Error::other("launcher message too large"))?;
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&body);
        let Some(fd) = message.descriptor() else {
            return self.stream.write_all(&frame);
        };
        let fds = [fd.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        if !control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)) {
            return Err(std::io::Error::other("no room for the descriptor"));
        }
        // The descriptor goes with the first byte; the rest follows as usual.
        let sent = rustix::net::sendmsg(
            &self.stream,
            &[IoSlice::new(&frame)],
            &mut control,
            rustix::net::SendFlags::NOSIGNAL,
        )?;
        self.stream.write_all(&frame[sent..])
    }

    /// Receives one message; `None` at end of file.
    pub(crate) fn receive(&mut self) -> std::io::Result<Option<Message>> {
        let mut len = [0u8; 4];
        let mut fd = None;
        let mut filled = 0;
        // The length is read with recvmsg(2): a descriptor arrives with the
        // first byte of the message it belongs to.
        while filled < len.len() {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
            let got = match rustix::net::recvmsg(
                &self.stream,
                &mut [IoSliceMut::new(&mut len[filled..])],
                &mut control,
                rustix::net::RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(got) => got,
                Err(rustix::io::Errno::INTR) => continue,
                Err(errno) => return Err(errno.into()),
            };
            for message in control.drain() {
                if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = message {
                    for received in fds {
                        fd.get_or_insert(received);
                    }
                }
            }
            match got.bytes {
                0 if filled == 0 => return Ok(None),
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        let len = u32::from_le_bytes(len);
        if len > MAX_MESSAGE {
            return Err(std::io::Error::other(format!(
                "launcher message of {len} bytes is over the limit"
            )));
        }
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body)?;
        let mut message: Message = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
        if let Some(fd) = fd {
            message.attach(fd);
        }
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_the_pair_and_end_of_file_is_none() {
        let (mut a, mut b) = Channel::pair().unwrap();
        a.send(&Message::Started { pid: 42 }).unwrap();
        drop(a);
        assert!(matches!(
            b.receive().unwrap(),
            Some(Message::Started { pid: 42 })
        ));
        assert!(b.receive().unwrap().is_none());
    }

    #[test]
    fn a_terminal_message_carries_its_descriptor() {
        let (mut a, mut b) = Channel::pair().unwrap();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        a.send(&Message::Warning("before".into())).unwrap();
        a.send(&Message::Terminal {
            primary: Some(OwnedFd::from(theirs)),
        })
        .unwrap();
        a.send(&Message::Started { pid: 7 }).unwrap();
        assert!(matches!(b.receive().unwrap(), Some(Message::Warning(w)) if w == "before"));
        let Some(Message::Terminal { primary: Some(fd) }) = b.receive().unwrap() else {
            panic!("no descriptor arrived");
        };
        // The descriptor is the other end of `ours`: what is written there
        // comes out here.
        ours.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        UnixStream::from(fd).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        assert!(matches!(
            b.receive().unwrap(),
            Some(Message::Started { pid: 7 })
        ));
    }
}

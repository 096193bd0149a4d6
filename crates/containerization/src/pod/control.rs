//! The pod owner's control socket: how the process that adds a container to
//! a pod asks the owner (which alone holds the VM's QMP connection) to give
//! the VM the container's disk and take it back, and to mount and release
//! the pod's volumes. One JSON request and one JSON reply per connection,
//! each a line. The socket sits in the pod's private run folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::Error;

/// How long a request may take: a detach waits up to 10 s for the guest.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a container's owner asks of the pod's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    /// Attach a container's root disk; the reply names its SCSI target.
    AttachDisk {
        /// The image (a qcow2 overlay or a raw ext4 base).
        path: PathBuf,
        /// Attach it read-only.
        read_only: bool,
    },
    /// Detach the disk at a target (the guest has unmounted it).
    DetachDisk {
        /// The SCSI target.
        target: u16,
    },
    /// Mount named volume `name` in the VM (attached once, whoever asks
    /// after shares it); the reply names where it is mounted.
    UseVolume {
        /// The volume.
        name: String,
        /// The user only reads it.
        read_only: bool,
    },
    /// One user of volume `name` is done; the last one's release unmounts
    /// and detaches it.
    ReleaseVolume {
        /// The volume.
        name: String,
    },
    /// Mount the pod's shared tmpfs `name` (once: later asks find it
    /// mounted, with the first ask's size and mode); it lives as long as
    /// the pod's VM.
    UseTmpfs {
        /// Its name.
        name: String,
        /// Its size limit in bytes.
        size_bytes: Option<u64>,
        /// The mode of its root.
        mode: Option<u32>,
    },
    /// Stop the pod: its containers are killed and its VM stopped.
    Stop,
}

/// The owner's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub(crate) enum Reply {
    /// The disk is attached at `target`.
    Attached {
        /// The SCSI target.
        target: u16,
    },
    /// The volume is mounted at `path` in the guest.
    Volume {
        /// The guest path.
        path: String,
    },
    /// Done.
    Done,
    /// The request failed.
    Failed {
        /// Why.
        message: String,
    },
}

/// Sends `request` to the owner listening on `socket` and returns its
/// reply; a `Failed` reply is [`Error::PodRequest`] for pod `pod`.
pub(crate) async fn call(pod: &str, socket: &Path, request: &Request) -> Result<Reply, Error> {
    let failed = |detail: String| Error::PodRequest {
        pod: pod.to_owned(),
        detail,
    };
    let exchange = async {
        let stream = UnixStream::connect(socket).await?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
        line.push(b'\n');
        write.write_all(&line).await?;
        write.shutdown().await?;
        let mut reply = String::new();
        BufReader::new(read).read_line(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => {
            return Err(failed(format!(
                "cannot reach its owner at {}: {error}",
                socket.display()
            )));
        }
        Err(_) => return Err(failed("its owner did not answer within 30 s".to_owned())),
    };
    let reply: Reply = serde_json::from_str(&reply).map_err(|e| {
        failed(format!(
            "its owner's answer {reply:?} is not understood: {e}"
        ))
    })?;
    match reply {
        Reply::Failed { message } => Err(failed(message)),
        reply => Ok(reply),
    }
}

/// Reads one request from `stream`, answers it with `handle`'s reply.
pub(crate) async fn serve_one<F, Fut>(stream: UnixStream, handle: F) -> std::io::Result<()>
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => handle(request).await,
        Err(error) => Reply::Failed {
            message: format!("a request that is not understood: {error}"),
        },
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_gets_its_reply_and_a_failure_names_the_pod() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.unwrap();
                serve_one(stream, |request| async move {
                    match request {
                        Request::DetachDisk { target } => Reply::Failed {
                            message: format!("no disk at target {target}"),
                        },
                        _ => Reply::Attached { target: 3 },
                    }
                })
                .await
                .unwrap();
            }
        });
        let attach = Request::AttachDisk {
            path: "/x".into(),
            read_only: false,
        };
        assert_eq!(
            call("web", &socket, &attach).await.unwrap(),
            Reply::Attached { target: 3 }
        );
        let error = call("web", &socket, &Request::DetachDisk { target: 9 })
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "pod web: no disk at target 9");
        server.await.unwrap();
        let gone = call("web", &socket, &Request::Stop).await.unwrap_err();
        assert!(
            gone.to_string().contains("cannot reach its owner"),
            "{gone}"
        );
    }
}

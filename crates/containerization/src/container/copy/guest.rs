//! The guest end of a copy: a container's tree as its agent reaches it,
//! with the tar stream over a vsock stream of its own (never the gRPC
//! channel), bridged to blocking readers and writers on the host.

use std::io::{Read, Write};

use containerization_agent::proto::v1::stream_endpoint::Target;
use containerization_agent::proto::v1::{
    CopyInRequest, CopyOutRequest, CopyRoot, StatResponse, StreamEndpoint,
};
use containerization_agent::{AgentClient, AgentError};
use containerization_archive::{Kind, PathInfo};
use containerization_vmm::VsockEndpoint;
use tokio_util::io::SyncIoBridge;

use super::super::process::port_base;
use crate::Error;

/// Where a copy's guest paths are: an agent, where its streams come back
/// to, and the root its paths are resolved in.
pub(crate) struct GuestView {
    pub agent: AgentClient,
    pub vsock: VsockEndpoint,
    pub root: CopyRoot,
}

/// `stat`'s answer as the archive crate's [`PathInfo`].
fn info(stat: &StatResponse) -> PathInfo {
    PathInfo {
        kind: match rustix::fs::FileType::from_raw_mode(stat.mode) {
            rustix::fs::FileType::RegularFile => Kind::File,
            rustix::fs::FileType::Directory => Kind::Directory,
            rustix::fs::FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        },
        mode: stat.mode,
        size: stat.size,
        uid: stat.uid,
        gid: stat.gid,
        mtime: stat.mtime_seconds,
        link_target: (!stat.link_target.is_empty()).then(|| stat.link_target.clone().into()),
    }
}

impl GuestView {
    /// What `path` is in the container, `None` when it is not there.
    pub async fn stat(&self, path: &str, follow_link: bool) -> Result<Option<PathInfo>, Error> {
        match self
            .agent
            .stat_in(self.root.clone(), path, follow_link)
            .await
        {
            Ok(stat) => Ok(Some(info(&stat))),
            Err(AgentError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// A port for one stream and where the agent dials it.
    fn endpoint(&self, what: &str) -> (u32, StreamEndpoint) {
        let port = port_base(what) + 3;
        let endpoint = StreamEndpoint {
            target: Some(Target::VsockPort(port)),
        };
        (port, endpoint)
    }

    /// Archives `path` (top entry `name`) in the guest and hands the tar
    /// stream to `sink`, run on a blocking thread.
    pub async fn receive<T: Send + 'static>(
        &self,
        path: &str,
        name: &str,
        follow_link: bool,
        sink: impl FnOnce(&mut dyn Read) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let (port, endpoint) = self.endpoint(path);
        let listener = self.vsock.listen(port)?;
        let request = CopyOutRequest {
            source: path.to_owned(),
            destination: Some(endpoint),
            root: Some(self.root.clone()),
            follow_link,
            name: name.to_owned(),
        };
        let agent = self.agent.clone();
        let mut copying = tokio::spawn(async move { agent.copy_out(request).await });
        let stream = tokio::select! {
            stream = listener.accept() => stream?,
            answer = &mut copying => {
                // It answered before dialling: an error, whatever it says.
                answer.map_err(|e| Error::CopyRefused(e.to_string()))??;
                return Err(Error::CopyRefused("the guest sent no archive".to_owned()));
            }
        };
        let reading = tokio::task::spawn_blocking(move || {
            let mut bridge = SyncIoBridge::new(stream);
            let result = sink(&mut bridge);
            // What the sink left unread is drained, so the guest finishes.
            let _ = std::io::copy(&mut bridge, &mut std::io::sink());
            result
        });
        let received = reading
            .await
            .map_err(|e| Error::CopyRefused(e.to_string()))?;
        copying
            .await
            .map_err(|e| Error::CopyRefused(e.to_string()))??;
        received
    }

    /// Has `source` write a tar stream (on a blocking thread) that the
    /// guest unpacks into folder `destination`.
    pub async fn send(
        &self,
        destination: &str,
        keep_owners: bool,
        source: impl FnOnce(&mut dyn Write) -> Result<(), Error> + Send + 'static,
    ) -> Result<(), Error> {
        let (port, endpoint) = self.endpoint(destination);
        let listener = self.vsock.listen(port)?;
        let request = CopyInRequest {
            source: Some(endpoint),
            destination: destination.to_owned(),
            root: Some(self.root.clone()),
            keep_owners,
        };
        let agent = self.agent.clone();
        let mut copying = tokio::spawn(async move { agent.copy_in(request).await });
        let stream = tokio::select! {
            stream = listener.accept() => stream?,
            answer = &mut copying => {
                answer.map_err(|e| Error::CopyRefused(e.to_string()))??;
                return Err(Error::CopyRefused("the guest took no archive".to_owned()));
            }
        };
        let writing = tokio::task::spawn_blocking(move || {
            let mut bridge = SyncIoBridge::new(stream);
            let written = source(&mut bridge);
            // End of file for the guest, whether the archive is whole or not.
            let _ = bridge.flush();
            let _ = bridge.shutdown();
            (written, bridge)
        });
        let (written, stream) = writing
            .await
            .map_err(|e| Error::CopyRefused(e.to_string()))?;
        // The stream stays open (half closed) until the guest has read it
        // all: a stream closed both ways is reset by the serial transport's
        // proxy, which drops what it has not delivered yet.
        let unpacked = copying
            .await
            .map_err(|e| Error::CopyRefused(e.to_string()))?;
        drop(stream);
        // The guest's refusal says more than the broken stream it caused.
        unpacked?;
        written
    }
}

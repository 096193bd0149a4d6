//! The sandbox protocol's server: each RPC mapped to the guest's system calls.

use std::path::Path;

use containerization_agent::proto::v1::sandbox_server::{Sandbox, SandboxServer};
use containerization_agent::proto::v1::*;
use rustix::mount::MountFlags;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::Listen;
use crate::process::Processes;
use crate::reaper::Reaper;

/// How long open connections may delay the end of serving after shutdown.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Errors that end serving.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The listening socket could not be set up.
    #[error("cannot listen on {what}: {source}")]
    Listen {
        /// The socket.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("the agent server failed: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// The agent: the process table and the shutdown trigger.
struct Agent {
    processes: Processes,
    shutdown: watch::Sender<bool>,
    pid1: bool,
}

/// Serves the protocol on `listen` until shutdown or SIGTERM.
pub(crate) async fn serve(listen: Listen, pid1: bool) -> Result<(), ServeError> {
    let reaper = Reaper::default();
    reaper.spawn_task().map_err(|source| ServeError::Listen {
        what: "SIGCHLD".into(),
        source,
    })?;
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let on_term = shutdown_tx.clone();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| ServeError::Listen {
            what: "SIGTERM".into(),
            source,
        })?;
    tokio::spawn(async move {
        if sigterm.recv().await.is_some() {
            tracing::info!("SIGTERM: shutting down");
            let _ = on_term.send(true);
        }
    });
    let cgroups = crate::launcher::cgroups::Cgroups::discover(pid1);
    let agent = Agent {
        processes: Processes::new(reaper, cgroups),
        shutdown: shutdown_tx,
        pid1,
    };
    let processes = agent.processes.clone();
    let service = SandboxServer::new(agent);
    let mut drain_rx = shutdown_rx.clone();
    // Graceful shutdown waits for every connection to close; an idle client
    // that keeps its connection open must not keep the agent (or the VM)
    // up, so draining gets a bound.
    let drained = async move {
        let _ = drain_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
        tracing::info!("connections still open after shutdown: stopping anyway");
    };
    let stopped = async move {
        let _ = shutdown_rx.wait_for(|stop| *stop).await;
        // Let the Shutdown call's answer reach the host.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let router = tonic::transport::Server::builder().add_service(service);
    match listen {
        Listen::Vsock(port) => {
            let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port);
            let listener =
                tokio_vsock::VsockListener::bind(addr).map_err(|source| ServeError::Listen {
                    what: format!("vsock port {port}"),
                    source,
                })?;
            tracing::info!("serving on vsock port {port}");
            tokio::select! {
                served = router.serve_with_incoming_shutdown(listener.incoming(), stopped) => served?,
                () = drained => {}
            }
        }
        Listen::Unix(path) => {
            let _ = std::fs::remove_file(&path);
            let listener =
                tokio::net::UnixListener::bind(&path).map_err(|source| ServeError::Listen {
                    what: path.display().to_string(),
                    source,
                })?;
            tracing::info!("serving on {}", path.display());
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            tokio::select! {
                served = router.serve_with_incoming_shutdown(incoming, stopped) => served?,
                () = drained => {}
            }
            let _ = std::fs::remove_file(&path);
        }
    }
    processes.remove_cgroups();
    Ok(())
}

fn io_status(what: impl std::fmt::Display, err: std::io::Error) -> Status {
    let message = format!("{what}: {err}");
    match err.kind() {
        std::io::ErrorKind::NotFound => Status::not_found(message),
        std::io::ErrorKind::PermissionDenied => Status::permission_denied(message),
        std::io::ErrorKind::AlreadyExists => Status::already_exists(message),
        std::io::ErrorKind::InvalidInput => Status::invalid_argument(message),
        _ => Status::internal(message),
    }
}

/// Splits mount(8)-style options into flags and the data string.
fn mount_options(options: &[String]) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match option.as_str() {
            "ro" => flags |= MountFlags::RDONLY,
            "rw" | "defaults" => {}
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "noatime" => flags |= MountFlags::NOATIME,
            "relatime" => flags |= MountFlags::RELATIME,
            "sync" => flags |= MountFlags::SYNCHRONOUS,
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

#[tonic::async_trait]
impl Sandbox for Agent {
    async fn version(
        &self,
        _: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        let uname = rustix::system::uname();
        let text = |s: &std::ffi::CStr| s.to_string_lossy().into_owned();
        Ok(Response::new(VersionResponse {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            sysname: text(uname.sysname()),
            nodename: text(uname.nodename()),
            release: text(uname.release()),
            version: text(uname.version()),
            machine: text(uname.machine()),
            pid1: self.pid1,
        }))
    }

    async fn sync(&self, _: Request<SyncRequest>) -> Result<Response<SyncResponse>, Status> {
        tokio::task::spawn_blocking(rustix::fs::sync)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(SyncResponse {}))
    }

    async fn shutdown(
        &self,
        _: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        tracing::info!("shutdown requested");
        let _ = self.shutdown.send(true);
        Ok(Response::new(ShutdownResponse {}))
    }

    async fn mount(
        &self,
        request: Request<MountRequest>,
    ) -> Result<Response<MountResponse>, Status> {
        let m = request.into_inner();
        if m.target.is_empty() || !m.target.starts_with('/') {
            return Err(Status::invalid_argument(format!(
                "mount target {:?} must be an absolute path",
                m.target
            )));
        }
        if m.create_target {
            std::fs::create_dir_all(&m.target).map_err(|e| io_status(&m.target, e))?;
        }
        let (flags, data) = mount_options(&m.options);
        let data = std::ffi::CString::new(data)
            .map_err(|_| Status::invalid_argument("mount options contain a NUL byte"))?;
        rustix::mount::mount(
            m.source.as_str(),
            m.target.as_str(),
            m.fstype.as_str(),
            flags,
            data.as_c_str(),
        )
        .map_err(|e| {
            io_status(
                format!("mount {} ({}) on {}", m.source, m.fstype, m.target),
                e.into(),
            )
        })?;
        Ok(Response::new(MountResponse {}))
    }

    async fn umount(
        &self,
        request: Request<UmountRequest>,
    ) -> Result<Response<UmountResponse>, Status> {
        let u = request.into_inner();
        let flags = if u.lazy {
            rustix::mount::UnmountFlags::DETACH
        } else {
            rustix::mount::UnmountFlags::empty()
        };
        rustix::mount::unmount(u.target.as_str(), flags)
            .map_err(|e| io_status(format!("umount {}", u.target), e.into()))?;
        Ok(Response::new(UmountResponse {}))
    }

    async fn mkdir(
        &self,
        request: Request<MkdirRequest>,
    ) -> Result<Response<MkdirResponse>, Status> {
        use std::os::unix::fs::DirBuilderExt;
        let m = request.into_inner();
        let mode = if m.mode == 0 { 0o755 } else { m.mode };
        std::fs::DirBuilder::new()
            .recursive(m.parents)
            .mode(mode)
            .create(&m.path)
            .map_err(|e| io_status(format!("mkdir {}", m.path), e))?;
        Ok(Response::new(MkdirResponse {}))
    }

    async fn write_file(
        &self,
        request: Request<WriteFileRequest>,
    ) -> Result<Response<WriteFileResponse>, Status> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let w = request.into_inner();
        let mode = if w.mode == 0 { 0o644 } else { w.mode };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .append(w.append)
            .truncate(!w.append)
            .mode(mode)
            .open(&w.path)
            .map_err(|e| io_status(format!("open {}", w.path), e))?;
        file.write_all(&w.data)
            .map_err(|e| io_status(format!("write {}", w.path), e))?;
        Ok(Response::new(WriteFileResponse {}))
    }

    async fn stat(&self, request: Request<StatRequest>) -> Result<Response<StatResponse>, Status> {
        use std::os::unix::fs::MetadataExt;
        let path = request.into_inner().path;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io_status(&path, e))?;
        Ok(Response::new(StatResponse {
            mode: meta.mode(),
            size: meta.size(),
            uid: meta.uid(),
            gid: meta.gid(),
            mtime_seconds: meta.mtime(),
            mtime_nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        }))
    }

    async fn set_hostname(
        &self,
        request: Request<SetHostnameRequest>,
    ) -> Result<Response<SetHostnameResponse>, Status> {
        let name = request.into_inner().hostname;
        if name.is_empty() || name.len() > 64 {
            return Err(Status::invalid_argument(format!(
                "host name {name:?} must be 1 to 64 bytes"
            )));
        }
        rustix::system::sethostname(name.as_bytes())
            .map_err(|e| io_status(format!("sethostname {name}"), e.into()))?;
        Ok(Response::new(SetHostnameResponse {}))
    }

    async fn set_time(
        &self,
        request: Request<SetTimeRequest>,
    ) -> Result<Response<SetTimeResponse>, Status> {
        let t = request.into_inner();
        if t.nanos >= 1_000_000_000 {
            return Err(Status::invalid_argument("nanos must be below one second"));
        }
        let timespec = rustix::time::Timespec {
            tv_sec: t.seconds,
            tv_nsec: i64::from(t.nanos),
        };
        rustix::time::clock_settime(rustix::time::ClockId::Realtime, timespec)
            .map_err(|e| io_status("clock_settime", e.into()))?;
        Ok(Response::new(SetTimeResponse {}))
    }

    async fn sysctl(
        &self,
        request: Request<SysctlRequest>,
    ) -> Result<Response<SysctlResponse>, Status> {
        for (key, value) in request.into_inner().settings {
            if key.is_empty() || key.contains("..") || key.contains('/') {
                return Err(Status::invalid_argument(format!(
                    "{key:?} is not a sysctl key"
                )));
            }
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, value.as_bytes())
                .map_err(|e| io_status(format!("sysctl {key}"), e))?;
        }
        Ok(Response::new(SysctlResponse {}))
    }

    async fn create_process(
        &self,
        request: Request<CreateProcessRequest>,
    ) -> Result<Response<CreateProcessResponse>, Status> {
        self.processes.create(request.into_inner()).await?;
        Ok(Response::new(CreateProcessResponse {}))
    }

    async fn start_process(
        &self,
        request: Request<StartProcessRequest>,
    ) -> Result<Response<StartProcessResponse>, Status> {
        let pid = self.processes.start(&request.into_inner().id).await?;
        Ok(Response::new(StartProcessResponse { pid }))
    }

    async fn wait_process(
        &self,
        request: Request<WaitProcessRequest>,
    ) -> Result<Response<WaitProcessResponse>, Status> {
        Ok(Response::new(
            self.processes.wait(&request.into_inner().id).await?,
        ))
    }

    async fn kill_process(
        &self,
        request: Request<KillProcessRequest>,
    ) -> Result<Response<KillProcessResponse>, Status> {
        let k = request.into_inner();
        self.processes.kill(&k.id, k.signal)?;
        Ok(Response::new(KillProcessResponse {}))
    }

    async fn close_stdin(
        &self,
        request: Request<CloseStdinRequest>,
    ) -> Result<Response<CloseStdinResponse>, Status> {
        self.processes.close_stdin(&request.into_inner().id)?;
        Ok(Response::new(CloseStdinResponse {}))
    }

    async fn resize_process(
        &self,
        request: Request<ResizeProcessRequest>,
    ) -> Result<Response<ResizeProcessResponse>, Status> {
        let r = request.into_inner();
        self.processes.resize(&r.id, r.rows, r.columns)?;
        Ok(Response::new(ResizeProcessResponse {}))
    }

    async fn delete_process(
        &self,
        request: Request<DeleteProcessRequest>,
    ) -> Result<Response<DeleteProcessResponse>, Status> {
        self.processes.delete(&request.into_inner().id)?;
        Ok(Response::new(DeleteProcessResponse {}))
    }

    async fn container_statistics(
        &self,
        request: Request<ContainerStatisticsRequest>,
    ) -> Result<Response<ContainerStatisticsResponse>, Status> {
        Ok(Response::new(
            self.processes.statistics(&request.into_inner().id)?,
        ))
    }
}

//! The sandbox protocol's server: each RPC mapped to the guest's system calls.

use std::path::Path;

use containerization_agent::proto::v1::sandbox_server::{Sandbox, SandboxServer};
use containerization_agent::proto::v1::*;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::Listen;
use crate::filesystem::io_status;
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
    network: crate::network::Network,
}

/// Serves the protocol on `listen` until shutdown or SIGTERM.
pub(crate) async fn serve(listen: Listen, pid1: bool) -> Result<(), ServeError> {
    tracing::debug!("async runtime up");
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
    let network = crate::network::Network::default();
    if pid1 {
        // Nothing else in the guest brings up lo.
        match crate::loopback::bring_up() {
            Ok(()) => tracing::debug!("lo up"),
            Err(err) => tracing::warn!("cannot bring up lo: {err}"),
        }
    }
    let cgroups = crate::launcher::cgroups::Cgroups::discover(pid1);
    let agent = Agent {
        processes: Processes::new(reaper, cgroups),
        shutdown: shutdown_tx,
        pid1,
        network,
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
    // One span per call: with a debug log, vminitd's console lines say how
    // long each call took in the guest (see `boot_clock`).
    let router = tonic::transport::Server::builder()
        .trace_fn(|request| tracing::debug_span!("call", path = %request.uri().path()))
        .add_service(service);
    match listen {
        Listen::Vsock(port) => {
            let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port);
            let listener =
                tokio_vsock::VsockListener::bind(addr).map_err(|source| ServeError::Listen {
                    what: format!("vsock port {port}"),
                    source,
                })?;
            tracing::info!("serving on vsock port {port}");
            tokio::spawn(announce_ready());
            tokio::select! {
                served = router.serve_with_incoming_shutdown(listener.incoming(), stopped) => served?,
                () = drained => {}
            }
        }
        Listen::Serial => {
            let port = crate::serial::SerialPort::open().map_err(|source| ServeError::Listen {
                what: "the serial port".into(),
                source,
            })?;
            tracing::info!("serving on serial port {}", port.path().display());
            let (streams, accepted) = tokio::sync::mpsc::channel(16);
            tokio::spawn(port.serve(streams));
            let incoming = tokio_stream::StreamExt::map(
                tokio_stream::wrappers::ReceiverStream::new(accepted),
                Ok::<_, std::io::Error>,
            );
            tokio::select! {
                served = router.serve_with_incoming_shutdown(incoming, stopped) => served?,
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
        crate::filesystem::mount(request.into_inner()).map(Response::new)
    }

    async fn umount(
        &self,
        request: Request<UmountRequest>,
    ) -> Result<Response<UmountResponse>, Status> {
        crate::filesystem::umount(request.into_inner()).map(Response::new)
    }

    async fn find_disk(
        &self,
        request: Request<FindDiskRequest>,
    ) -> Result<Response<FindDiskResponse>, Status> {
        crate::disks::find(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn mkdir(
        &self,
        request: Request<MkdirRequest>,
    ) -> Result<Response<MkdirResponse>, Status> {
        crate::filesystem::mkdir(request.into_inner()).map(Response::new)
    }

    async fn write_file(
        &self,
        request: Request<WriteFileRequest>,
    ) -> Result<Response<WriteFileResponse>, Status> {
        crate::filesystem::write_file(request.into_inner()).map(Response::new)
    }

    async fn stat(&self, request: Request<StatRequest>) -> Result<Response<StatResponse>, Status> {
        let request = request.into_inner();
        let root = match &request.root {
            Some(root) => crate::copy::open_root(root, &self.processes)?,
            None => None,
        };
        blocking(move || crate::filesystem::stat(request, root))
            .await
            .map(Response::new)
    }

    async fn fill_volume(
        &self,
        request: Request<FillVolumeRequest>,
    ) -> Result<Response<FillVolumeResponse>, Status> {
        let r = request.into_inner();
        let entries = blocking(move || crate::fill::fill_volume(&r)).await?;
        Ok(Response::new(FillVolumeResponse { entries }))
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

    async fn add_entropy(
        &self,
        request: Request<AddEntropyRequest>,
    ) -> Result<Response<AddEntropyResponse>, Status> {
        crate::entropy::add(&request.into_inner().data)?;
        Ok(Response::new(AddEntropyResponse {}))
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

    async fn copy_in(
        &self,
        request: Request<CopyInRequest>,
    ) -> Result<Response<CopyInResponse>, Status> {
        let r = request.into_inner();
        let source = r
            .source
            .ok_or_else(|| Status::invalid_argument("copy in: source is missing"))?;
        let root = match &r.root {
            Some(root) => crate::copy::open_root(root, &self.processes)?,
            None => None,
        };
        let entries = blocking(move || {
            crate::copy::copy_in(
                &source,
                std::path::Path::new(&r.destination),
                root,
                r.keep_owners,
            )
        })
        .await?;
        Ok(Response::new(CopyInResponse { entries }))
    }

    async fn copy_out(
        &self,
        request: Request<CopyOutRequest>,
    ) -> Result<Response<CopyOutResponse>, Status> {
        let r = request.into_inner();
        let destination = r
            .destination
            .ok_or_else(|| Status::invalid_argument("copy out: destination is missing"))?;
        let root = match &r.root {
            Some(root) => crate::copy::open_root(root, &self.processes)?,
            None => None,
        };
        let bytes = blocking(move || {
            crate::copy::copy_out(
                std::path::Path::new(&r.source),
                &destination,
                root,
                r.follow_link,
                &r.name,
            )
        })
        .await?;
        Ok(Response::new(CopyOutResponse { bytes }))
    }

    async fn configure_dns(
        &self,
        request: Request<ConfigureDnsRequest>,
    ) -> Result<Response<ConfigureDnsResponse>, Status> {
        let r = request.into_inner();
        let text = crate::etc_files::resolv_conf(&r)?;
        crate::etc_files::write(&r.root, "resolv.conf", &text)?;
        Ok(Response::new(ConfigureDnsResponse {}))
    }

    async fn configure_hosts(
        &self,
        request: Request<ConfigureHostsRequest>,
    ) -> Result<Response<ConfigureHostsResponse>, Status> {
        let r = request.into_inner();
        let text = crate::etc_files::hosts(&r)?;
        crate::etc_files::write(&r.root, "hosts", &text)?;
        Ok(Response::new(ConfigureHostsResponse {}))
    }

    async fn register_binfmt(
        &self,
        request: Request<RegisterBinfmtRequest>,
    ) -> Result<Response<RegisterBinfmtResponse>, Status> {
        crate::binfmt::register(&request.into_inner())?;
        Ok(Response::new(RegisterBinfmtResponse {}))
    }

    async fn link_set(
        &self,
        request: Request<LinkSetRequest>,
    ) -> Result<Response<LinkSetResponse>, Status> {
        let interface = self.network.link_set(request.into_inner()).await?;
        Ok(Response::new(LinkSetResponse {
            interface: Some(interface),
        }))
    }

    async fn address_add(
        &self,
        request: Request<AddressAddRequest>,
    ) -> Result<Response<AddressAddResponse>, Status> {
        self.network.address_add(request.into_inner()).await?;
        Ok(Response::new(AddressAddResponse {}))
    }

    async fn route_add(
        &self,
        request: Request<RouteAddRequest>,
    ) -> Result<Response<RouteAddResponse>, Status> {
        self.network.route_add(request.into_inner()).await?;
        Ok(Response::new(RouteAddResponse {}))
    }

    async fn configure_interface(
        &self,
        request: Request<ConfigureInterfaceRequest>,
    ) -> Result<Response<ConfigureInterfaceResponse>, Status> {
        let interface = self
            .network
            .configure_interface(request.into_inner())
            .await?;
        Ok(Response::new(ConfigureInterfaceResponse {
            interface: Some(interface),
        }))
    }
}

/// Runs blocking work (file copies) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
}

/// Tells the host the agent listens: one connection to its ready port,
/// which a host that does not wait for it simply refuses.
async fn announce_ready() {
    use tokio::io::AsyncWriteExt;
    let host = tokio_vsock::VsockAddr::new(
        containerization_agent::HOST_CID,
        containerization_agent::READY_PORT,
    );
    let dial = tokio_vsock::VsockStream::connect(host);
    match tokio::time::timeout(std::time::Duration::from_secs(5), dial).await {
        Ok(Ok(mut stream)) => {
            let _ = stream.write_all(b"ready\n").await;
            let _ = AsyncWriteExt::shutdown(&mut stream).await;
        }
        Ok(Err(err)) => tracing::debug!("the host does not wait for the ready call: {err}"),
        Err(_) => tracing::debug!("the host did not take the ready call within 5 s"),
    }
}

//! The typed client of the sandbox protocol.
//!
//! Every call has a deadline (waiting on a process has none: it lasts as long
//! as the process) and maps gRPC status codes to [`AgentError`] variants that
//! name the call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::proto::v1::sandbox_client::SandboxClient;
use crate::proto::v1::*;
use crate::{AGENT_PORT, AgentError, Connector};

/// A connection to one agent.
#[derive(Debug, Clone)]
pub struct AgentClient {
    inner: SandboxClient<Channel>,
    deadline: Duration,
}

impl AgentClient {
    /// Connects to the agent through `connector`; every call but
    /// [`AgentClient::wait_process`] gives up after `deadline`.
    ///
    /// Fails at once when the agent cannot be reached: retrying while a guest
    /// boots is the caller's choice.
    pub async fn connect(
        connector: &Arc<dyn Connector>,
        deadline: Duration,
    ) -> Result<Self, AgentError> {
        // Dial once here so an absent agent is reported with its own error;
        // later reconnects go through the same connector.
        let first = connector.connect(AGENT_PORT).await?;
        let first = Arc::new(std::sync::Mutex::new(Some(first)));
        let connector = Arc::clone(connector);
        let service = tower::service_fn(move |_: tonic::transport::Uri| {
            let connector = Arc::clone(&connector);
            let first = Arc::clone(&first);
            async move {
                let ready = first.lock().ok().and_then(|mut slot| slot.take());
                let stream = match ready {
                    Some(stream) => stream,
                    None => connector
                        .connect(AGENT_PORT)
                        .await
                        .map_err(std::io::Error::other)?,
                };
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        });
        // The URI is a placeholder: the connector decides where bytes go.
        let channel = Endpoint::from_static("http://agent.invalid")
            .connect_with_connector(service)
            .await?;
        Ok(Self {
            inner: SandboxClient::new(channel),
            deadline,
        })
    }

    /// The generated client, for calls this type does not wrap.
    pub fn raw(&self) -> SandboxClient<Channel> {
        self.inner.clone()
    }

    async fn call<R, F, Fut>(
        &self,
        name: &'static str,
        deadline: Option<Duration>,
        f: F,
    ) -> Result<R, AgentError>
    where
        F: FnOnce(SandboxClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let call = f(self.inner.clone());
        let result = match deadline {
            Some(deadline) => {
                tokio::time::timeout(deadline, call)
                    .await
                    .map_err(|_| AgentError::Timeout {
                        call: name,
                        seconds: deadline.as_secs_f64(),
                    })?
            }
            None => call.await,
        };
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| AgentError::from_status(name, status))
    }

    /// The agent's version and the guest's `uname`.
    pub async fn version(&self) -> Result<VersionResponse, AgentError> {
        self.call("version", Some(self.deadline), |mut c| async move {
            c.version(VersionRequest {}).await
        })
        .await
    }

    /// Flushes the guest's file systems.
    pub async fn sync(&self) -> Result<(), AgentError> {
        self.call("sync", Some(self.deadline), |mut c| async move {
            c.sync(SyncRequest {}).await
        })
        .await
        .map(drop)
    }

    /// Asks the guest to sync, unmount and power off.
    pub async fn shutdown(&self) -> Result<(), AgentError> {
        self.call("shutdown", Some(self.deadline), |mut c| async move {
            c.shutdown(ShutdownRequest {}).await
        })
        .await
        .map(drop)
    }

    /// Mounts a file system in the guest.
    pub async fn mount(&self, request: MountRequest) -> Result<(), AgentError> {
        self.call("mount", Some(self.deadline), |mut c| async move {
            c.mount(request).await
        })
        .await
        .map(drop)
    }

    /// Unmounts `target` in the guest.
    pub async fn umount(&self, target: &str, lazy: bool) -> Result<(), AgentError> {
        let request = UmountRequest {
            target: target.to_owned(),
            lazy,
        };
        self.call("umount", Some(self.deadline), |mut c| async move {
            c.umount(request).await
        })
        .await
        .map(drop)
    }

    /// The block device of the disk the host attached at SCSI `target`
    /// (see the vmm crate's `QemuVm::attach_disk`), once the guest kernel
    /// has announced it, waiting up to `timeout`.
    pub async fn find_disk(&self, target: u16, timeout: Duration) -> Result<String, AgentError> {
        let request = FindDiskRequest {
            scsi_target: u32::from(target),
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        };
        let deadline = self.deadline + timeout;
        self.call("find disk", Some(deadline), |mut c| async move {
            c.find_disk(request).await
        })
        .await
        .map(|response| response.device)
    }

    /// Creates a folder in the guest.
    pub async fn mkdir(&self, path: &str, mode: u32, parents: bool) -> Result<(), AgentError> {
        let request = MkdirRequest {
            path: path.to_owned(),
            mode,
            parents,
        };
        self.call("mkdir", Some(self.deadline), |mut c| async move {
            c.mkdir(request).await
        })
        .await
        .map(drop)
    }

    /// Writes (or appends to) a file in the guest.
    pub async fn write_file(&self, request: WriteFileRequest) -> Result<(), AgentError> {
        self.call("write_file", Some(self.deadline), |mut c| async move {
            c.write_file(request).await
        })
        .await
        .map(drop)
    }

    /// Reads the metadata of a guest path.
    pub async fn stat(&self, path: &str) -> Result<StatResponse, AgentError> {
        let request = StatRequest {
            path: path.to_owned(),
            ..Default::default()
        };
        self.call("stat", Some(self.deadline), |mut c| async move {
            c.stat(request).await
        })
        .await
    }

    /// Reads the metadata of `path` inside `root` (a container's root, say):
    /// symlinks on the way stay inside it; the last one is followed only
    /// with `follow_link`. A missing path is [`AgentError::NotFound`].
    pub async fn stat_in(
        &self,
        root: CopyRoot,
        path: &str,
        follow_link: bool,
    ) -> Result<StatResponse, AgentError> {
        let request = StatRequest {
            path: path.to_owned(),
            root: Some(root),
            follow_link,
        };
        self.call("stat", Some(self.deadline), |mut c| async move {
            c.stat(request).await
        })
        .await
    }

    /// Sets the guest's host name.
    pub async fn set_hostname(&self, hostname: &str) -> Result<(), AgentError> {
        let request = SetHostnameRequest {
            hostname: hostname.to_owned(),
        };
        self.call("set_hostname", Some(self.deadline), |mut c| async move {
            c.set_hostname(request).await
        })
        .await
        .map(drop)
    }

    /// Sets the guest's wall clock.
    pub async fn set_time(&self, time: std::time::SystemTime) -> Result<(), AgentError> {
        let since = time
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let request = SetTimeRequest {
            seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            nanos: since.subsec_nanos(),
        };
        self.call("set_time", Some(self.deadline), |mut c| async move {
            c.set_time(request).await
        })
        .await
        .map(drop)
    }

    /// Writes kernel parameters (`net.ipv4.ip_forward` = `1`, ...).
    pub async fn sysctl(
        &self,
        settings: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), AgentError> {
        let request = SysctlRequest {
            settings: settings.into_iter().collect(),
        };
        self.call("sysctl", Some(self.deadline), |mut c| async move {
            c.sysctl(request).await
        })
        .await
        .map(drop)
    }

    /// Creates a process: its streams are connected, it does not run yet.
    pub async fn create_process(&self, request: CreateProcessRequest) -> Result<(), AgentError> {
        self.call("create_process", Some(self.deadline), |mut c| async move {
            c.create_process(request).await
        })
        .await
        .map(drop)
    }

    /// Starts a created process; returns its guest pid.
    pub async fn start_process(&self, id: &str) -> Result<u32, AgentError> {
        let request = StartProcessRequest { id: id.to_owned() };
        self.call("start_process", Some(self.deadline), |mut c| async move {
            c.start_process(request).await
        })
        .await
        .map(|r| r.pid)
    }

    /// Waits, without deadline, until the process ends and its output is drained.
    pub async fn wait_process(&self, id: &str) -> Result<WaitProcessResponse, AgentError> {
        let request = WaitProcessRequest { id: id.to_owned() };
        self.call("wait_process", None, |mut c| async move {
            c.wait_process(request).await
        })
        .await
    }

    /// Sends `signal` to the process.
    pub async fn kill_process(&self, id: &str, signal: i32) -> Result<(), AgentError> {
        let request = KillProcessRequest {
            id: id.to_owned(),
            signal,
        };
        self.call("kill_process", Some(self.deadline), |mut c| async move {
            c.kill_process(request).await
        })
        .await
        .map(drop)
    }

    /// Closes the process's stdin, so it reads end of file.
    pub async fn close_stdin(&self, id: &str) -> Result<(), AgentError> {
        let request = CloseStdinRequest { id: id.to_owned() };
        self.call("close_stdin", Some(self.deadline), |mut c| async move {
            c.close_stdin(request).await
        })
        .await
        .map(drop)
    }

    /// Resizes the process's terminal.
    pub async fn resize_process(
        &self,
        id: &str,
        rows: u32,
        columns: u32,
    ) -> Result<(), AgentError> {
        let request = ResizeProcessRequest {
            id: id.to_owned(),
            rows,
            columns,
        };
        self.call("resize_process", Some(self.deadline), |mut c| async move {
            c.resize_process(request).await
        })
        .await
        .map(drop)
    }

    /// Forgets an ended process.
    pub async fn delete_process(&self, id: &str) -> Result<(), AgentError> {
        let request = DeleteProcessRequest { id: id.to_owned() };
        self.call("delete_process", Some(self.deadline), |mut c| async move {
            c.delete_process(request).await
        })
        .await
        .map(drop)
    }

    /// The cgroup v2 statistics of a container, by its first process's id.
    pub async fn container_statistics(
        &self,
        id: &str,
    ) -> Result<ContainerStatisticsResponse, AgentError> {
        let request = ContainerStatisticsRequest { id: id.to_owned() };
        self.call(
            "container_statistics",
            Some(self.deadline),
            |mut c| async move { c.container_statistics(request).await },
        )
        .await
    }

    /// Fills an empty volume with what the image has where it is mounted
    /// (Docker's copy-up); returns the entries copied. Lasts as long as the
    /// copy: no deadline.
    pub async fn fill_volume(&self, request: FillVolumeRequest) -> Result<u64, AgentError> {
        self.call("fill_volume", None, |mut c| async move {
            c.fill_volume(request).await
        })
        .await
        .map(|r| r.entries)
    }

    /// Unpacks the tar stream the host serves at `request.source` into a
    /// guest folder; returns the number of entries. Lasts as long as the
    /// stream: no deadline.
    pub async fn copy_in(&self, request: CopyInRequest) -> Result<u64, AgentError> {
        self.call(
            "copy_in",
            None,
            |mut c| async move { c.copy_in(request).await },
        )
        .await
        .map(|r| r.entries)
    }

    /// Archives a guest path into the stream the host listens on at
    /// `request.destination`; returns the archive's size. No deadline.
    pub async fn copy_out(&self, request: CopyOutRequest) -> Result<u64, AgentError> {
        self.call("copy_out", None, |mut c| async move {
            c.copy_out(request).await
        })
        .await
        .map(|r| r.bytes)
    }

    /// Writes `etc/resolv.conf` under a root in the guest.
    pub async fn configure_dns(&self, request: ConfigureDnsRequest) -> Result<(), AgentError> {
        self.call("configure_dns", Some(self.deadline), |mut c| async move {
            c.configure_dns(request).await
        })
        .await
        .map(drop)
    }

    /// Writes `etc/hosts` under a root in the guest.
    pub async fn configure_hosts(&self, request: ConfigureHostsRequest) -> Result<(), AgentError> {
        self.call("configure_hosts", Some(self.deadline), |mut c| async move {
            c.configure_hosts(request).await
        })
        .await
        .map(drop)
    }

    /// Registers a binfmt_misc interpreter in the guest.
    pub async fn register_binfmt(&self, request: RegisterBinfmtRequest) -> Result<(), AgentError> {
        self.call("register_binfmt", Some(self.deadline), |mut c| async move {
            c.register_binfmt(request).await
        })
        .await
        .map(drop)
    }

    /// Gives the guest's random generator `data` (32 to 4096 bytes of host
    /// randomness), credited, and reseeds it.
    pub async fn add_entropy(&self, data: Vec<u8>) -> Result<(), AgentError> {
        self.call("add_entropy", Some(self.deadline), |mut c| async move {
            c.add_entropy(AddEntropyRequest { data }).await
        })
        .await
        .map(drop)
    }

    /// Changes a guest link: up or down, MTU, name, hardware address.
    /// Returns it as changed.
    pub async fn link_set(&self, request: LinkSetRequest) -> Result<InterfaceState, AgentError> {
        self.call("link_set", Some(self.deadline), |mut c| async move {
            c.link_set(request).await
        })
        .await
        .map(|r| r.interface.unwrap_or_default())
    }

    /// Adds an address (`10.0.0.2/24`, `fd00::2/64`) to a guest interface;
    /// [`AgentError::AlreadyExists`] when it has it.
    pub async fn address_add(
        &self,
        interface: InterfaceSelector,
        address: &str,
    ) -> Result<(), AgentError> {
        let request = AddressAddRequest {
            interface: Some(interface),
            address: address.to_owned(),
        };
        self.call("address_add", Some(self.deadline), |mut c| async move {
            c.address_add(request).await
        })
        .await
        .map(drop)
    }

    /// Adds a route out of a guest interface: `destination` a CIDR or
    /// `default`, `gateway` empty for a link-scope route.
    pub async fn route_add(&self, request: RouteAddRequest) -> Result<(), AgentError> {
        self.call("route_add", Some(self.deadline), |mut c| async move {
            c.route_add(request).await
        })
        .await
        .map(drop)
    }

    /// Configures a guest interface in one idempotent call: address, MTU,
    /// up, default route, and `lo` up. Returns the interface.
    pub async fn configure_interface(
        &self,
        request: ConfigureInterfaceRequest,
    ) -> Result<InterfaceState, AgentError> {
        self.call(
            "configure_interface",
            Some(self.deadline),
            |mut c| async move { c.configure_interface(request).await },
        )
        .await
        .map(|r| r.interface.unwrap_or_default())
    }
}

//! A process in a container's VM: created with its standard streams as vsock
//! connections the agent dials back to this host process, then started,
//! signalled, resized and waited on through the agent.

use std::time::Duration;

use containerization_agent::proto::v1::create_process_request::Isolation;
use containerization_agent::proto::v1::stream_endpoint::Target;
use containerization_agent::proto::v1::{
    CreateProcessRequest, ProcessStdio, StreamEndpoint, WaitProcessResponse,
};
use containerization_agent::{AgentClient, AgentError, BoxedStream};
use containerization_vmm::{HostListener, VsockEndpoint};

use crate::Error;

/// Which standard streams a process gets, and its terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdioConfig {
    /// Attach standard input.
    pub stdin: bool,
    /// Attach standard output (with a terminal: the terminal's output).
    pub stdout: bool,
    /// Attach standard error (unused with a terminal).
    pub stderr: bool,
    /// Give the process a terminal of this many rows and columns.
    pub terminal: Option<(u16, u16)>,
}

/// The host ends of a process's standard streams.
#[derive(Default)]
pub struct ProcessStreams {
    /// Write here to feed its standard input; shut it down for end of file.
    pub stdin: Option<BoxedStream>,
    /// Its standard output (or terminal output).
    pub stdout: Option<BoxedStream>,
    /// Its standard error.
    pub stderr: Option<BoxedStream>,
}

impl std::fmt::Debug for ProcessStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessStreams")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .finish()
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code as Docker reports it: the code, or 128 + the signal.
    pub code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
}

impl From<&WaitProcessResponse> for ExitStatus {
    fn from(wait: &WaitProcessResponse) -> Self {
        let code = match (wait.exit_code, wait.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 255,
        };
        Self {
            code,
            signal: wait.signal,
            oom_killed: wait.oom_killed,
        }
    }
}

/// A process in a container: the first one, or one run with `exec`.
pub struct LinuxProcess {
    id: String,
    pid: u32,
    agent: AgentClient,
    /// Behind a lock only so a process can be shared between threads
    /// (the streams are not `Sync`); taken once.
    streams: std::sync::Mutex<ProcessStreams>,
}

impl std::fmt::Debug for LinuxProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxProcess")
            .field("id", &self.id)
            .field("streams", &self.streams.lock().map(|s| format!("{s:?}")))
            .finish()
    }
}

impl LinuxProcess {
    /// Its id in the agent.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its PID in the guest (in the guest's root PID namespace); 0 for a
    /// handle on a process started elsewhere.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Takes the host ends of its standard streams (once).
    pub fn take_streams(&mut self) -> ProcessStreams {
        let streams = self
            .streams
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(streams)
    }

    /// Waits until it exits.
    pub async fn wait(&self) -> Result<ExitStatus, Error> {
        let wait = self.agent.wait_process(&self.id).await?;
        Ok(ExitStatus::from(&wait))
    }

    /// Sends it `signal`.
    pub async fn kill(&self, signal: i32) -> Result<(), Error> {
        Ok(self.agent.kill_process(&self.id, signal).await?)
    }

    /// Resizes its terminal.
    pub async fn resize(&self, rows: u16, columns: u16) -> Result<(), Error> {
        Ok(self
            .agent
            .resize_process(&self.id, u32::from(rows), u32::from(columns))
            .await?)
    }

    /// Closes its standard input (end of file for a terminal too).
    pub async fn close_stdin(&self) -> Result<(), Error> {
        Ok(self.agent.close_stdin(&self.id).await?)
    }

    /// Forgets it in the agent once it has exited.
    pub async fn delete(self) -> Result<(), Error> {
        Ok(self.agent.delete_process(&self.id).await?)
    }

    /// Creates and starts process `id` with `isolation`, its streams dialled
    /// back to listeners on `vsock`.
    pub(crate) async fn spawn(
        agent: &AgentClient,
        vsock: &VsockEndpoint,
        id: String,
        isolation: Isolation,
        stdio: StdioConfig,
    ) -> Result<Self, Error> {
        let base = port_base(&id);
        let wanted = [
            stdio.stdin,
            stdio.stdout,
            stdio.stderr && stdio.terminal.is_none(),
        ];
        let mut listeners: Vec<Option<HostListener>> = Vec::new();
        let mut endpoints: Vec<Option<StreamEndpoint>> = Vec::new();
        for (index, want) in (0u32..).zip(wanted) {
            if want {
                listeners.push(Some(vsock.listen(base + index)?));
                endpoints.push(Some(StreamEndpoint {
                    target: Some(Target::VsockPort(base + index)),
                }));
            } else {
                listeners.push(None);
                endpoints.push(None);
            }
        }
        let mut endpoints = endpoints.into_iter();
        let (rows, columns) = stdio.terminal.unwrap_or_default();
        let request = CreateProcessRequest {
            id: id.clone(),
            stdio: Some(ProcessStdio {
                stdin: endpoints.next().flatten(),
                stdout: endpoints.next().flatten(),
                stderr: endpoints.next().flatten(),
                terminal: stdio.terminal.is_some(),
                rows: u32::from(rows),
                columns: u32::from(columns),
            }),
            isolation: Some(isolation),
            ..Default::default()
        };
        let began = std::time::Instant::now();
        let creating = {
            let agent = agent.clone();
            tokio::spawn(async move { agent.create_process(request).await })
        };
        let accepting = async {
            let mut streams = Vec::new();
            for listener in &listeners {
                streams.push(match listener {
                    Some(listener) => Some(listener.accept().await?),
                    None => None,
                });
            }
            Ok::<_, Error>(streams)
        };
        tokio::pin!(accepting);
        tokio::pin!(creating);
        let accepted = tokio::select! {
            accepted = &mut accepting => accepted?,
            created = &mut creating => {
                joined(created).map_err(launch_error)?;
                tokio::time::timeout(Duration::from_secs(30), accepting)
                    .await
                    .map_err(|_| Error::InvalidState {
                        container: id.clone(),
                        state: "created".to_owned(),
                        detail: "the agent did not connect its standard streams".to_owned(),
                    })??
            }
        };
        if !creating.is_finished() {
            joined(creating.await).map_err(launch_error)?;
        }
        let mut accepted = accepted.into_iter();
        let streams = ProcessStreams {
            stdin: accepted.next().flatten(),
            stdout: accepted.next().flatten(),
            stderr: accepted.next().flatten(),
        };
        tracing::debug!(after = ?began.elapsed(), id, "process created, streams connected");
        let pid = agent.start_process(&id).await.map_err(launch_error)?;
        tracing::debug!(after = ?began.elapsed(), id, "process started");
        Ok(Self {
            id,
            pid,
            agent: agent.clone(),
            streams: std::sync::Mutex::new(streams),
        })
    }

    /// A handle on process `id`, already running, without its streams.
    pub(crate) fn attach(agent: AgentClient, id: &str) -> Self {
        Self {
            id: id.to_owned(),
            pid: 0,
            agent,
            streams: std::sync::Mutex::new(ProcessStreams::default()),
        }
    }
}

fn joined(
    result: Result<Result<(), AgentError>, tokio::task::JoinError>,
) -> Result<(), AgentError> {
    result.unwrap_or_else(|join| {
        Err(AgentError::Unavailable {
            call: "create_process",
            message: join.to_string(),
        })
    })
}

/// What the guest kernel says of a program of a foreign architecture for
/// which no emulator is registered (`ENOEXEC`).
const EXEC_FORMAT: &str = "exec format error";

/// A missing program is Docker's 127, one that cannot run its 126, one of
/// another architecture Podman's 1.
fn launch_error(error: AgentError) -> Error {
    match error {
        AgentError::NotFound { message, .. } => Error::CommandNotFound(message),
        AgentError::PermissionDenied { message, .. } => Error::CommandNotRunnable(message),
        AgentError::FailedPrecondition { message, .. } if message.contains(EXEC_FORMAT) => {
            Error::ExecFormat(message)
        }
        other => Error::Agent(other),
    }
}

/// Three ports for process `id`'s streams, spread by a hash of the id and
/// this host process so two processes exec'ing at once do not collide.
pub(crate) fn port_base(id: &str) -> u32 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    std::time::SystemTime::now().hash(&mut hasher);
    let spread = u32::try_from(hasher.finish() % 0x0100_0000).unwrap_or(0);
    0x1000_0000 + spread * 4
}

//! The process table: create, start, wait, signal, resize, delete.
//!
//! A process is created with its streams already connected to the host, so
//! nothing it writes can be lost, and started by a separate call. Its exit
//! is seen by the [`Reaper`].

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use containerization_agent::proto::v1::{CreateProcessRequest, WaitProcessResponse};
use tokio::sync::watch;
use tonic::Status;

use crate::launcher::cgroups::{self, Cgroups};
use crate::pty::{self, Terminal};
use crate::reaper::{Exit, Reaper};
use crate::stdio;

mod container;
mod plain;

use container::Isolation;

/// The search path a process gets when its environment sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

enum State {
    Created {
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    },
    /// The launcher is at work (containers and execs only).
    Starting,
    Running {
        pid: u32,
        exit: watch::Receiver<Option<Exit>>,
        drained: watch::Receiver<bool>,
    },
    /// The launcher failed; the process never ran.
    Failed,
}

struct Entry {
    request: CreateProcessRequest,
    state: State,
    /// Its terminal, when it asked for one.
    terminal: Option<Terminal>,
    /// A handle on the stdin socket, to close the process's input on request.
    stdin_handle: Option<OwnedFd>,
    /// A container's spec and rootfs, or the container an exec joins.
    isolation: Option<Isolation>,
    /// The container's cgroup (its first process and every exec in it).
    cgroup: Option<std::path::PathBuf>,
}

/// Every process the agent knows, by the host's id.
#[derive(Clone)]
pub(crate) struct Processes {
    reaper: Reaper,
    cgroups: Arc<Cgroups>,
    table: Arc<Mutex<HashMap<String, Entry>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Processes {
    /// An empty table whose exits `reaper` reports; containers get their
    /// cgroups from `cgroups`.
    pub(crate) fn new(reaper: Reaper, cgroups: Cgroups) -> Self {
        Self {
            reaper,
            cgroups: Arc::new(cgroups),
            table: Arc::default(),
        }
    }

    /// Removes the containers' parent cgroup (at shutdown).
    pub(crate) fn remove_cgroups(&self) {
        self.cgroups.remove_parent();
    }

    /// Validates the request and connects its streams.
    pub(crate) async fn create(&self, request: CreateProcessRequest) -> Result<(), Status> {
        if request.id.is_empty() {
            return Err(Status::invalid_argument("process id is empty"));
        }
        let isolation = container::isolation(&request, &lock(&self.table))?;
        if isolation.is_none() && request.args.first().is_none_or(String::is_empty) {
            return Err(Status::invalid_argument(format!(
                "process {}: args is empty: name the program to run",
                request.id
            )));
        }
        if let Some(bad) = request.env.iter().find(|kv| !kv.contains('=')) {
            return Err(Status::invalid_argument(format!(
                "process {}: env entry {bad:?} is not KEY=VALUE",
                request.id
            )));
        }
        if lock(&self.table).contains_key(&request.id) {
            return Err(Status::already_exists(format!(
                "process {} already exists",
                request.id
            )));
        }
        let stdio = request.stdio.clone().unwrap_or_default();
        let id = request.id.clone();
        // A container's process gets its terminal from the launcher, in the
        // container's devpts; a process in the guest gets one here.
        let in_container = isolation.is_some();
        let (stdin, stdout, stderr, terminal) = tokio::task::spawn_blocking(move || {
            let connect = |endpoint: &Option<_>| match endpoint {
                Some(endpoint) => stdio::connect(endpoint),
                None => Ok(None),
            };
            let stdin = connect(&stdio.stdin)?;
            let stdout = connect(&stdio.stdout)?;
            let stderr = connect(&stdio.stderr)?;
            let (rows, columns) = (stdio.rows.max(1), stdio.columns.max(1));
            let terminal = match (stdio.terminal, in_container) {
                (false, _) => None,
                (true, true) => Some(Terminal::Pending { rows, columns }),
                (true, false) => Some(Terminal::Open(pty::open(rows, columns)?)),
            };
            Ok::<_, std::io::Error>((stdin, stdout, stderr, terminal))
        })
        .await
        .map_err(|err| Status::internal(err.to_string()))?
        .map_err(|err| {
            Status::unavailable(format!("process {id}: cannot connect its streams: {err}"))
        })?;
        let stdin_handle = match &stdin {
            Some(fd) => Some(
                fd.try_clone()
                    .map_err(|e| Status::internal(e.to_string()))?,
            ),
            None => None,
        };
        let mut table = lock(&self.table);
        if table.contains_key(&request.id) {
            return Err(Status::already_exists(format!(
                "process {} already exists",
                request.id
            )));
        }
        table.insert(
            request.id.clone(),
            Entry {
                request,
                state: State::Created {
                    stdin,
                    stdout,
                    stderr,
                },
                terminal,
                stdin_handle,
                isolation,
                cgroup: None,
            },
        );
        Ok(())
    }

    /// Starts a created process; returns its pid.
    pub(crate) async fn start(&self, id: &str) -> Result<u32, Status> {
        let isolated = lock(&self.table)
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?
            .isolation
            .is_some();
        if isolated {
            self.start_isolated(id).await
        } else {
            self.start_plain(id)
        }
    }

    /// Waits until the process has ended and its terminal output is written.
    pub(crate) async fn wait(&self, id: &str) -> Result<WaitProcessResponse, Status> {
        let (mut exit, mut drained, cgroup) = {
            let table = lock(&self.table);
            let entry = table
                .get(id)
                .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
            match &entry.state {
                State::Running { exit, drained, .. } => {
                    (exit.clone(), drained.clone(), entry.cgroup.clone())
                }
                State::Created { .. } | State::Starting | State::Failed => {
                    return Err(Status::failed_precondition(format!(
                        "process {id} was not started"
                    )));
                }
            }
        };
        let status = *exit
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Status::internal("the reaper stopped"))?;
        // Err means the relay is gone, which also means nothing is left to drain.
        let _ = drained.wait_for(|done| *done).await;
        let (exit_code, signal) = match status {
            Some(Exit::Code(code)) => (Some(code), None),
            Some(Exit::Signal(signal)) => (None, Some(signal)),
            None => (None, None),
        };
        let oom_killed = cgroup.is_some_and(|group| cgroups::oom_killed(&group));
        Ok(WaitProcessResponse {
            exit_code,
            signal,
            oom_killed,
        })
    }

    /// Sends `signal` to a running process.
    pub(crate) fn kill(&self, id: &str, signal: i32) -> Result<(), Status> {
        let pid = self.running_pid(id)?;
        let sig = rustix::process::Signal::from_named_raw(signal)
            .ok_or_else(|| Status::invalid_argument(format!("{signal} is not a signal number")))?;
        let pid = rustix::process::Pid::from_raw(pid.cast_signed())
            .ok_or_else(|| Status::internal("pid 0"))?;
        match rustix::process::kill_process(pid, sig) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(err) => Err(Status::internal(format!("kill {id}: {err}"))),
        }
    }

    /// Ends the process's input.
    pub(crate) fn close_stdin(&self, id: &str) -> Result<(), Status> {
        let mut table = lock(&self.table);
        let entry = table
            .get_mut(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
        if let Some(fd) = entry.stdin_handle.take() {
            let _ = rustix::net::shutdown(&fd, rustix::net::Shutdown::Read);
        }
        Ok(())
    }

    /// Resizes the process's terminal.
    pub(crate) fn resize(&self, id: &str, rows: u32, columns: u32) -> Result<(), Status> {
        let mut table = lock(&self.table);
        let entry = table
            .get_mut(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
        let terminal = entry.terminal.as_mut().ok_or_else(|| {
            Status::failed_precondition(format!("process {id} has no terminal to resize"))
        })?;
        terminal.resize(rows, columns).map_err(internal)
    }

    /// Forgets an ended (or never started) process.
    pub(crate) fn delete(&self, id: &str) -> Result<(), Status> {
        let mut table = lock(&self.table);
        let entry = table
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
        let running = match &entry.state {
            State::Running { exit, .. } => exit.borrow().is_none(),
            State::Starting => true,
            State::Created { .. } | State::Failed => false,
        };
        if running {
            return Err(Status::failed_precondition(format!(
                "process {id} is still running: kill it first"
            )));
        }
        let owns_cgroup = matches!(entry.isolation, Some(Isolation::Container { .. }));
        let cgroup = entry.cgroup.clone();
        table.remove(id);
        drop(table);
        if owns_cgroup && let Some(group) = cgroup {
            cgroups::remove(&group);
        }
        Ok(())
    }

    /// The pid of running process `id` (a container's first process, say),
    /// for `/proc/<pid>/root`; FAILED_PRECONDITION when it is not running.
    pub(crate) fn pid_of(&self, id: &str) -> Result<u32, Status> {
        self.running_pid(id)
            .map_err(|status| Status::failed_precondition(status.message().to_owned()))
    }

    fn running_pid(&self, id: &str) -> Result<u32, Status> {
        let table = lock(&self.table);
        let entry = table
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
        match &entry.state {
            State::Running { pid, exit, .. } if exit.borrow().is_none() => Ok(*pid),
            State::Running { .. } => Err(Status::failed_precondition(format!(
                "process {id} has already exited"
            ))),
            State::Created { .. } | State::Starting | State::Failed => Err(
                Status::failed_precondition(format!("process {id} was not started")),
            ),
        }
    }
}

fn already_started(id: &str) -> Status {
    Status::failed_precondition(format!("process {id} was already started"))
}

fn internal(err: std::io::Error) -> Status {
    Status::internal(err.to_string())
}

//! Containers and execs in the process table: the spec checked at create,
//! the launcher at start, cgroup statistics on request.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use containerization_agent::proto::v1::create_process_request::Isolation as Requested;
use containerization_agent::proto::v1::{ContainerStatisticsResponse, CreateProcessRequest};
use oci_spec::runtime::{Process, Spec};
use tokio::sync::watch;
use tonic::Status;

use super::{Entry, Processes, State, already_started, internal, lock};
use crate::launcher::{self, Failure, FailureKind, LaunchConfig, Target, TerminalSize, spec};
use crate::pty::{self, Terminal};

/// What a container process or an exec runs in.
pub(super) enum Isolation {
    /// A new container: the spec, its process and the rootfs.
    Container {
        /// The parsed runtime spec.
        spec: Box<Spec>,
        /// The root file system folder.
        rootfs: PathBuf,
    },
    /// A process joining the container whose first process is `container_id`.
    Exec {
        /// The container's first process.
        container_id: String,
        /// What to run there.
        process: Box<Process>,
    },
}

/// Checks the request's container or exec part; `None` for a plain process.
pub(super) fn isolation(
    request: &CreateProcessRequest,
    table: &std::collections::HashMap<String, Entry>,
) -> Result<Option<Isolation>, Status> {
    let id = &request.id;
    let Some(requested) = &request.isolation else {
        return Ok(None);
    };
    if !request.args.is_empty() || !request.env.is_empty() || !request.cwd.is_empty() {
        return Err(Status::invalid_argument(format!(
            "process {id}: args, env and cwd come from the spec for a container or an exec: \
             leave them empty"
        )));
    }
    let invalid = |message: String| Status::invalid_argument(format!("process {id}: {message}"));
    match requested {
        Requested::Container(container) => {
            let spec = spec::parse_spec(&container.oci_spec).map_err(invalid)?;
            let rootfs = spec::rootfs(&spec, &container.rootfs)
                .map_err(|m| Status::not_found(format!("process {id}: {m}")))?;
            Ok(Some(Isolation::Container {
                spec: Box::new(spec),
                rootfs,
            }))
        }
        Requested::Exec(exec) => {
            let target = table.get(&exec.container_id);
            if !matches!(
                target.and_then(|e| e.isolation.as_ref()),
                Some(Isolation::Container { .. })
            ) {
                return Err(Status::not_found(format!(
                    "process {id}: no container {:?} to exec into",
                    exec.container_id
                )));
            }
            let process = spec::parse_process(&exec.oci_process).map_err(invalid)?;
            Ok(Some(Isolation::Exec {
                container_id: exec.container_id.clone(),
                process: Box::new(process),
            }))
        }
    }
}

/// The gRPC status for a launcher failure.
fn status(id: &str, failure: Failure) -> Status {
    let message = format!("process {id}: {}", failure.message);
    match failure.kind {
        FailureKind::NotFound => Status::not_found(message),
        FailureKind::PermissionDenied => Status::permission_denied(message),
        FailureKind::InvalidArgument => Status::invalid_argument(message),
        FailureKind::Other => Status::failed_precondition(message),
    }
}

impl Processes {
    /// Starts a container's first process or an exec through the launcher.
    pub(super) async fn start_isolated(&self, id: &str) -> Result<u32, Status> {
        let (config, stdio, relay) = {
            let mut table = lock(&self.table);
            let (spec, target, cgroup) = self.launch_target(&table, id)?;
            let entry = table
                .get_mut(id)
                .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
            let State::Created {
                stdin,
                stdout,
                stderr,
            } = &mut entry.state
            else {
                return Err(already_started(id));
            };
            // With a terminal, the launcher gives the process one in the
            // container's devpts and vminitd relays its primary end to the
            // host's streams.
            let (stdio, relay) = match &entry.terminal {
                Some(_) => (
                    [Stdio::null(), Stdio::null(), Stdio::null()],
                    Some((stdin.take(), stdout.take())),
                ),
                None => (
                    [stdin.take(), stdout.take(), stderr.take()]
                        .map(|fd| fd.map_or_else(Stdio::null, Stdio::from)),
                    None,
                ),
            };
            let terminal = match &entry.terminal {
                Some(Terminal::Pending { rows, columns }) => Some(TerminalSize {
                    rows: *rows,
                    columns: *columns,
                }),
                Some(Terminal::Open(_)) => {
                    return Err(Status::internal("terminal already handed out"));
                }
                None => None,
            };
            let config = LaunchConfig {
                spec,
                target,
                terminal,
                cgroup: cgroup.clone(),
            };
            entry.cgroup = cgroup;
            entry.state = State::Starting;
            (config, stdio, relay)
        };
        let reaper = self.reaper.clone();
        let launched =
            tokio::task::spawn_blocking(move || launcher::launch(config, stdio, &reaper))
                .await
                .map_err(|err| Status::internal(err.to_string()))?;
        let mut table = lock(&self.table);
        let entry = table
            .get_mut(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
        let launched = match launched {
            Ok(launched) => launched,
            Err(failure) => {
                entry.state = State::Failed;
                entry.terminal = None;
                return Err(status(id, failure));
            }
        };
        let drained = match (entry.terminal.as_mut(), relay, launched.terminal) {
            (Some(terminal), Some((input, output)), Some(primary)) => {
                let pty = terminal.opened(primary).map_err(internal)?;
                pty::relay(&pty.primary, input, output).map_err(internal)?
            }
            _ => watch::channel(true).1,
        };
        entry.state = State::Running {
            pid: launched.pid,
            exit: launched.exit,
            drained,
        };
        tracing::debug!(id, pid = launched.pid, "started in a container");
        Ok(launched.pid)
    }

    /// The spec, target and cgroup for process `id`; makes a container's cgroup.
    fn launch_target(
        &self,
        table: &std::collections::HashMap<String, Entry>,
        id: &str,
    ) -> Result<(Spec, Target, Option<PathBuf>), Status> {
        let entry = table
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
        if !matches!(entry.state, State::Created { .. }) {
            return Err(already_started(id));
        }
        match &entry.isolation {
            Some(Isolation::Container { spec, rootfs }) => {
                let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
                let cgroup = self
                    .cgroups
                    .create(id, resources)
                    .map_err(Status::failed_precondition)?;
                let target = Target::Create {
                    rootfs: rootfs.clone(),
                };
                Ok((spec.as_ref().clone(), target, cgroup))
            }
            Some(Isolation::Exec {
                container_id,
                process,
            }) => {
                let container = table.get(container_id);
                let (
                    Some(Isolation::Container { spec, .. }),
                    Some(State::Running { pid, exit, .. }),
                ) = (
                    container.and_then(|c| c.isolation.as_ref()),
                    container.map(|c| &c.state),
                )
                else {
                    return Err(Status::failed_precondition(format!(
                        "process {id}: container {container_id} is not running"
                    )));
                };
                if exit.borrow().is_some() {
                    return Err(Status::failed_precondition(format!(
                        "process {id}: container {container_id} has exited"
                    )));
                }
                let mut spec = spec.as_ref().clone();
                spec.set_process(Some(process.as_ref().clone()));
                let target = Target::Exec {
                    init_pid: pid.cast_signed(),
                };
                Ok((spec, target, container.and_then(|c| c.cgroup.clone())))
            }
            None => Err(Status::internal(format!("process {id} is not a container"))),
        }
    }

    /// The cgroup v2 figures of container `id`.
    pub(crate) fn statistics(&self, id: &str) -> Result<ContainerStatisticsResponse, Status> {
        let table = lock(&self.table);
        let entry = table
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
        if !matches!(entry.isolation, Some(Isolation::Container { .. })) {
            return Err(Status::failed_precondition(format!(
                "process {id} is not a container"
            )));
        }
        Ok(entry
            .cgroup
            .as_deref()
            .map(read_statistics)
            .unwrap_or_default())
    }
}

fn read_statistics(group: &Path) -> ContainerStatisticsResponse {
    let read = |file: &str| std::fs::read_to_string(group.join(file)).unwrap_or_default();
    let number = |file: &str| read(file).trim().parse::<u64>().unwrap_or(0);
    let keyed = |text: &str, key: &str| {
        text.lines()
            .find_map(|line| {
                line.strip_prefix(key)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    let cpu = read("cpu.stat");
    let events = read("memory.events");
    let (mut io_read, mut io_write) = (0, 0);
    for line in read("io.stat").lines() {
        for field in line.split_whitespace() {
            if let Some(n) = field.strip_prefix("rbytes=") {
                io_read += n.parse::<u64>().unwrap_or(0);
            } else if let Some(n) = field.strip_prefix("wbytes=") {
                io_write += n.parse::<u64>().unwrap_or(0);
            }
        }
    }
    ContainerStatisticsResponse {
        available: true,
        cpu_usage_usec: keyed(&cpu, "usage_usec"),
        cpu_user_usec: keyed(&cpu, "user_usec"),
        cpu_system_usec: keyed(&cpu, "system_usec"),
        memory_current_bytes: number("memory.current"),
        memory_limit_bytes: number("memory.max"),
        pids_current: number("pids.current"),
        pids_limit: number("pids.max"),
        io_read_bytes: io_read,
        io_write_bytes: io_write,
        oom_kills: keyed(&events, "oom_kill"),
    }
}

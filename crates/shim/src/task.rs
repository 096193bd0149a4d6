//! The task API (containerd's `containerd.task.v2.Task`) on the façade:
//! each task is a container in the shim's pod, each exec a process in it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use containerd_shim::TtrpcResult;
use containerd_shim::api;
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskStart,
};
use containerd_shim::protos::shim_async::Task;
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::{self, Code, r#async::TtrpcContext};
use containerd_shim::publisher::RemotePublisher;
use containerization::pod::{LinuxPod, PodOptions, PodStatus};
use containerization::{BundleOptions, ContainerManager, LinuxContainer, LinuxProcess, StateRoot};
use tokio::sync::{Mutex, Notify, watch};

use crate::bundle::{self, Bundle, Made};
use crate::events::{Events, timestamp};
use crate::stdio::Fifos;

/// How a process ended, as containerd wants it.
#[derive(Debug, Clone, Copy)]
struct Exit {
    status: u32,
    at: SystemTime,
}

/// One process the shim runs: a task's first process or an exec.
struct Process {
    fifos: Fifos,
    pid: u32,
    exit: watch::Sender<Option<Exit>>,
}

impl Process {
    fn new(fifos: Fifos) -> Self {
        Self {
            fifos,
            pid: 0,
            exit: watch::channel(None).0,
        }
    }

    fn exited(&self) -> Option<Exit> {
        *self.exit.borrow()
    }
}

/// An exec of a task.
struct Exec {
    process: Process,
    /// Its OCI process.
    spec: serde_json::Value,
    /// Once started.
    running: Option<Arc<LinuxProcess>>,
}

/// A task: one container of the pod.
struct TaskEntry {
    /// Our container's id.
    container: String,
    bundle: PathBuf,
    process: Process,
    /// The container until it starts (then its waiter owns it).
    created: Option<LinuxContainer>,
    execs: HashMap<String, Exec>,
}

/// The pod the shim owns, while it runs.
struct PodHandle {
    pod: LinuxPod,
    stop: Arc<Notify>,
    running: tokio::task::JoinHandle<Result<(), containerization::Error>>,
}

/// The task service.
pub(crate) struct TaskService {
    exit: Arc<ExitSignal>,
    events: Arc<Events>,
    namespace: String,
    pod: Mutex<Option<PodHandle>>,
    tasks: Arc<Mutex<HashMap<String, TaskEntry>>>,
}

fn error(code: Code, message: impl std::fmt::Display) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.to_string()))
}

fn not_found(id: &str) -> ttrpc::Error {
    error(Code::NOT_FOUND, format!("task {id} not found"))
}

fn failed(error_: impl std::fmt::Display) -> ttrpc::Error {
    error(Code::UNKNOWN, format!("{error_:#}"))
}

/// The containers and pods of this machine's state root. The guest's
/// vminitd is `CZ_VMINITD`, else the one `scripts/install-shim` put in
/// `../lib/containerization/` beside the shim, else the state root's rule.
fn manager() -> Result<ContainerManager, ttrpc::Error> {
    let root = StateRoot::from_env().map_err(failed)?;
    let installed = std::env::current_exe().ok().and_then(|exe| {
        let path = exe.parent()?.parent()?.join("lib/containerization/vminitd");
        path.is_file().then_some(path)
    });
    let vminitd = match (std::env::var_os("CZ_VMINITD"), installed) {
        (None, Some(path)) => path,
        _ => root.find_vminitd().map_err(failed)?,
    };
    Ok(ContainerManager::new(root, vminitd))
}

/// A name our store takes for `text` (letters, digits, `_`, `.`, `-`,
/// starting with a letter or digit, at most 128).
fn name_for(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                true => c,
                false => '-',
            },
        )
        .take(128)
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name.replace_range(..1, "c");
    }
    name
}

/// Removes what the task in bundle `dir` became (its shim died).
pub(crate) async fn clean_up_after(dir: &Path) {
    let Some(made) = bundle::recorded(dir) else {
        return;
    };
    let Ok(manager) = manager() else {
        return;
    };
    if let Err(error) = manager.remove(&made.container, true).await {
        tracing::debug!(%error, "the task's container was already gone");
    }
    if let Some(pod) = &made.pod
        && let Ok(pod) = manager.get_pod(pod)
        && pod.containers().is_ok_and(|c| c.is_empty())
    {
        let _ = pod.delete(true).await;
    }
}

impl TaskService {
    pub fn new(exit: Arc<ExitSignal>, publisher: RemotePublisher, namespace: String) -> Self {
        Self {
            exit,
            events: Arc::new(Events::new(publisher, namespace.clone())),
            namespace,
            pod: Mutex::new(None),
            tasks: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The shim's pod, made for the first task, its VM starting (see
    /// [`Self::pod_ready`]).
    async fn pod(
        &self,
        manager: &ContainerManager,
        bundle: &Bundle,
        id: &str,
    ) -> TtrpcResult<LinuxPod> {
        let mut guard = self.pod.lock().await;
        if let Some(handle) = guard.as_ref() {
            return Ok(handle.pod.clone());
        }
        let grouping = bundle.sandbox_id().unwrap_or_else(|| id.to_owned());
        let name = name_for(&format!("{}.{grouping}", self.namespace));
        // A dead shim's pod of that name goes first.
        if let Ok(old) = manager.get_pod(&name) {
            let _ = old.delete(true).await;
        }
        let hostname = bundle.spec["hostname"].as_str().filter(|h| !h.is_empty());
        let pod = manager
            .create_pod(PodOptions {
                name: Some(name),
                hostname: hostname.map(str::to_owned),
                ..PodOptions::default()
            })
            .await
            .map_err(failed)?;
        let stop = Arc::new(Notify::new());
        let running = tokio::spawn({
            let pod = pod.clone();
            let stop = Arc::clone(&stop);
            async move { pod.run(async move { stop.notified().await }).await }
        });
        *guard = Some(PodHandle {
            pod: pod.clone(),
            stop,
            running,
        });
        Ok(pod)
    }

    /// Waits until the pod's VM runs; its error if it could not start
    /// (the pod is then removed, and the next task tries again).
    async fn pod_ready(&self) -> TtrpcResult<()> {
        loop {
            {
                let mut guard = self.pod.lock().await;
                let handle = guard
                    .as_ref()
                    .ok_or_else(|| failed("the shim has no pod"))?;
                if handle.running.is_finished() {
                    let handle = guard.take().ok_or_else(|| failed("the shim has no pod"))?;
                    let ended = handle.running.await.map_err(failed)?;
                    let why = ended
                        .err()
                        .map_or("it stopped".to_owned(), |e| e.to_string());
                    let _ = handle.pod.delete(true).await;
                    return Err(failed(format!("the pod's VM did not start: {why}")));
                }
                let state = handle.pod.state().map_err(failed)?;
                if state.status == PodStatus::Running && state.is_running() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A handle on task `id`'s container, for calls through its agent.
    async fn handle(&self, id: &str) -> TtrpcResult<LinuxContainer> {
        let container = {
            let tasks = self.tasks.lock().await;
            tasks
                .get(id)
                .ok_or_else(|| not_found(id))?
                .container
                .clone()
        };
        manager()?.get(&container).map_err(failed)
    }

    /// The exit channel of task `id`'s process `exec_id` (empty: the first).
    async fn exit_of(&self, id: &str, exec_id: &str) -> TtrpcResult<watch::Receiver<Option<Exit>>> {
        let tasks = self.tasks.lock().await;
        let task = tasks.get(id).ok_or_else(|| not_found(id))?;
        let process = match exec_id {
            "" => &task.process,
            exec => &task.execs.get(exec).ok_or_else(|| not_found(exec))?.process,
        };
        Ok(process.exit.subscribe())
    }

    /// Starts task `id`'s first process.
    async fn start_task(&self, id: &str) -> TtrpcResult<u32> {
        let (mut container, fifos) = {
            let mut tasks = self.tasks.lock().await;
            let task = tasks.get_mut(id).ok_or_else(|| not_found(id))?;
            let container = task.created.take().ok_or_else(|| {
                error(
                    Code::FAILED_PRECONDITION,
                    format!("task {id} already started"),
                )
            })?;
            (container, task.process.fifos.clone())
        };
        let mut process = container.start(fifos.config()).await.map_err(failed)?;
        let pid = process.pid();
        let io = fifos.copy(process.take_streams());
        let exit = {
            let mut tasks = self.tasks.lock().await;
            let task = tasks.get_mut(id).ok_or_else(|| not_found(id))?;
            task.process.pid = pid;
            task.process.exit.clone()
        };
        let events = Arc::clone(&self.events);
        let task_id = id.to_owned();
        tokio::spawn(async move {
            let status = container.wait().await;
            // What it wrote reaches containerd before its end does.
            let _ = tokio::time::timeout(Duration::from_secs(5), io).await;
            if status.as_ref().is_ok_and(|s| s.oom_killed) {
                let mut oom = TaskOOM::new();
                oom.container_id = task_id.clone();
                events
                    .publish(topics::TASK_OOM_EVENT_TOPIC, Box::new(oom))
                    .await;
            }
            let code = status.map_or(255, |s| s.code);
            finish(&events, &exit, &task_id, &task_id, pid, code).await;
        });
        let mut event = TaskStart::new();
        event.container_id = id.to_owned();
        event.pid = pid;
        self.events
            .publish(topics::TASK_START_EVENT_TOPIC, Box::new(event))
            .await;
        Ok(pid)
    }

    /// Starts exec `exec_id` of task `id`.
    async fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<u32> {
        let handle = self.handle(id).await?;
        let (spec, fifos, exit) = {
            let tasks = self.tasks.lock().await;
            let task = tasks.get(id).ok_or_else(|| not_found(id))?;
            let exec = task.execs.get(exec_id).ok_or_else(|| not_found(exec_id))?;
            (
                exec.spec.clone(),
                exec.process.fifos.clone(),
                exec.process.exit.clone(),
            )
        };
        let mut process = handle
            .exec_oci(&spec, fifos.config())
            .await
            .map_err(failed)?;
        let pid = process.pid();
        let io = fifos.copy(process.take_streams());
        let process = Arc::new(process);
        {
            let mut tasks = self.tasks.lock().await;
            if let Some(exec) = tasks.get_mut(id).and_then(|t| t.execs.get_mut(exec_id)) {
                exec.process.pid = pid;
                exec.running = Some(Arc::clone(&process));
            }
        }
        let events = Arc::clone(&self.events);
        let (task_id, exec) = (id.to_owned(), exec_id.to_owned());
        tokio::spawn(async move {
            let status = process.wait().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), io).await;
            let code = status.map_or(255, |s| s.code);
            finish(&events, &exit, &task_id, &exec, pid, code).await;
        });
        let mut event = TaskExecStarted::new();
        event.container_id = id.to_owned();
        event.exec_id = exec_id.to_owned();
        event.pid = pid;
        self.events
            .publish(topics::TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(event))
            .await;
        Ok(pid)
    }
}

/// Records process `exec` of task `task` ended with `code` and says so.
async fn finish(
    events: &Events,
    exit: &watch::Sender<Option<Exit>>,
    task: &str,
    exec: &str,
    pid: u32,
    code: i32,
) {
    let ended = Exit {
        status: u32::try_from(code).unwrap_or(255),
        at: SystemTime::now(),
    };
    exit.send_replace(Some(ended));
    let mut event = TaskExit::new();
    event.container_id = task.to_owned();
    event.id = exec.to_owned();
    event.pid = pid;
    event.exit_status = ended.status;
    event.exited_at = Some(timestamp(ended.at)).into();
    events
        .publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(event))
        .await;
}

#[async_trait]
impl Task for TaskService {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let id = req.id.clone();
        if self.tasks.lock().await.contains_key(&id) {
            return Err(error(
                Code::ALREADY_EXISTS,
                format!("task {id} already exists"),
            ));
        }
        let manager = manager()?;
        let bundle = Bundle::open(&req.bundle).map_err(failed)?;
        // A pod's task joins the pod's VM; a task of its own (`ctr run`)
        // is a pod of one: a VM of its own, its disk there from the start.
        let pod = match bundle.sandbox_id() {
            Some(_) => Some(self.pod(&manager, &bundle, &id).await?),
            None => None,
        };
        let rootfs = bundle.rootfs();
        let mounted = !req.rootfs.is_empty();
        if mounted {
            bundle::mount_rootfs(&req.rootfs, &rootfs)
                .await
                .map_err(failed)?;
        }
        let made = manager
            .create_from_bundle(BundleOptions {
                name: Some(name_for(&format!("{}.{id}", self.namespace))),
                spec: bundle.spec.clone(),
                rootfs: rootfs.clone(),
                rootfs_key: bundle::snapshot_key(&req.rootfs),
                pod: pod.as_ref().map(|pod| pod.id().to_string()),
                image: bundle.image_name(),
                // containerd keeps the task's record; ours goes when it ends.
                auto_remove: true,
            })
            .await;
        // The root file system was copied into the container's disk (or
        // its base).
        if mounted {
            bundle::unmount_rootfs(&rootfs);
        }
        let container = made.map_err(failed)?;
        // The pod's VM started while the disk was made.
        if pod.is_some()
            && let Err(error) = self.pod_ready().await
        {
            let _ = manager.remove(container.id().as_str(), true).await;
            return Err(error);
        }
        bundle
            .record(&Made {
                container: container.id().to_string(),
                pod: pod.as_ref().map(|pod| pod.id().to_string()),
            })
            .map_err(failed)?;
        let fifos = Fifos {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        self.tasks.lock().await.insert(
            id.clone(),
            TaskEntry {
                container: container.id().to_string(),
                bundle: bundle.dir.clone(),
                process: Process::new(fifos),
                created: Some(container),
                execs: HashMap::new(),
            },
        );
        let mut event = TaskCreate::new();
        event.container_id = id.clone();
        event.bundle = req.bundle.clone();
        event.rootfs = req.rootfs.clone();
        let mut io = containerd_shim::protos::events::task::TaskIO::new();
        io.stdin = req.stdin.clone();
        io.stdout = req.stdout.clone();
        io.stderr = req.stderr.clone();
        io.terminal = req.terminal;
        event.io = Some(io).into();
        self.events
            .publish(topics::TASK_CREATE_EVENT_TOPIC, Box::new(event))
            .await;
        Ok(api::CreateTaskResponse::new())
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let pid = match req.exec_id.as_str() {
            "" => self.start_task(&req.id).await?,
            exec => self.start_exec(&req.id, exec).await?,
        };
        let mut response = api::StartResponse::new();
        response.pid = pid;
        Ok(response)
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let mut exit = self.exit_of(&req.id, &req.exec_id).await?;
        let ended = exit
            .wait_for(Option::is_some)
            .await
            .map_err(failed)?
            .ok_or_else(|| failed("no exit recorded"))?;
        let mut response = api::WaitResponse::new();
        response.exit_status = ended.status;
        response.exited_at = Some(timestamp(ended.at)).into();
        Ok(response)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let signal = i32::try_from(req.signal).map_err(failed)?;
        if !req.exec_id.is_empty() {
            let process = {
                let tasks = self.tasks.lock().await;
                let task = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
                let exec = task
                    .execs
                    .get(&req.exec_id)
                    .ok_or_else(|| not_found(&req.exec_id))?;
                exec.running.clone()
            };
            let process =
                process.ok_or_else(|| error(Code::NOT_FOUND, "the exec has not started"))?;
            process.kill(signal).await.map_err(failed)?;
            return Ok(api::Empty::new());
        }
        // A task never started ends at once.
        let never_started = {
            let mut tasks = self.tasks.lock().await;
            let task = tasks.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
            if task.process.exited().is_some() {
                return Err(error(Code::NOT_FOUND, "process already finished"));
            }
            task.created.take().map(|_| task.process.exit.clone())
        };
        if let Some(exit) = never_started {
            finish(&self.events, &exit, &req.id, &req.id, 0, 128 + signal).await;
            return Ok(api::Empty::new());
        }
        self.handle(&req.id)
            .await?
            .kill(signal)
            .await
            .map_err(failed)?;
        Ok(api::Empty::new())
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let mut response = api::DeleteResponse::new();
        let mut tasks = self.tasks.lock().await;
        let task = tasks.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
        if !req.exec_id.is_empty() {
            let exec = task
                .execs
                .remove(&req.exec_id)
                .ok_or_else(|| not_found(&req.exec_id))?;
            let ended = exec.process.exited();
            response.pid = exec.process.pid;
            response.exit_status = ended.map_or(0, |e| e.status);
            response.exited_at = ended.map(|e| timestamp(e.at)).into();
            return Ok(response);
        }
        let started = task.created.is_none();
        let ended = task.process.exited();
        if started && ended.is_none() {
            return Err(error(
                Code::FAILED_PRECONDITION,
                format!("task {} is still running: kill it first", req.id),
            ));
        }
        let task = tasks.remove(&req.id).ok_or_else(|| not_found(&req.id))?;
        drop(tasks);
        match manager()?.remove(&task.container, true).await {
            Ok(()) | Err(containerization::Error::ContainerNotFound(_)) => {}
            Err(error) => return Err(failed(error)),
        }
        bundle::unmount_rootfs(&task.bundle.join("rootfs"));
        let _ = std::fs::remove_file(task.bundle.join("cz.json"));
        response.pid = task.process.pid;
        response.exit_status = ended.map_or(0, |e| e.status);
        let at = ended.map_or_else(SystemTime::now, |e| e.at);
        response.exited_at = Some(timestamp(at)).into();
        let mut event = TaskDelete::new();
        event.container_id = req.id.clone();
        event.pid = response.pid;
        event.exit_status = response.exit_status;
        event.exited_at = Some(timestamp(at)).into();
        self.events
            .publish(topics::TASK_DELETE_EVENT_TOPIC, Box::new(event))
            .await;
        Ok(response)
    }

    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let tasks = self.tasks.lock().await;
        let task = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let (process, created) = match req.exec_id.as_str() {
            "" => (&task.process, task.created.is_some()),
            exec => {
                let exec = task.execs.get(exec).ok_or_else(|| not_found(exec))?;
                (&exec.process, exec.running.is_none())
            }
        };
        let mut response = api::StateResponse::new();
        response.id = req.id.clone();
        response.exec_id = req.exec_id.clone();
        response.bundle = task.bundle.display().to_string();
        response.pid = process.pid;
        response.stdin = process.fifos.stdin.clone();
        response.stdout = process.fifos.stdout.clone();
        response.stderr = process.fifos.stderr.clone();
        response.terminal = process.fifos.terminal;
        let status = match (process.exited(), created) {
            (Some(ended), _) => {
                response.exit_status = ended.status;
                response.exited_at = Some(timestamp(ended.at)).into();
                api::Status::STOPPED
            }
            (None, true) => api::Status::CREATED,
            (None, false) => api::Status::RUNNING,
        };
        response.status = status.into();
        Ok(response)
    }

    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let tasks = self.tasks.lock().await;
        let task = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let mut response = api::PidsResponse::new();
        let mut info = containerd_shim::protos::types::task::ProcessInfo::new();
        info.pid = task.process.pid;
        response.processes.push(info);
        Ok(response)
    }

    async fn exec(
        &self,
        _ctx: &TtrpcContext,
        req: api::ExecProcessRequest,
    ) -> TtrpcResult<api::Empty> {
        let spec: serde_json::Value = serde_json::from_slice(&req.spec.value)
            .map_err(|e| error(Code::INVALID_ARGUMENT, format!("the exec's process: {e}")))?;
        let mut tasks = self.tasks.lock().await;
        let task = tasks.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
        if task.execs.contains_key(&req.exec_id) {
            return Err(error(
                Code::ALREADY_EXISTS,
                format!("exec {} already exists", req.exec_id),
            ));
        }
        let fifos = Fifos {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        task.execs.insert(
            req.exec_id.clone(),
            Exec {
                process: Process::new(fifos),
                spec,
                running: None,
            },
        );
        drop(tasks);
        let mut event = TaskExecAdded::new();
        event.container_id = req.id.clone();
        event.exec_id = req.exec_id.clone();
        self.events
            .publish(topics::TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(event))
            .await;
        Ok(api::Empty::new())
    }

    async fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let rows = u16::try_from(req.height).unwrap_or(u16::MAX);
        let columns = u16::try_from(req.width).unwrap_or(u16::MAX);
        if req.exec_id.is_empty() {
            self.handle(&req.id)
                .await?
                .resize(rows, columns)
                .await
                .map_err(failed)?;
        } else {
            let process = {
                let tasks = self.tasks.lock().await;
                let task = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
                task.execs.get(&req.exec_id).and_then(|e| e.running.clone())
            };
            let process = process.ok_or_else(|| not_found(&req.exec_id))?;
            process.resize(rows, columns).await.map_err(failed)?;
        }
        Ok(api::Empty::new())
    }

    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        use containerd_shim::protos::cgroups_v2::metrics::{
            CPUStat, IOEntry, IOStat, MemoryEvents, MemoryStat, Metrics, PidsStat,
        };
        let stats = self
            .handle(&req.id)
            .await?
            .statistics()
            .await
            .map_err(failed)?;
        let mut metrics = Metrics::new();
        let mut pids = PidsStat::new();
        pids.current = stats.pids_current;
        metrics.pids = Some(pids).into();
        let mut cpu = CPUStat::new();
        cpu.usage_usec = stats.cpu_usage_usec;
        metrics.cpu = Some(cpu).into();
        let mut memory = MemoryStat::new();
        memory.usage = stats.memory_current_bytes;
        memory.usage_limit = stats.memory_limit_bytes;
        metrics.memory = Some(memory).into();
        let mut events = MemoryEvents::new();
        events.oom_kill = stats.oom_kills;
        metrics.memory_events = Some(events).into();
        let mut io = IOStat::new();
        let mut entry = IOEntry::new();
        entry.rbytes = stats.io_read_bytes;
        entry.wbytes = stats.io_write_bytes;
        io.usage.push(entry);
        metrics.io = Some(io).into();
        let mut response = api::StatsResponse::new();
        response.stats =
            Some(containerd_shim::util::convert_to_any(Box::new(metrics)).map_err(failed)?).into();
        Ok(response)
    }

    async fn close_io(
        &self,
        _ctx: &TtrpcContext,
        _req: api::CloseIORequest,
    ) -> TtrpcResult<api::Empty> {
        // The stdin FIFO's end closes the process's standard input.
        Ok(api::Empty::new())
    }

    async fn pause(&self, _ctx: &TtrpcContext, _req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        Err(error(
            Code::UNIMPLEMENTED,
            "io.containerd.cz.v2 cannot pause a task yet",
        ))
    }

    async fn resume(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ResumeRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(error(
            Code::UNIMPLEMENTED,
            "io.containerd.cz.v2 cannot resume a task yet",
        ))
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(error(
            Code::UNIMPLEMENTED,
            "io.containerd.cz.v2 cannot checkpoint a task",
        ))
    }

    async fn update(
        &self,
        _ctx: &TtrpcContext,
        _req: api::UpdateTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(error(
            Code::UNIMPLEMENTED,
            "io.containerd.cz.v2 cannot change a running task's resources yet",
        ))
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let tasks = self.tasks.lock().await;
        let mut response = api::ConnectResponse::new();
        response.shim_pid = std::process::id();
        response.task_pid = tasks.get(&req.id).map_or(0, |t| t.process.pid);
        response.version = env!("CARGO_PKG_VERSION").to_owned();
        Ok(response)
    }

    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ShutdownRequest,
    ) -> TtrpcResult<api::Empty> {
        if !self.tasks.lock().await.is_empty() {
            return Ok(api::Empty::new());
        }
        if let Some(handle) = self.pod.lock().await.take() {
            handle.stop.notify_one();
            let _ = tokio::time::timeout(Duration::from_secs(30), handle.running).await;
            let _ = handle.pod.delete(true).await;
        }
        self.exit.signal();
        Ok(api::Empty::new())
    }
}

//! `cctl system service`: the Docker Engine API (version 1.41, what Debian
//! 12's `docker` 20.10 speaks) on a unix socket, over the same containers,
//! images and networks as `cctl`, so the `docker` CLI and tools built on
//! its API drive containers in their own VMs.
//!
//! Each request is answered by one handler on the façade; a detached
//! container is owned by the same monitor process `cctl run -d` starts, so
//! `cctl ls` and `docker ps` show the same containers, and containers outlive
//! the service. What is not built answers 501 with a message naming it.

mod archive;
mod body;
mod containers;
mod events;
mod exec;
mod images;
mod lifecycle;
mod networks;
mod query;
mod registry;
mod routes;
mod shown;
mod streams;
mod system;
mod usage;
mod volumes;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Args;
use containerization::{ContainerManager, StateRoot};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use body::{Body, error};
use query::Query;

/// The API version served.
pub const API_VERSION: &str = "1.41";
/// The oldest API version a client may ask for.
pub const MIN_API_VERSION: &str = "1.24";

/// How often a handler looks again at a container's record while it waits
/// for a change (a start, an end, its output, its removal): each look
/// reads a small file, and each wait on the path of `docker run` adds
/// half of this on average.
const POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// `cctl system service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Where to listen: `unix:///path/to/docker.sock` (by default
    /// /run/containerization/docker.sock for root, else
    /// $XDG_RUNTIME_DIR/containerization/docker.sock).
    #[arg(short = 'H', long)]
    pub host: Option<String>,
}

/// What every handler shares.
pub(crate) struct Service {
    pub root: StateRoot,
    pub manager: ContainerManager,
    /// Exit codes of containers this service removed after they ended (a
    /// `wait` for their removal answers with it).
    pub removed: Mutex<HashMap<String, i32>>,
    /// Attach streams open per container: a container to be removed after
    /// it ends waits for them to drain its log.
    pub attached: Mutex<HashMap<String, usize>>,
    /// Exec instances by id.
    pub execs: Mutex<HashMap<String, exec::Exec>>,
    /// Containers created with `AutoRemove`, which this service removes
    /// once they ended (their exit code kept in `removed`).
    pub auto_remove: Mutex<HashSet<String>>,
    /// Events: the recent ones and the listeners.
    pub events: events::EventLog,
}

/// Serves the API until the process is told to stop.
pub fn run(root: &StateRoot, args: &ServiceArgs) -> anyhow::Result<()> {
    // Before any other thread exists: it edits the environment.
    let activated = activated_listener()?;
    let socket = socket_path(args.host.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let vminitd = root.find_vminitd()?;
    let service = Arc::new(Service {
        root: root.clone(),
        manager: ContainerManager::new(root.clone(), vminitd),
        removed: Mutex::new(HashMap::new()),
        attached: Mutex::new(HashMap::new()),
        auto_remove: Mutex::new(HashSet::new()),
        execs: Mutex::new(HashMap::new()),
        events: events::EventLog::new(),
    });
    runtime.block_on(async move {
        tokio::spawn(events::watch(Arc::clone(&service)));
        tokio::spawn(start_restartable(Arc::clone(&service)));
        serve(service, socket, activated).await
    })
}

/// Starts what Docker's daemon starts when it starts: containers whose
/// policy is `always` (unless never started) or `unless-stopped` (unless a
/// user stopped it) that are not running (their owner died with the host,
/// say).
async fn start_restartable(service: Arc<Service>) {
    let Ok(listed) = service.manager.list() else {
        return;
    };
    for (config, state) in listed {
        let wanted = match config.restart {
            containerization::RestartPolicy::Always => true,
            containerization::RestartPolicy::UnlessStopped => !state.stopped_by_user,
            _ => false,
        };
        if !wanted
            || state.status == containerization::Status::Created
            || state.is_running()
            || state.owner_alive()
        {
            continue;
        }
        let Ok(container) = service.manager.get(config.id.as_str()) else {
            continue;
        };
        match crate::container::start_monitored(&container).await {
            Ok(()) => tracing::info!(name = config.name, "started as its restart policy says"),
            Err(e) => tracing::warn!(
                name = config.name,
                "cannot start as its restart policy says: {e}"
            ),
        }
    }
}

/// The socket `host` names, or the default one.
fn socket_path(host: Option<&str>) -> anyhow::Result<PathBuf> {
    if let Some(host) = host {
        let path = host.strip_prefix("unix://").with_context(|| {
            format!("{host:?}: only unix sockets are served (unix:///path/to/docker.sock)")
        })?;
        anyhow::ensure!(
            path.starts_with('/'),
            "{host:?}: the socket's path must be absolute"
        );
        return Ok(PathBuf::from(path));
    }
    if rustix::process::geteuid().is_root() {
        return Ok(PathBuf::from("/run/containerization/docker.sock"));
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .context("XDG_RUNTIME_DIR is not set: give the socket with -H unix:///path")?;
    Ok(PathBuf::from(runtime).join("containerization/docker.sock"))
}

async fn serve(
    service: Arc<Service>,
    socket: PathBuf,
    activated: Option<std::os::unix::net::UnixListener>,
) -> anyhow::Result<()> {
    let (listener, owned) = match activated {
        Some(listener) => (
            tokio::net::UnixListener::from_std(listener)
                .context("the socket systemd passed is not a listening unix socket")?,
            false,
        ),
        None => (bind(&socket)?, true),
    };
    eprintln!(
        "cctl: serving the Docker Engine API {API_VERSION} on {}",
        match owned {
            true => format!("unix://{}", socket.display()),
            false => "the socket systemd passed".to_owned(),
        }
    );
    let mut stop = crate::container::run::termination_signals();
    let accept = async {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            };
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                let handler = hyper::service::service_fn(move |request| {
                    let service = Arc::clone(&service);
                    async move { Ok::<_, Infallible>(route(service, request).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), handler)
                    .with_upgrades()
                    .await;
                if let Err(e) = served {
                    tracing::debug!("a connection ended: {e}");
                }
            });
        }
    };
    tokio::select! {
        () = accept => {}
        signal = crate::container::run::told_to_go(&mut stop) => {
            tracing::debug!(signal, "the service was told to go");
        }
    }
    // A socket systemd made stays systemd's.
    if owned {
        let _ = std::fs::remove_file(&socket);
    }
    Ok(())
}

/// Binds `socket` (0660): one left by a service that died is replaced, one a
/// live service answers on is not.
fn bind(socket: &std::path::Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        anyhow::bail!("{} is served by another process already", socket.display());
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", socket.display())),
    }
    let listener = tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set the mode of {}", socket.display()))?;
    Ok(listener)
}

/// The listening socket systemd passed (socket activation: `LISTEN_PID` is
/// this process and `LISTEN_FDS` at least 1, the socket at descriptor 3),
/// if it passed one. The variables are cleared so the containers' monitors
/// do not see them.
fn activated_listener() -> anyhow::Result<Option<std::os::unix::net::UnixListener>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    // SAFETY: `run` calls this before it starts the async runtime or any
    // thread, so no other thread reads or writes the environment.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if !for_us || count == 0 {
        return Ok(None);
    }
    anyhow::ensure!(
        count == 1,
        "systemd passed {count} sockets; the service listens on one (one ListenStream=)"
    );
    // SAFETY: systemd's protocol hands this process descriptor 3, open, and
    // nothing else in it owns or closes descriptor 3.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(3) };
    let listener = std::os::unix::net::UnixListener::from(fd);
    listener
        .set_nonblocking(true)
        .context("the socket systemd passed cannot be made non-blocking")?;
    Ok(Some(listener))
}

/// The path without its `/v1.xx` prefix, split on `/`.
fn segments(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if parts
        .first()
        .is_some_and(|p| p.starts_with('v') && p[1..].contains('.'))
    {
        parts.remove(0);
    }
    parts
}

/// Hands `request` to its handler.
async fn route(service: Arc<Service>, request: Request<Incoming>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = Query::parse(request.uri().query());
    tracing::debug!(%method, path, "request");
    let parts = segments(&path);
    let answer = match (&method, parts.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => Ok(system::ping(&method)),
        (&Method::GET, ["version"]) => Ok(system::version()),
        (&Method::GET, ["info"]) => system::info(&service),
        (&Method::POST, ["auth"]) => registry::auth(&service, request).await,
        (&Method::GET, ["events"]) => events::stream(Arc::clone(&service), &query),
        (&Method::GET, ["containers", "json"]) => shown::list(&service, &query),
        (&Method::POST, ["containers", "create"]) => {
            containers::create(&service, &query, request).await
        }
        (&Method::GET, ["containers", id, "json"]) => shown::inspect(&service, id),
        (&Method::POST, ["containers", id, "start"]) => lifecycle::start(&service, id).await,
        (&Method::POST, ["containers", id, "wait"]) => {
            lifecycle::wait(Arc::clone(&service), id, &query).await
        }
        (&Method::POST, ["containers", id, "stop"]) => lifecycle::stop(&service, id, &query).await,
        (&Method::POST, ["containers", id, "kill"]) => lifecycle::kill(&service, id, &query).await,
        (&Method::DELETE, ["containers", id]) => lifecycle::remove(&service, id, &query).await,
        (&Method::POST, ["containers", id, "attach"]) => {
            streams::attach(Arc::clone(&service), id, &query, request)
        }
        (&Method::GET, ["containers", id, "logs"]) => {
            streams::logs(Arc::clone(&service), id, &query)
        }
        (&Method::POST, ["containers", id, "exec"]) => exec::create(&service, id, request).await,
        (&Method::POST, ["exec", id, "start"]) => {
            exec::start(Arc::clone(&service), id, request).await
        }
        (&Method::POST, ["exec", id, "resize"]) => exec::resize(&service, id, &query).await,
        (&Method::GET, ["exec", id, "json"]) => exec::inspect(&service, id),
        (&Method::POST, ["containers", id, "restart"]) => {
            lifecycle::restart(&service, id, &query).await
        }
        (&Method::HEAD, ["containers", id, "archive"]) => archive::head(&service, id, &query).await,
        (&Method::GET, ["containers", id, "archive"]) => archive::get(&service, id, &query).await,
        (&Method::PUT, ["containers", id, "archive"]) => {
            archive::put(&service, id, &query, request).await
        }
        (&Method::POST, ["containers", "prune"]) => lifecycle::prune(&service).await,
        (&Method::POST, ["containers", id, "resize"]) => {
            lifecycle::resize(&service, id, &query).await
        }
        (&Method::GET, ["containers", id, "stats"]) => usage::stats(&service, id, &query).await,
        (&Method::GET, ["containers", id, "top"]) => usage::top(&service, id).await,
        (&Method::POST, ["containers", id, "rename"]) => lifecycle::rename(&service, id, &query),
        (&Method::POST, ["images", "create"]) => {
            registry::pull(&service, &query, request.headers()).await
        }
        (&Method::POST, ["images", "prune"]) => images::prune(&service, &query),
        (&Method::GET, ["images", "json"]) => images::list(&service, &query),
        (&Method::GET, ["images", name @ .., "json"]) if !name.is_empty() => {
            images::inspect(&service, &name.join("/"))
        }
        (&Method::POST, ["images", name @ .., "push"]) if !name.is_empty() => {
            registry::push(&service, &name.join("/"), &query, request.headers()).await
        }
        (&Method::POST, ["images", name @ .., "tag"]) if !name.is_empty() => {
            images::tag(&service, &name.join("/"), &query)
        }
        (&Method::DELETE, ["images", name @ ..]) if !name.is_empty() => {
            images::remove(&service, &name.join("/"), &query)
        }
        (&Method::GET, ["volumes"]) => volumes::list(&service),
        (&Method::POST, ["volumes", "create"]) => volumes::create(&service, request).await,
        (&Method::POST, ["volumes", "prune"]) => volumes::prune(&service),
        (&Method::GET, ["volumes", name]) => volumes::inspect(&service, name),
        (&Method::DELETE, ["volumes", name]) => volumes::remove(&service, name),
        (&Method::GET, ["networks"]) => networks::list(&service),
        (&Method::POST, ["networks", "create"]) => networks::create(&service, request).await,
        (&Method::POST, ["networks", "prune"]) => networks::prune(&service).await,
        (&Method::GET, ["networks", name]) => networks::inspect(&service, name),
        (&Method::DELETE, ["networks", name]) => networks::remove(&service, name).await,
        (&Method::POST, ["networks", name, "connect"]) => {
            networks::connect(&service, name, request).await
        }
        (&Method::POST, ["networks", name, "disconnect"]) => {
            networks::disconnect(&service, name, request).await
        }
        _ if routes::is_dockers(&method, &parts) => Err(error(
            hyper::StatusCode::NOT_IMPLEMENTED,
            format!("{method} {path} is not implemented by containerization's Docker API yet"),
        )),
        // Docker's router says the same for a route it does not have.
        _ => Err(error(hyper::StatusCode::NOT_FOUND, "page not found")),
    };
    answer.unwrap_or_else(|failure| failure.response())
}

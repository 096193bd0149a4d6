//! Containers: create (from Docker's `Config` and `HostConfig`), start,
//! wait, stop, kill, restart, rename, remove, prune, resize, stats, top,
//! inspect and list, on the façade; and the service's own removal of
//! `AutoRemove` containers once they ended.

use std::sync::Arc;
use std::time::Duration;

use containerization::{
    ContainerConfig, ContainerState, CreateOptions, Error, NetworkMode, RestartPolicy, Status, spec,
};
use containerization_oci::Platform;
use containerization_oci::store::ImageStore;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, ApiError, error, from_error, json, nothing, read_json, streamed};
use super::query::Query;
use crate::container::flags::PortFlag;
use crate::container::list::{Filter, admitted, command_text, now_ms, status_text};

/// A 400 naming what is wrong with the request.
fn bad(message: impl std::fmt::Display) -> ApiError {
    error(StatusCode::BAD_REQUEST, message)
}

/// A 501 naming what is not built yet.
fn missing(what: &str) -> ApiError {
    error(
        StatusCode::NOT_IMPLEMENTED,
        format!("{what} is not supported by containerization's Docker API yet"),
    )
}

/// The strings of a JSON array (`null` or absent: none).
pub(crate) fn strings(value: &Value, field: &str) -> Result<Vec<String>, ApiError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("{field} must be a list of strings")))
            })
            .collect(),
        Value::String(one) => Ok(vec![one.clone()]),
        _ => Err(bad(format!("{field} must be a list of strings"))),
    }
}

/// `POST /containers/create?name=`.
pub(crate) async fn create(service: &Service, query: &Query, request: Request<Incoming>) -> Answer {
    let body = read_json(request).await?;
    let typed = body["Image"]
        .as_str()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| bad("Config.Image is required"))?;
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let image = crate::image::store_name(&store, typed);
    if store.resolve(&image, &Platform::host()).is_err() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("No such image: {typed}"),
        ));
    }
    let host = &body["HostConfig"];
    refuse_unbuilt(host)?;
    let mut entrypoint = strings(&body["Entrypoint"], "Entrypoint")?;
    let mut args = strings(&body["Cmd"], "Cmd")?;
    let entrypoint = match body["Entrypoint"] {
        Value::Null => None,
        _ if entrypoint.is_empty() => Some(String::new()),
        _ => {
            let first = entrypoint.remove(0);
            entrypoint.append(&mut args);
            args = entrypoint;
            Some(first)
        }
    };
    let mut mounts = Vec::new();
    for bind in strings(&host["Binds"], "HostConfig.Binds")? {
        mounts.push(spec::Mount::parse_volume_flag(&bind).map_err(bad)?);
    }
    if let Some(tmpfs) = host["Tmpfs"].as_object() {
        for (path, options) in tmpfs {
            let flag = match options.as_str().unwrap_or_default() {
                "" => path.clone(),
                options => format!("{path}:{options}"),
            };
            mounts.push(spec::Mount::parse_tmpfs_flag(&flag).map_err(bad)?);
        }
    }
    for mount in host["Mounts"].as_array().into_iter().flatten() {
        let mut fields = vec![format!(
            "type={}",
            mount["Type"].as_str().unwrap_or("volume")
        )];
        for (key, field) in [("source", "Source"), ("target", "Target")] {
            if let Some(value) = mount[field].as_str().filter(|v| !v.is_empty()) {
                fields.push(format!("{key}={value}"));
            }
        }
        if mount["ReadOnly"].as_bool() == Some(true) {
            fields.push("readonly".to_owned());
        }
        mounts.push(spec::Mount::parse_mount_flag(&fields.join(",")).map_err(bad)?);
    }
    let network = match host["NetworkMode"].as_str().unwrap_or_default() {
        "" | "default" | "bridge" => None,
        "none" => Some(NetworkMode::None),
        "host" => {
            return Err(bad(
                "network mode host: each container is a VM with a network of its own; \
                 publish ports instead",
            ));
        }
        other if other.contains(':') => return Err(missing(&format!("network mode {other}"))),
        name => Some(NetworkMode::Network(
            super::networks::find(service, name)
                .map(|network| network.name)
                .unwrap_or_else(|_| name.to_owned()),
        )),
    };
    let mut ports = Vec::new();
    if let Some(bindings) = host["PortBindings"].as_object() {
        for (container_port, hosts) in bindings {
            for binding in hosts.as_array().into_iter().flatten() {
                let host_ip = binding["HostIp"].as_str().unwrap_or_default();
                let host_port = binding["HostPort"].as_str().unwrap_or_default();
                let flag = match (host_ip, host_port) {
                    (_, "") => container_port.clone(),
                    ("", port) => format!("{port}:{container_port}"),
                    (ip, port) => format!("{ip}:{port}:{container_port}"),
                };
                let port: PortFlag = flag.parse().map_err(bad)?;
                ports.push(port.resolve().map_err(bad)?);
            }
        }
    }
    let mut dns = Vec::new();
    for server in strings(&host["Dns"], "HostConfig.Dns")? {
        dns.push(
            server
                .parse()
                .map_err(|_| bad(format!("{server:?} is not an IP address")))?,
        );
    }
    let memory = host["Memory"].as_u64().filter(|m| *m > 0);
    let cpus = host["NanoCpus"]
        .as_u64()
        .filter(|n| *n > 0)
        .map(|n| n as f64 / 1e9);
    let text = |field: &str| {
        body[field]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let options = CreateOptions {
        image,
        platform: Some(Platform::host()),
        name: query
            .get("name")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        container: spec::ContainerOptions {
            hostname: text("Hostname").unwrap_or_default(),
            read_only: host["ReadonlyRootfs"].as_bool().unwrap_or(false),
            memory_bytes: memory,
            cpus,
            process: spec::ProcessOptions {
                entrypoint,
                args,
                env: strings(&body["Env"], "Env")?,
                env_files: Vec::new(),
                workdir: text("WorkingDir"),
                user: text("User"),
                terminal: body["Tty"].as_bool().unwrap_or(false),
            },
            mounts,
        },
        network,
        ports,
        dns,
        kernel: None,
        // The service removes it once it ended and its output was read.
        auto_remove: false,
        disposable: host["AutoRemove"].as_bool() == Some(true),
        interactive: body["OpenStdin"].as_bool().unwrap_or(false),
        pod: None,
        labels: labels_of(&body["Labels"])?,
        restart: restart_policy(&host["RestartPolicy"])?,
        // The aliases asked for on its network (Compose's service name).
        aliases: body["NetworkingConfig"]["EndpointsConfig"]
            .as_object()
            .into_iter()
            .flat_map(|endpoints| endpoints.values())
            .flat_map(|endpoint| endpoint["Aliases"].as_array().cloned().unwrap_or_default())
            .filter_map(|alias| alias.as_str().map(str::to_owned))
            .collect(),
    };
    let container = service
        .manager
        .create(options)
        .await
        .map_err(|e| from_error(&e.into()))?;
    let id = container.id().to_string();
    if host["AutoRemove"].as_bool() == Some(true) {
        lock(&service.auto_remove).insert(id.clone());
    }
    Ok(json(
        StatusCode::CREATED,
        &json!({ "Id": id, "Warnings": [] }),
    ))
}

/// Docker's `Labels` (`{"name": "value"}`, or null) as a map.
pub(crate) fn labels_of(
    value: &Value,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    match value {
        Value::Null => Ok(Default::default()),
        Value::Object(labels) => Ok(labels
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect()),
        _ => Err(bad("Labels must map names to strings")),
    }
}

/// `HostConfig.RestartPolicy` (`{"Name": "on-failure",
/// "MaximumRetryCount": 3}`) as a policy.
fn restart_policy(value: &Value) -> Result<RestartPolicy, ApiError> {
    let name = value["Name"].as_str().unwrap_or_default();
    let text = match value["MaximumRetryCount"].as_u64().filter(|n| *n > 0) {
        Some(count) if name == "on-failure" => format!("{name}:{count}"),
        _ => name.to_owned(),
    };
    text.parse().map_err(bad)
}

/// Fields the create request may carry that are not built: a 501 naming
/// the first one set, never a container made without it.
fn refuse_unbuilt(host: &Value) -> Result<(), ApiError> {
    let set = |value: &Value| match value {
        Value::Null | Value::Bool(false) => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Bool(true) => true,
    };
    for field in [
        "Privileged",
        "CapAdd",
        "Devices",
        "VolumesFrom",
        "Links",
        "ExtraHosts",
        "PidMode",
        "IpcMode",
    ] {
        if set(&host[field]) {
            return Err(missing(&format!("HostConfig.{field}")));
        }
    }
    Ok(())
}

pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The container `id` names, or Docker's 404.
pub(crate) fn find(
    service: &Service,
    id: &str,
) -> Result<containerization::LinuxContainer, ApiError> {
    service.manager.get(id).map_err(|e| match e {
        Error::ContainerNotFound(_) => {
            error(StatusCode::NOT_FOUND, format!("No such container: {id}"))
        }
        e => from_error(&e.into()),
    })
}

/// Whether the state is of a running first process.
pub(crate) fn running(state: &ContainerState) -> bool {
    state.is_running() && matches!(state.status, Status::Running | Status::Starting)
}

/// Whether it ended and its owner is gone too, so its VM, address and
/// volumes are free (an owner tears them down after the exit is recorded).
fn settled(state: &ContainerState) -> bool {
    !running(state) && !state.owner_alive()
}

/// `POST /containers/{id}/start`: under a monitor, as `cctl start`; a
/// container of `AutoRemove` is removed by this service once it ended.
pub(crate) async fn start(service: &Arc<Service>, id: &str) -> Answer {
    let container = find(service, id)?;
    if running(&container.state().map_err(|e| from_error(&e.into()))?) {
        return Ok(nothing(StatusCode::NOT_MODIFIED));
    }
    let full = container.id().to_string();
    if let Err(e) = crate::container::start_monitored(&container).await {
        if lock(&service.auto_remove).remove(&full) {
            let _ = service.manager.remove(&full, true).await;
        }
        // The docker CLI picks `run`'s exit code from these words: 127 for
        // "executable file not found", 126 for "permission denied".
        let why = crate::report::one_line(&e);
        let words = match e.downcast_ref::<crate::container::ExitWith>() {
            Some(crate::container::ExitWith(127, _)) => "executable file not found",
            Some(crate::container::ExitWith(126, _)) => "permission denied",
            _ => "",
        };
        let message = if why.contains(words) {
            why
        } else {
            format!("{why}: {words}")
        };
        return Err(error(StatusCode::BAD_REQUEST, message));
    }
    if lock(&service.auto_remove).contains(&full) {
        tokio::spawn(reap(Arc::clone(service), full));
    }
    Ok(nothing(StatusCode::NO_CONTENT))
}

/// Removes container `id` once its first process ended and no attach stream
/// is still reading its output, keeping its exit code for `wait`.
async fn reap(service: Arc<Service>, id: String) {
    let mut ended_at = None;
    loop {
        let Ok(container) = service.manager.get(&id) else {
            break;
        };
        let Ok(state) = container.state() else { break };
        if !running(&state) {
            let ended = *ended_at.get_or_insert_with(std::time::Instant::now);
            let late = ended.elapsed() > Duration::from_secs(10);
            let readers = lock(&service.attached).get(&id).copied().unwrap_or(0);
            // Its volumes and address are free once its owner is gone (which
            // a next `run -v` of them needs), its output read once no attach
            // stream reads it.
            if late || (!state.owner_alive() && readers == 0) {
                lock(&service.removed).insert(id.clone(), state.exit_code.unwrap_or(0));
                if let Err(e) = service.manager.remove(&id, true).await {
                    tracing::warn!(id, "cannot remove an ended container: {e}");
                }
                break;
            }
        }
        tokio::time::sleep(super::POLL).await;
    }
    lock(&service.auto_remove).remove(&id);
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`:
/// the headers at once (the client starts the container after them), the
/// exit code when the condition holds.
pub(crate) async fn wait(service: Arc<Service>, id: &str, query: &Query) -> Answer {
    // Docker's CLI sends `condition=` (empty) for the default.
    let condition = match query.get("condition") {
        None | Some("") => "not-running".to_owned(),
        Some(other) => other.to_owned(),
    };
    if !matches!(condition.as_str(), "not-running" | "next-exit" | "removed") {
        return Err(bad(format!(
            "condition {condition:?}: not-running, next-exit or removed"
        )));
    }
    let container = find(&service, id)?;
    let full = container.id().to_string();
    let since = now_ms();
    let (sender, response) = streamed(StatusCode::OK, "application/json");
    tokio::spawn(async move {
        let mut last_code = None;
        let code = loop {
            match service.manager.get(&full).and_then(|c| c.state()) {
                Ok(state) => {
                    let ended = settled(&state);
                    if ended && state.status == Status::Exited {
                        last_code = state.exit_code.or(last_code);
                    }
                    let holds = match condition.as_str() {
                        "not-running" => ended,
                        "next-exit" => {
                            ended
                                && state.status == Status::Exited
                                && state.finished_ms.unwrap_or(0) >= since
                        }
                        _ => false,
                    };
                    if holds {
                        break state.exit_code.unwrap_or(0);
                    }
                }
                Err(_) => {
                    let removed = lock(&service.removed).get(&full).copied();
                    break removed.or(last_code).unwrap_or(0);
                }
            }
            tokio::time::sleep(super::POLL).await;
        };
        let body = json!({ "StatusCode": code, "Error": null });
        let _ = sender.send(bytes::Bytes::from(format!("{body}\n"))).await;
    });
    Ok(response)
}

/// `POST /containers/{id}/stop?t=SECONDS`.
pub(crate) async fn stop(service: &Service, id: &str, query: &Query) -> Answer {
    let mut container = find(service, id)?;
    if !running(&container.state().map_err(|e| from_error(&e.into()))?) {
        return Ok(nothing(StatusCode::NOT_MODIFIED));
    }
    let seconds = query.number("t").unwrap_or(10).max(0);
    container
        .stop(Duration::from_secs(u64::try_from(seconds).unwrap_or(10)))
        .await
        .map_err(|e| from_error(&e.into()))?;
    Ok(nothing(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill?signal=`.
pub(crate) async fn kill(service: &Service, id: &str, query: &Query) -> Answer {
    let container = find(service, id)?;
    if !running(&container.state().map_err(|e| from_error(&e.into()))?) {
        return Err(error(
            StatusCode::CONFLICT,
            format!("Container {id} is not running"),
        ));
    }
    let signal =
        containerization::parse_signal(query.get("signal").unwrap_or("KILL")).map_err(bad)?;
    container
        .kill(signal)
        .await
        .map_err(|e| from_error(&e.into()))?;
    Ok(nothing(StatusCode::NO_CONTENT))
}

/// `DELETE /containers/{id}?force=&v=`.
pub(crate) async fn remove(service: &Service, id: &str, query: &Query) -> Answer {
    let container = find(service, id)?;
    let force = query.flag("force");
    if !force && running(&container.state().map_err(|e| from_error(&e.into()))?) {
        return Err(error(
            StatusCode::CONFLICT,
            format!(
                "You cannot remove a running container {id}. Stop the container before \
                 attempting removal or force remove"
            ),
        ));
    }
    // A copy this service runs may still be stopping its copy VM after
    // the client has read all it wanted (`docker cp` stops at the tar
    // stream's end): the removal waits for it to give the container back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while container
        .state()
        .is_ok_and(|s| s.copying && s.owner_alive())
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let full = container.id().to_string();
    service
        .manager
        .remove_with_volumes(&full, force, query.flag("v"))
        .await
        .map_err(|e| from_error(&e.into()))?;
    Ok(nothing(StatusCode::NO_CONTENT))
}

/// `GET /containers/{id}/json`.
pub(crate) fn inspect(service: &Service, id: &str) -> Answer {
    let container = find(service, id)?;
    let mut value =
        crate::container::list::inspect_value(&container).map_err(|e| from_error(&e))?;
    // Docker names containers with a leading slash.
    value["Name"] = json!(format!("/{}", container.config().name));
    value["Path"] = value["Config"]["Cmd"][0].clone();
    value["Args"] = json!(
        value["Config"]["Cmd"]
            .as_array()
            .map(|a| a.iter().skip(1).cloned().collect::<Vec<_>>())
    );
    let config = container.config();
    value["Config"]["Image"] = json!(config.image);
    // Docker's types where ours differ: a signal's name, a network's name,
    // port bindings by container port.
    value["Config"]["StopSignal"] = json!(signal_name(config.stop_signal));
    value["Config"]["User"] = json!(user_text(&config.spec["process"]["user"]));
    value["Config"]["Entrypoint"] = Value::Null;
    value["HostConfig"]["NetworkMode"] = json!(network_name(&config.network));
    value["HostConfig"]["PortBindings"] = port_bindings(&config.ports);
    // Its output is kept in a file of its own, read through the API, as
    // Docker's `local` log driver keeps it.
    value["HostConfig"]["LogConfig"] = json!({ "Type": "local", "Config": {} });
    value["NetworkSettings"]["Networks"] =
        networks_of(service, config, &value["NetworkSettings"]["IPAddress"]);
    if value["State"]["ExitCode"].is_null() {
        value["State"]["ExitCode"] = json!(0);
    }
    Ok(json(StatusCode::OK, &value))
}

/// The spec's user as Docker writes it: `uid:gid`, empty for root.
fn user_text(user: &Value) -> String {
    match (
        user["uid"].as_u64().unwrap_or(0),
        user["gid"].as_u64().unwrap_or(0),
    ) {
        (0, 0) => String::new(),
        (uid, gid) => format!("{uid}:{gid}"),
    }
}

/// Docker's `NetworkSettings.Networks`: the container's network, its
/// short id among its aliases (as Docker's, which Compose looks for).
fn networks_of(service: &Service, config: &ContainerConfig, address: &Value) -> Value {
    match &config.network {
        NetworkMode::None => json!({}),
        NetworkMode::Network(name) => {
            let short: String = config.id.as_str().chars().take(12).collect();
            let mut networks = serde_json::Map::new();
            networks.insert(
                name.clone(),
                json!({
                    "Aliases": [short],
                    "NetworkID": super::networks::find(service, name)
                        .map(|network| network.id())
                        .unwrap_or_default(),
                    "IPAddress": address.as_str().unwrap_or_default(),
                }),
            );
            Value::Object(networks)
        }
    }
}

/// `SIGTERM` for 15, as Docker writes stop signals.
fn signal_name(signal: i32) -> String {
    match signal {
        1 => "SIGHUP".to_owned(),
        2 => "SIGINT".to_owned(),
        3 => "SIGQUIT".to_owned(),
        9 => "SIGKILL".to_owned(),
        15 => "SIGTERM".to_owned(),
        other => other.to_string(),
    }
}

/// A network mode as Docker names it.
fn network_name(mode: &NetworkMode) -> String {
    match mode {
        NetworkMode::None => "none".to_owned(),
        NetworkMode::Network(name) => name.clone(),
    }
}

/// `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`.
fn port_bindings(ports: &[containerization::network::PublishedPort]) -> Value {
    let mut map = serde_json::Map::new();
    for port in ports {
        let key = format!("{}/{}", port.container_port, port.protocol);
        let entry = map.entry(key).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({
                "HostIp": port.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                "HostPort": port.host_port.to_string(),
            }));
        }
    }
    Value::Object(map)
}

/// `GET /containers/json?all=`: Docker's list shape.
pub(crate) fn list(service: &Service, query: &Query) -> Answer {
    let all = query.flag("all");
    let filters = filters(query)?;
    // A status filter shows stopped ones too, as Docker's.
    let by_status = filters.iter().any(|f| matches!(f, Filter::Status(_)));
    let listed = service.manager.list().map_err(|e| from_error(&e.into()))?;
    let shown: Vec<Value> = listed
        .iter()
        .filter(|(config, state)| {
            (all || by_status || running(state)) && admitted(&filters, config, state)
        })
        .map(|(config, state)| summary(service, config, state))
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(shown)))
}

fn summary(service: &Service, config: &ContainerConfig, state: &ContainerState) -> Value {
    let docker_state = match state.status {
        _ if running(state) => "running",
        Status::Created => "created",
        _ => "exited",
    };
    json!({
        "Id": config.id,
        "Names": [format!("/{}", config.name)],
        "Image": config.image,
        "ImageID": config.manifest,
        "Command": command_text(config).trim_matches('"'),
        "Created": config.created_ms / 1000,
        "State": docker_state,
        "Status": status_text(state),
        "Ports": config.ports.iter().map(|p| json!({
            "IP": p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string()),
            "PrivatePort": p.container_port,
            "PublicPort": p.host_port,
            "Type": p.protocol.to_string(),
        })).collect::<Vec<_>>(),
        "Labels": config.labels,
        "HostConfig": { "NetworkMode": network_name(&config.network) },
        "NetworkSettings": { "Networks": networks_of(service, config, &Value::Null) },
        "Mounts": [],
    })
}

/// `POST /containers/{id}/restart?t=`: stopped (if running), then started.
pub(crate) async fn restart(service: &Arc<Service>, id: &str, query: &Query) -> Answer {
    let mut container = find(service, id)?;
    if running(&container.state().map_err(|e| from_error(&e.into()))?) {
        let seconds = query.number("t").unwrap_or(10).max(0);
        container
            .stop(Duration::from_secs(u64::try_from(seconds).unwrap_or(10)))
            .await
            .map_err(|e| from_error(&e.into()))?;
    }
    // Its monitor is gone before a new one starts.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while container.state().is_ok_and(|s| s.owner_alive()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(super::POLL).await;
    }
    start(service, id).await
}

/// `POST /containers/prune`: removes every container that is not running.
pub(crate) async fn prune(service: &Service) -> Answer {
    let listed = service.manager.list().map_err(|e| from_error(&e.into()))?;
    let mut removed = Vec::new();
    for (config, state) in listed {
        if settled(&state)
            && service
                .manager
                .remove(config.id.as_str(), false)
                .await
                .is_ok()
        {
            removed.push(config.id.to_string());
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({ "ContainersDeleted": removed, "SpaceReclaimed": 0 }),
    ))
}

/// `POST /containers/{id}/resize?h=&w=`: its first process's terminal.
pub(crate) async fn resize(service: &Service, id: &str, query: &Query) -> Answer {
    let container = find(service, id)?;
    let rows = query.number("h").and_then(|h| u16::try_from(h).ok());
    let columns = query.number("w").and_then(|w| u16::try_from(w).ok());
    let (Some(rows), Some(columns)) = (rows, columns) else {
        return Err(bad("resize needs h and w"));
    };
    container
        .resize(rows, columns)
        .await
        .map_err(|e| from_error(&e.into()))?;
    Ok(nothing(StatusCode::OK))
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: a sample of the
/// container's cgroup in its VM (CPU time, memory and its limit, PIDs,
/// block I/O), one a second while streaming, each with the one before as
/// `precpu_stats` (the CLI's CPU percentage is the CPU time's share of the
/// wall-clock time between two, as `system_cpu_usage` is the wall-clock
/// time times the VM's CPUs). A container that is not running gives an
/// empty sample, as Docker's does.
pub(crate) async fn stats(service: &Arc<Service>, id: &str, query: &Query) -> Answer {
    let container = find(service, id)?;
    let stream = !matches!(query.get("stream"), Some("0" | "false"));
    if !stream {
        let first = sample(&container, None).await;
        // Docker takes two samples a moment apart unless asked for one
        // shot, so the CPU share can be worked out.
        let shown = if query.flag("one-shot") || first["read"] == EMPTY_TIME {
            first
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            sample(&container, Some(&first)).await
        };
        return Ok(json(StatusCode::OK, &shown));
    }
    let (sender, response) = streamed(StatusCode::OK, "application/json");
    tokio::spawn(async move {
        let mut previous: Option<Value> = None;
        loop {
            let now = sample(&container, previous.as_ref()).await;
            let line = bytes::Bytes::from(format!("{now}\n"));
            if sender.send(line).await.is_err() {
                return;
            }
            previous = Some(now);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(response)
}

/// Docker's zero time, the `read` of an empty sample.
const EMPTY_TIME: &str = "0001-01-01T00:00:00Z";

/// One sample of `container`'s statistics in Docker's shape, with
/// `previous` as its `precpu_stats`; an empty one when it is not running
/// or its agent does not answer.
async fn sample(container: &containerization::LinuxContainer, previous: Option<&Value>) -> Value {
    let config = container.config();
    let mut shown = json!({
        "id": config.id,
        "name": format!("/{}", config.name),
        "read": EMPTY_TIME,
        "preread": previous.map_or(json!(EMPTY_TIME), |p| p["read"].clone()),
        "pids_stats": {},
        "cpu_stats": { "cpu_usage": { "total_usage": 0 }, "throttling_data": {} },
        "precpu_stats": previous.map_or(json!({ "cpu_usage": { "total_usage": 0 } }), |p| p["cpu_stats"].clone()),
        "memory_stats": {},
        "blkio_stats": {},
        "networks": {},
    });
    let running = container.state().is_ok_and(|s| running(&s));
    let stats = match running {
        true => container.statistics().await.ok(),
        false => None,
    };
    let Some(stats) = stats else {
        return shown;
    };
    let online_cpus = config.vcpus;
    let limit = if stats.memory_limit_bytes > 0 {
        stats.memory_limit_bytes
    } else {
        u64::from(config.vm_memory_mib) << 20
    };
    let now = now_ms();
    shown["read"] = json!(crate::clock::rfc3339_millis(Some(now)));
    shown["pids_stats"] = json!({ "current": stats.pids_current });
    shown["cpu_stats"] = json!({
        "cpu_usage": { "total_usage": stats.cpu_usage_usec * 1000 },
        "system_cpu_usage": now.saturating_mul(1_000_000).saturating_mul(u64::from(online_cpus)),
        "online_cpus": online_cpus,
        "throttling_data": {},
    });
    shown["memory_stats"] = json!({
        "usage": stats.memory_current_bytes,
        "limit": limit,
        "stats": {},
        "failcnt": stats.oom_kills,
    });
    shown["blkio_stats"] = json!({
        "io_service_bytes_recursive": [
            { "major": 0, "minor": 0, "op": "read", "value": stats.io_read_bytes },
            { "major": 0, "minor": 0, "op": "write", "value": stats.io_write_bytes },
        ],
    });
    shown
}

/// `GET /containers/{id}/top`: `ps` run in the container (its processes
/// live in its VM, not on the host).
pub(crate) async fn top(service: &Service, id: &str) -> Answer {
    let container = find(service, id)?;
    if !running(&container.state().map_err(|e| from_error(&e.into()))?) {
        return Err(error(
            StatusCode::CONFLICT,
            format!("Container {id} is not running"),
        ));
    }
    let lines = crate::container::verbs::processes(&service.manager, container.id().as_str())
        .await
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::report::one_line(&e),
            )
        })?;
    let mut lines = lines.iter();
    let titles: Vec<&str> = lines
        .next()
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let processes: Vec<Vec<String>> = lines
        .map(|line| {
            let mut fields: Vec<String> = line
                .split_whitespace()
                .take(titles.len().saturating_sub(1))
                .map(str::to_owned)
                .collect();
            let rest = line
                .split_whitespace()
                .skip(fields.len())
                .collect::<Vec<_>>()
                .join(" ");
            fields.push(rest);
            fields
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "Titles": titles, "Processes": processes }),
    ))
}

/// The list's `filters` parameter as filters; a kind not known is refused.
fn filters(query: &Query) -> Result<Vec<Filter>, ApiError> {
    query
        .filters()
        .map_err(bad)?
        .into_iter()
        .map(|(kind, value)| Filter::parse(&format!("{kind}={value}")).map_err(bad))
        .collect()
}

/// `POST /containers/{id}/rename?name=`.
pub(crate) fn rename(service: &Service, id: &str, query: &Query) -> Answer {
    let name = query
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name is required"))?;
    find(service, id)?;
    service
        .manager
        .rename(id, name.trim_start_matches('/'))
        .map_err(|e| match e {
            Error::NameInUse(name) => error(
                StatusCode::CONFLICT,
                format!("Conflict. The container name \"/{name}\" is already in use"),
            ),
            e => from_error(&e.into()),
        })?;
    Ok(nothing(StatusCode::NO_CONTENT))
}

//! Containers: create, from Docker's `Config` and `HostConfig`, on the
//! façade; and what the other container handlers share (finding a
//! container, its state as Docker sees it, errors).

use containerization::{
    ContainerState, CreateOptions, Error, NetworkJoin, NetworkMode, RestartPolicy, Status, spec,
};
use containerization_oci::Platform;
use containerization_oci::store::ImageStore;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, ApiError, error, from_error, json, read_json};
use super::query::Query;
use crate::container::flags::PortFlag;

/// A 400 naming what is wrong with the request.
pub(crate) fn bad(message: impl std::fmt::Display) -> ApiError {
    error(StatusCode::BAD_REQUEST, message)
}

/// A 501 naming what is not built yet.
pub(crate) fn missing(what: &str) -> ApiError {
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
    refuse_unbuilt(&body, host)?;
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
    // `-v /path` alone: Docker's CLI puts it in `Config.Volumes`, an
    // anonymous volume unless something else is mounted there.
    for target in body["Volumes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(t, _)| t)
    {
        if !mounts.iter().any(|m| m.target() == target) {
            mounts.push(spec::Mount::parse_volume_flag(target).map_err(bad)?);
        }
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
    let (aliases, more_networks) = endpoints(service, &body, network.as_ref());
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
        aliases,
        more_networks,
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
/// What `NetworkingConfig.EndpointsConfig` asks for: the aliases on the
/// container's first network (Compose's service name), and each other
/// network it names as a further network with its own aliases (as Docker's
/// API takes them from 1.44). A container on network none joins no other.
fn endpoints(
    service: &Service,
    body: &Value,
    network: Option<&NetworkMode>,
) -> (Vec<String>, Vec<NetworkJoin>) {
    let first = match network {
        Some(NetworkMode::None) => return (Vec::new(), Vec::new()),
        Some(NetworkMode::Network(name)) => name.as_str(),
        None => containerization::DEFAULT_NETWORK,
    };
    let (mut aliases, mut more) = (Vec::new(), Vec::new());
    let endpoints = body["NetworkingConfig"]["EndpointsConfig"].as_object();
    for (key, endpoint) in endpoints.into_iter().flatten() {
        let names: Vec<String> = endpoint["Aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|alias| alias.as_str().map(str::to_owned))
            .collect();
        let name = super::networks::find(service, key)
            .map(|network| network.name)
            .unwrap_or_else(|_| match key.as_str() {
                "bridge" => containerization::DEFAULT_NETWORK.to_owned(),
                _ => key.clone(),
            });
        match name == first {
            true => aliases.extend(names),
            false => more.push(NetworkJoin {
                name,
                aliases: names,
            }),
        }
    }
    (aliases, more)
}

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
fn refuse_unbuilt(body: &Value, host: &Value) -> Result<(), ApiError> {
    let set = |value: &Value| match value {
        Value::Null | Value::Bool(false) => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Bool(true) => true,
    };
    // Fields a client sets only when asked to: each changes what the
    // container may do or gets, so ignoring one would be a wrong success.
    for field in [
        "Privileged",
        "CapAdd",
        "CapDrop",
        "Capabilities",
        "SecurityOpt",
        "Devices",
        "DeviceRequests",
        "DeviceCgroupRules",
        "VolumesFrom",
        "Links",
        "ExtraHosts",
        "PidMode",
        "IpcMode",
        "UTSMode",
        "UsernsMode",
        "CgroupParent",
        "Sysctls",
        "Ulimits",
        "GroupAdd",
        "DnsSearch",
        "DnsOptions",
        "PidsLimit",
        "CpuShares",
        "CpusetCpus",
        "CpusetMems",
        "CpuQuota",
        "CpuPeriod",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "BlkioWeight",
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "MemoryReservation",
        "KernelMemory",
        "OomKillDisable",
        "OomScoreAdj",
        "ShmSize",
        "PublishAllPorts",
        "Init",
        "StorageOpt",
        "MaskedPaths",
        "ReadonlyPaths",
    ] {
        if set(&host[field]) {
            return Err(missing(&format!("HostConfig.{field}")));
        }
    }
    // The CLI sends 0 for an unset `MemorySwap` (-1 is unlimited) and -1
    // for an unset `MemorySwappiness`.
    if host["MemorySwap"].as_i64().is_some_and(|n| n > 0) {
        return Err(missing("HostConfig.MemorySwap"));
    }
    if host["MemorySwappiness"].as_i64().is_some_and(|n| n >= 0) {
        return Err(missing("HostConfig.MemorySwappiness"));
    }
    if !matches!(host["Runtime"].as_str().unwrap_or_default(), "" | "runc") {
        return Err(missing("HostConfig.Runtime"));
    }
    for field in [
        "Healthcheck",
        "StopSignal",
        "StopTimeout",
        "Domainname",
        "MacAddress",
        "Shell",
    ] {
        if set(&body[field]) {
            return Err(missing(&format!("Config.{field}")));
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
pub(crate) fn settled(state: &ContainerState) -> bool {
    !running(state) && !state.owner_alive()
}

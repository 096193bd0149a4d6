//! Containers as Docker shows them: inspect and list (with Docker's
//! filters).

use containerization::{ContainerConfig, ContainerState, NetworkMode, Status};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, ApiError, from_error, json};
use super::containers::{bad, find, running};
use super::query::Query;
use crate::container::list::{Filter, admitted, command_text, status_text};

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
    let state = container.state().map_err(|e| from_error(&e.into()))?;
    value["NetworkSettings"]["Networks"] =
        networks_of(&super::networks::ids(service), config, &state);
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

/// Docker's `NetworkSettings.Networks`: each network the container joins,
/// with its id from `ids` (by name), the container's address there while it
/// runs, and its short id among its aliases (as Docker's, which Compose
/// looks for) after those asked for.
fn networks_of(
    ids: &std::collections::HashMap<String, String>,
    config: &ContainerConfig,
    state: &ContainerState,
) -> Value {
    let short: String = config.id.as_str().chars().take(12).collect();
    let live = running(state);
    let networks: serde_json::Map<String, Value> = config
        .joined_networks()
        .into_iter()
        .map(|(name, aliases)| {
            let address = state
                .address_on(config, name)
                .filter(|_| live)
                .map(|a| a.to_string())
                .unwrap_or_default();
            let aliases: Vec<&str> = aliases
                .iter()
                .map(String::as_str)
                .chain([short.as_str()])
                .collect();
            let shown = json!({
                "Aliases": aliases,
                "NetworkID": ids.get(name).cloned().unwrap_or_default(),
                "IPAddress": address,
            });
            (name.to_owned(), shown)
        })
        .collect();
    Value::Object(networks)
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
    // The networks' ids, read once for every row.
    let ids = super::networks::ids(service);
    let shown: Vec<Value> = listed
        .iter()
        .filter(|(config, state)| {
            (all || by_status || running(state)) && admitted(&filters, config, state)
        })
        .map(|(config, state)| summary(&ids, config, state))
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(shown)))
}

fn summary(
    ids: &std::collections::HashMap<String, String>,
    config: &ContainerConfig,
    state: &ContainerState,
) -> Value {
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
        "NetworkSettings": { "Networks": networks_of(ids, config, state) },
        "Mounts": [],
    })
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

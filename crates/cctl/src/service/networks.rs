//! Networks: create, list, inspect, remove and prune (each a bridge with a
//! subnet on the host), and connect and disconnect of a container that is
//! not running (a VM's network card is fixed when it boots: `microvm` has
//! no hotplug; and a container here is on one network at most).

use containerization::ContainerStore;
use containerization::network::{NetworkConfig, NetworkManager};
use containerization_netlink::Netlink;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, ApiError, error, from_error, json, nothing};

fn manager(service: &Service) -> Result<NetworkManager, ApiError> {
    let netlink = Netlink::connect().map_err(|e| from_error(&e.into()))?;
    Ok(NetworkManager::new(service.root.network_dir(), netlink))
}

/// A network as Docker shows it.
fn shape(service: &Service, network: &NetworkConfig) -> Value {
    let mut config = vec![json!({
        "Subnet": network.subnet.to_string(),
        "Gateway": network.gateway.to_string(),
    })];
    if let Some(subnet6) = network.subnet6 {
        config.push(json!({
            "Subnet": subnet6.to_string(),
            "Gateway": network.gateway6.map(|g| g.to_string()).unwrap_or_default(),
        }));
    }
    let containers: serde_json::Map<String, Value> = containers(service)
        .using_network(&network.name)
        .unwrap_or_default()
        .into_iter()
        .map(|(id, name)| (id.to_string(), json!({ "Name": name })))
        .collect();
    json!({
        "Name": network.name,
        "Id": network.id(),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": network.subnet6.is_some(),
        "IPAM": { "Driver": "default", "Options": {}, "Config": config },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "Containers": containers,
        "Options": { "com.docker.network.bridge.name": network.bridge },
        "Labels": network.labels,
    })
}

fn containers(service: &Service) -> ContainerStore {
    ContainerStore::new(
        service.root.path().join("containers"),
        service.root.run_dir(),
    )
}

fn pods(service: &Service) -> containerization::pod::PodStore {
    containerization::pod::PodStore::new(service.root.path().join("pods"), service.root.run_dir())
}

fn not_found(name: &str) -> ApiError {
    error(StatusCode::NOT_FOUND, format!("network {name} not found"))
}

/// `GET /networks`.
pub(crate) fn list(service: &Service) -> Answer {
    let networks = manager(service)?
        .list()
        .map_err(|e| from_error(&e.into()))?;
    let shown: Vec<Value> = networks.iter().map(|n| shape(service, n)).collect();
    Ok(json(StatusCode::OK, &Value::Array(shown)))
}

/// Every network's id, by name (none when the networks cannot be read).
pub(crate) fn ids(service: &Service) -> std::collections::HashMap<String, String> {
    manager(service)
        .ok()
        .and_then(|manager| manager.list().ok())
        .unwrap_or_default()
        .into_iter()
        .map(|network| {
            let id = network.id();
            (network.name, id)
        })
        .collect()
}

/// The network named `name`, or whose id is or starts with `name`, as
/// Docker finds networks.
pub(crate) fn find(service: &Service, name: &str) -> Result<NetworkConfig, ApiError> {
    let manager = manager(service)?;
    if let Ok(network) = manager.get(name) {
        return Ok(network);
    }
    // Docker's default network is `bridge`; ours is `default`.
    if name == "bridge"
        && let Ok(network) = manager.get(containerization::DEFAULT_NETWORK)
    {
        return Ok(network);
    }
    let mut by_id = manager
        .list()
        .map_err(|e| from_error(&e.into()))?
        .into_iter()
        .filter(|n| !name.is_empty() && n.id().starts_with(name));
    match (by_id.next(), by_id.next()) {
        (Some(network), None) => Ok(network),
        (Some(_), Some(_)) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("network {name} is ambiguous: more than one network's id starts with it"),
        )),
        _ => Err(not_found(name)),
    }
}

/// `GET /networks/{name}`.
pub(crate) fn inspect(service: &Service, name: &str) -> Answer {
    let network = find(service, name)?;
    Ok(json(StatusCode::OK, &shape(service, &network)))
}

/// `POST /networks/create` with `{"Name", "Driver", "IPAM": {"Config":
/// [{"Subnet", "Gateway"}]}, "EnableIPv6", …}`.
pub(crate) async fn create(service: &Service, request: Request<Incoming>) -> Answer {
    let body = super::body::read_json(request).await?;
    let name = body["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "Name is required"))?;
    let driver = body["Driver"].as_str().unwrap_or_default();
    if !driver.is_empty() && driver != "bridge" {
        return Err(error(
            StatusCode::NOT_IMPLEMENTED,
            format!("network driver {driver:?} is not supported: only bridge is"),
        ));
    }
    // `Attachable` (Compose sets it) only means something for swarm's
    // networks: every network here takes containers.
    for field in ["Internal", "Ingress"] {
        if body[field].as_bool() == Some(true) {
            return Err(error(
                StatusCode::NOT_IMPLEMENTED,
                format!("{field} networks are not supported by containerization's Docker API yet"),
            ));
        }
    }
    let labels = super::containers::labels_of(&body["Labels"])?;
    let mut subnet = None;
    let mut gateway = None;
    let mut ipv6 = None;
    for entry in body["IPAM"]["Config"].as_array().into_iter().flatten() {
        let parse_error = |what: &str, text: &str| {
            error(
                StatusCode::BAD_REQUEST,
                format!("{what} {text:?} is not valid"),
            )
        };
        let Some(text) = entry["Subnet"].as_str() else {
            continue;
        };
        let gateway_text = entry["Gateway"].as_str().filter(|g| !g.is_empty());
        if text.contains(':') {
            let net = text.parse().map_err(|_| parse_error("subnet", text))?;
            let gw = gateway_text
                .map(|g| g.parse().map_err(|_| parse_error("gateway", g)))
                .transpose()?;
            ipv6 = Some((net, gw));
        } else {
            subnet = Some(text.parse().map_err(|_| parse_error("subnet", text))?);
            gateway = gateway_text
                .map(|g| g.parse().map_err(|_| parse_error("gateway", g)))
                .transpose()?;
        }
    }
    if body["EnableIPv6"].as_bool() == Some(true) && ipv6.is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "EnableIPv6 needs an IPv6 subnet in IPAM.Config",
        ));
    }
    let network = manager(service)?
        .create_with_ipv6(name, subnet, gateway, ipv6)
        .await
        .map_err(|e| match e {
            containerization::Error::NetworkExists(_) => error(
                StatusCode::CONFLICT,
                format!("network with name {name} already exists"),
            ),
            e => from_error(&e.into()),
        })?;
    if !labels.is_empty() {
        manager(service)?
            .set_labels(&network.name, labels)
            .map_err(|e| from_error(&e.into()))?;
    }
    Ok(json(
        StatusCode::CREATED,
        &json!({ "Id": network.id(), "Warning": "" }),
    ))
}

/// `DELETE /networks/{name}`: refused (403, as Docker's) while containers
/// or pods are configured on it.
pub(crate) async fn remove(service: &Service, name: &str) -> Answer {
    let manager = manager(service)?;
    let name = &find(service, name)?.name;
    let mut using = containers(service).using_network(name).unwrap_or_default();
    using.extend(pods(service).using_network(name).unwrap_or_default());
    if !using.is_empty() {
        let names: Vec<String> = using.iter().map(|(_, n)| n.clone()).collect();
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "error while removing network: network {name} has active endpoints ({})",
                names.join(", ")
            ),
        ));
    }
    manager
        .remove(name)
        .await
        .map_err(|e| from_error(&e.into()))?;
    Ok(nothing(StatusCode::NO_CONTENT))
}

/// `POST /networks/prune`: removes the networks no container or pod uses.
pub(crate) async fn prune(service: &Service) -> Answer {
    let manager = manager(service)?;
    let (containers, pods) = (containers(service), pods(service));
    let mut removed = Vec::new();
    for network in manager.list().map_err(|e| from_error(&e.into()))? {
        let used = !containers
            .using_network(&network.name)
            .unwrap_or_default()
            .is_empty()
            || !pods
                .using_network(&network.name)
                .unwrap_or_default()
                .is_empty();
        if !used && manager.remove(&network.name).await.is_ok() {
            removed.push(network.name);
        }
    }
    Ok(json(StatusCode::OK, &json!({ "NetworksDeleted": removed })))
}

/// The container a connect or disconnect names (`{"Container": …}`), and
/// the request's body.
async fn container_of(
    service: &Service,
    request: Request<Incoming>,
) -> Result<(containerization::LinuxContainer, Value), ApiError> {
    let body = super::body::read_json(request).await?;
    let name = body["Container"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "Container is required"))?;
    let container = super::containers::find(service, name)?;
    Ok((container, body))
}

/// What a refused network change answers: 501 for a running container
/// (Docker would hot-plug a card), Docker's code otherwise.
fn refused(e: containerization::Error) -> ApiError {
    match e {
        e @ containerization::Error::InvalidState { .. } => error(StatusCode::NOT_IMPLEMENTED, e),
        e @ containerization::Error::InvalidOption { .. } => error(StatusCode::FORBIDDEN, e),
        e => from_error(&e.into()),
    }
}

/// `POST /networks/{name}/connect` with `{"Container", "EndpointConfig":
/// {"Aliases"}}`: a container that is not running joins this network too
/// (its first when it has none, a card of its own after the others
/// otherwise).
pub(crate) async fn connect(service: &Service, name: &str, request: Request<Incoming>) -> Answer {
    let network = find(service, name)?;
    let (container, body) = container_of(service, request).await?;
    let shown = container.config().name.clone();
    if container.config().joins(&network.name) {
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "endpoint with name {shown} already exists in network {}",
                network.name
            ),
        ));
    }
    let aliases: Vec<String> = body["EndpointConfig"]["Aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    service
        .manager
        .connect_network(container.id().as_str(), &network.name, aliases)
        .await
        .map_err(refused)?;
    Ok(nothing(StatusCode::OK))
}

/// `POST /networks/{name}/disconnect` with `{"Container"}`: a container
/// that is not running leaves this network (its next network becomes its
/// first; without one it is on none).
pub(crate) async fn disconnect(
    service: &Service,
    name: &str,
    request: Request<Incoming>,
) -> Answer {
    let network = find(service, name)?;
    let (container, _) = container_of(service, request).await?;
    if !container.config().joins(&network.name) {
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "container {} is not connected to network {}",
                container.config().name,
                network.name
            ),
        ));
    }
    service
        .manager
        .disconnect_network(container.id().as_str(), &network.name)
        .map_err(refused)?;
    Ok(nothing(StatusCode::OK))
}

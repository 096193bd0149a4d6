//! `GET /events`: container events as they happen (`create`, `start`,
//! `die`, `destroy`), seen by watching the containers' records twice a
//! second, so those made or ended by `cctl` show too. Events from before
//! the request are not kept: `since` only names where a live stream starts,
//! and `until` ends it.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use containerization::{ContainerConfig, ContainerState, Status};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, error, streamed};
use super::query::Query;
use crate::container::list::now_ms;

/// How often the records are read.
const EVERY: Duration = Duration::from_millis(200);

/// What is known of a container between two looks.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    started_ms: Option<u64>,
    finished_ms: Option<u64>,
    /// Its first process runs (started and not yet seen to end).
    running: bool,
}

impl Seen {
    fn of(state: &ContainerState) -> Self {
        Self {
            started_ms: state.started_ms,
            finished_ms: state.finished_ms,
            running: state.status != Status::Exited && state.started_ms.is_some(),
        }
    }
}

/// One event in Docker's shape.
fn event(action: &str, config: &ContainerConfig, extra: &[(&str, String)]) -> Value {
    let now = now_ms();
    let mut attributes = serde_json::Map::new();
    attributes.insert("name".to_owned(), json!(config.name));
    attributes.insert("image".to_owned(), json!(config.image));
    for (key, value) in &config.labels {
        attributes.insert(key.clone(), json!(value));
    }
    for (key, value) in extra {
        attributes.insert((*key).to_owned(), json!(value));
    }
    json!({
        "Type": "container",
        "Action": action,
        "Actor": { "ID": config.id, "Attributes": attributes },
        "scope": "local",
        "status": action,
        "id": config.id,
        "from": config.image,
        "time": now / 1000,
        "timeNano": u128::from(now) * 1_000_000,
    })
}

/// What changed from `before` to `now` for one container, as events.
fn changes(config: &ContainerConfig, before: Option<&Seen>, now: &ContainerState) -> Vec<Value> {
    let mut events = Vec::new();
    if before.is_none() {
        events.push(event("create", config, &[]));
    }
    let known_start = before.and_then(|b| b.started_ms);
    if now.started_ms.is_some() && now.started_ms != known_start {
        events.push(event("start", config, &[]));
    }
    let known_end = before.and_then(|b| b.finished_ms);
    if now.status == Status::Exited && now.finished_ms.is_some() && now.finished_ms != known_end {
        let code = now.exit_code.unwrap_or(0).to_string();
        events.push(event("die", config, &[("exitCode", code)]));
    }
    events
}

/// `GET /events?until=&filters=`: a stream of JSON events, one a line.
/// Only `type=container` filters are understood.
pub(crate) fn stream(service: std::sync::Arc<Service>, query: &Query) -> Answer {
    if let Some(filters) = query.get("filters").filter(|f| !f.is_empty()) {
        let parsed: Value = serde_json::from_str(filters).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("filters are not JSON: {e}"),
            )
        })?;
        for (kind, values) in parsed.as_object().into_iter().flatten() {
            let container_only = kind == "type"
                && values
                    .as_object()
                    .is_some_and(|v| v.keys().all(|k| k == "container"));
            if !container_only {
                return Err(error(
                    StatusCode::NOT_IMPLEMENTED,
                    format!(
                        "event filter {kind} is not supported by containerization's Docker API \
                         yet (only type=container)"
                    ),
                ));
            }
        }
    }
    let until = query
        .get("until")
        .and_then(|u| u.split('.').next().and_then(|s| s.parse::<u64>().ok()));
    let (sender, response) = streamed(StatusCode::OK, "application/json");
    tokio::spawn(async move {
        let mut seen: HashMap<String, (ContainerConfig, Seen)> = service
            .manager
            .list()
            .unwrap_or_default()
            .into_iter()
            .map(|(config, state)| (config.id.to_string(), (config, Seen::of(&state))))
            .collect();
        loop {
            if until.is_some_and(|until| now_ms() / 1000 >= until) || sender.is_closed() {
                return;
            }
            tokio::time::sleep(EVERY).await;
            let Ok(listed) = service.manager.list() else {
                continue;
            };
            let mut events = Vec::new();
            let mut now = HashMap::new();
            for (config, state) in listed {
                let id = config.id.to_string();
                events.extend(changes(&config, seen.get(&id).map(|(_, s)| s), &state));
                now.insert(id, (config, Seen::of(&state)));
            }
            for (id, (config, last)) in &seen {
                if now.contains_key(id) {
                    continue;
                }
                // Removed before its end was seen (`--rm`, `rm -f`): it died
                // first, with the code the service kept if it removed it. One
                // the service removed after it ended ran, even if it started
                // and ended between two looks.
                let code = super::containers::lock(&service.removed).get(id).copied();
                let ran_unseen = code.is_some() && last.started_ms.is_none();
                if ran_unseen {
                    events.push(event("start", config, &[]));
                }
                if last.running || ran_unseen {
                    let extra: Vec<(&str, String)> = code
                        .map(|c| ("exitCode", c.to_string()))
                        .into_iter()
                        .collect();
                    events.push(event("die", config, &extra));
                }
                events.push(event("destroy", config, &[]));
            }
            seen = now;
            for value in events {
                if sender
                    .send(Bytes::from(format!("{value}\n")))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(response)
}

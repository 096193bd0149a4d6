//! `GET /events`: container events (`create`, `start`, `die`, `destroy`),
//! seen by one watcher reading the containers' records (five times a
//! second while a client listens, once a second otherwise), so those `cctl`
//! makes show too; and image events the service causes (`pull`, `push`,
//! `tag`, `untag`, `delete`). The last 1,000 are kept for `since`; filters
//! are Docker's `type`, `event`, `container`, `image` and `label`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use containerization::{ContainerConfig, ContainerState, Status};
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::Service;
use super::body::{Answer, ApiError, error, streamed};
use super::containers::lock;
use super::query::Query;
use crate::container::list::now_ms;

/// How many past events are kept for `since`.
const KEPT: usize = 1000;

/// The service's events: the recent ones, and a channel to listeners (a
/// clone is the same log).
#[derive(Clone)]
pub(crate) struct EventLog {
    sender: broadcast::Sender<Value>,
    recent: Arc<Mutex<VecDeque<Value>>>,
}

impl EventLog {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(256).0,
            recent: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Keeps `value` and sends it to every listener.
    pub(crate) fn publish(&self, value: Value) {
        let mut recent = lock(&self.recent);
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(value.clone());
        // Sent under the lock: a new listener sees each event once, in
        // the backlog or on the channel.
        let _ = self.sender.send(value);
    }

    /// The kept events and a channel of those to come, with no gap.
    fn subscribe(&self) -> (Vec<Value>, broadcast::Receiver<Value>) {
        let recent = lock(&self.recent);
        (recent.iter().cloned().collect(), self.sender.subscribe())
    }

    fn listened(&self) -> bool {
        self.sender.receiver_count() > 0
    }
}

/// An event in Docker's shape.
fn event(kind: &str, action: &str, id: &str, from: Option<&str>, attributes: Value) -> Value {
    let now = now_ms();
    let mut value = json!({
        "Type": kind,
        "Action": action,
        "Actor": { "ID": id, "Attributes": attributes },
        "scope": "local",
        "status": action,
        "id": id,
        "time": now / 1000,
        "timeNano": u128::from(now) * 1_000_000,
    });
    if let Some(from) = from {
        value["from"] = json!(from);
    }
    value
}

/// A container event: its name, image and labels as attributes.
fn container_event(action: &str, config: &ContainerConfig, extra: &[(&str, String)]) -> Value {
    let mut attributes = serde_json::Map::new();
    attributes.insert("name".to_owned(), json!(config.name));
    attributes.insert("image".to_owned(), json!(config.image));
    for (key, value) in &config.labels {
        attributes.insert(key.clone(), json!(value));
    }
    for (key, value) in extra {
        attributes.insert((*key).to_owned(), json!(value));
    }
    event(
        "container",
        action,
        config.id.as_str(),
        Some(&config.image),
        Value::Object(attributes),
    )
}

/// An image event about `id` (a reference for `pull` and `push`, the
/// image's id for the others), naming `name`.
pub(crate) fn image_event(action: &str, id: &str, name: &str) -> Value {
    event("image", action, id, None, json!({ "name": name }))
}

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

/// What changed from `before` to `now` for one container, as events.
fn changes(config: &ContainerConfig, before: Option<&Seen>, now: &ContainerState) -> Vec<Value> {
    let mut events = Vec::new();
    if before.is_none() {
        events.push(container_event("create", config, &[]));
    }
    let known_start = before.and_then(|b| b.started_ms);
    if now.started_ms.is_some() && now.started_ms != known_start {
        events.push(container_event("start", config, &[]));
    }
    let known_end = before.and_then(|b| b.finished_ms);
    if now.status == Status::Exited && now.finished_ms.is_some() && now.finished_ms != known_end {
        let code = now.exit_code.unwrap_or(0).to_string();
        events.push(container_event("die", config, &[("exitCode", code)]));
    }
    events
}

/// Watches the containers' records for as long as the service runs,
/// publishing what changed.
pub(crate) async fn watch(service: Arc<Service>) {
    let mut seen: HashMap<String, (ContainerConfig, Seen)> = service
        .manager
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|(config, state)| (config.id.to_string(), (config, Seen::of(&state))))
        .collect();
    loop {
        let every = match service.events.listened() {
            true => Duration::from_millis(200),
            false => Duration::from_secs(1),
        };
        tokio::time::sleep(every).await;
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
            let code = lock(&service.removed).get(id).copied();
            let ran_unseen = code.is_some() && last.started_ms.is_none();
            if ran_unseen {
                events.push(container_event("start", config, &[]));
            }
            if last.running || ran_unseen {
                let extra: Vec<(&str, String)> = code
                    .map(|c| ("exitCode", c.to_string()))
                    .into_iter()
                    .collect();
                events.push(container_event("die", config, &extra));
            }
            events.push(container_event("destroy", config, &[]));
        }
        seen = now;
        for value in events {
            service.events.publish(value);
        }
    }
}

/// Docker's event filters: kinds all match, values of one kind any.
struct Filters(HashMap<String, Vec<String>>);

impl Filters {
    fn parse(query: &Query) -> Result<Self, ApiError> {
        let mut kinds: HashMap<String, Vec<String>> = HashMap::new();
        for (kind, value) in query
            .filters()
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))?
        {
            if !matches!(
                kind.as_str(),
                "type" | "event" | "container" | "image" | "label"
            ) {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "invalid filter '{kind}': events are filtered by type, event, \
                         container, image and label here"
                    ),
                ));
            }
            kinds.entry(kind).or_default().push(value);
        }
        Ok(Self(kinds))
    }

    fn admits(&self, value: &Value) -> bool {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let kind = text(&value["Type"]);
        let id = text(&value["Actor"]["ID"]);
        let attributes = &value["Actor"]["Attributes"];
        let name = text(&attributes["name"]);
        self.0.iter().all(|(filter, wanted)| {
            wanted.iter().any(|w| match filter.as_str() {
                "type" => kind == *w,
                "event" => text(&value["Action"]) == *w,
                "container" => kind == "container" && (id.starts_with(w.as_str()) || name == *w),
                "image" => match kind.as_str() {
                    "image" => id == *w || name == *w,
                    _ => text(&attributes["image"]) == *w,
                },
                _ => match w.split_once('=') {
                    Some((key, v)) => text(&attributes[key]) == v,
                    None => !attributes[w.as_str()].is_null(),
                },
            })
        })
    }
}

/// `GET /events?since=&until=&filters=`: a stream of JSON events, one a
/// line: the kept ones from `since` on (when given), then new ones until
/// `until` (when given).
pub(crate) fn stream(service: Arc<Service>, query: &Query) -> Answer {
    let filters = Filters::parse(query)?;
    let time = |name: &str| {
        query
            .time_ns(name)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))
    };
    let since = time("since")?;
    let until = time("until")?;
    let (backlog, mut receiver) = service.events.subscribe();
    let (sender, response) = streamed(StatusCode::OK, "application/json");
    let at = |value: &Value| value["timeNano"].as_u64().unwrap_or(0);
    let in_time = move |value: &Value| until.is_none_or(|until| at(value) <= until);
    tokio::spawn(async move {
        let send = |value: &Value| Bytes::from(format!("{value}\n"));
        if let Some(since) = since {
            for value in backlog.iter().filter(|v| at(v) >= since && in_time(v)) {
                if filters.admits(value) && sender.send(send(value)).await.is_err() {
                    return;
                }
            }
        }
        let now_ns = || now_ms().saturating_mul(1_000_000);
        loop {
            let left = until.map(|until| Duration::from_nanos(until.saturating_sub(now_ns())));
            if left.is_some_and(|left| left.is_zero()) {
                return;
            }
            let next = tokio::select! {
                next = receiver.recv() => next,
                () = tokio::time::sleep(left.unwrap_or(Duration::from_secs(3600))) => continue,
                () = sender.closed() => return,
            };
            match next {
                Ok(value) => {
                    if in_time(&value)
                        && filters.admits(&value)
                        && sender.send(send(&value)).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(text: &str) -> Filters {
        let encoded: String = text
            .bytes()
            .map(|b| match b {
                b'{' | b'}' | b'"' | b'[' | b']' | b':' | b',' | b'=' => format!("%{b:02X}"),
                other => char::from(other).to_string(),
            })
            .collect();
        Filters::parse(&Query::parse(Some(&format!("filters={encoded}")))).unwrap()
    }

    #[test]
    fn filters_match_as_dockers() {
        let started = event(
            "container",
            "start",
            "abc123",
            Some("busybox"),
            json!({ "name": "web", "image": "busybox", "tier": "front" }),
        );
        let pulled = image_event("pull", "busybox:1", "busybox");
        assert!(filters(r#"{"type":["container"]}"#).admits(&started));
        assert!(!filters(r#"{"type":["container"]}"#).admits(&pulled));
        assert!(filters(r#"{"event":["die","start"]}"#).admits(&started));
        assert!(filters(r#"{"container":["web"]}"#).admits(&started));
        assert!(filters(r#"{"container":["abc"]}"#).admits(&started));
        assert!(!filters(r#"{"container":["db"]}"#).admits(&started));
        assert!(filters(r#"{"image":["busybox"]}"#).admits(&pulled));
        assert!(filters(r#"{"label":["tier=front"]}"#).admits(&started));
        assert!(filters(r#"{"label":["tier"],"type":["container"]}"#).admits(&started));
        assert!(!filters(r#"{"label":["tier=back"]}"#).admits(&started));
        let bad = Filters::parse(&Query::parse(Some(
            "filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
        )));
        assert!(bad.is_err());
    }
}

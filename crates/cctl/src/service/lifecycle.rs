//! A container's life through the API: start (under a monitor, as `cctl
//! start`), wait, stop, kill, restart, rename, resize, remove and prune;
//! and the service's own removal of `AutoRemove` containers once they
//! ended.

use std::sync::Arc;
use std::time::Duration;

use containerization::{Error, Status};
use hyper::StatusCode;
use serde_json::json;

use super::Service;
use super::body::{Answer, error, from_error, json, nothing, streamed};
use super::containers::{bad, find, lock, running, settled};
use super::query::Query;
use crate::container::list::now_ms;

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
                // `--rm` takes its anonymous volumes too, as Docker's does.
                if let Err(e) = service.manager.remove_with_volumes(&id, true, true).await {
                    tracing::warn!(id, "cannot remove an ended container: {e}");
                }
                super::exec::forget_container(&service, &id);
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
    super::exec::forget_container(service, &full);
    Ok(nothing(StatusCode::NO_CONTENT))
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
            super::exec::forget_container(service, config.id.as_str());
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

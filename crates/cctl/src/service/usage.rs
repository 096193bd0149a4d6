//! What a running container uses and runs: stats (one sample or a stream)
//! and top (`ps` in its VM).

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, error, from_error, json, streamed};
use super::containers::{find, running};
use super::query::Query;
use crate::container::list::now_ms;

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
    if config.network != containerization::NetworkMode::None {
        shown["networks"] = json!({
            "eth0": {
                "rx_bytes": stats.net_rx_bytes,
                "rx_packets": stats.net_rx_packets,
                "rx_errors": 0,
                "rx_dropped": 0,
                "tx_bytes": stats.net_tx_bytes,
                "tx_packets": stats.net_tx_packets,
                "tx_errors": 0,
                "tx_dropped": 0,
            }
        });
    }
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

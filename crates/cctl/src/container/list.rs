//! `cctl ls`, `cctl inspect` and `cctl stats`.

use std::time::Duration;

use clap::Args;
use containerization::spec::{guest_share_path, guest_volume_path};
use containerization::{
    ContainerConfig, ContainerManager, ContainerState, DamagedContainer, Found, LinuxContainer,
    Status,
};
use serde_json::json;

/// `cctl ls`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show every container, not only running ones.
    #[arg(short, long)]
    all: bool,
    /// Print ids only.
    #[arg(short, long)]
    quiet: bool,
    /// Show only containers that match (`label=KEY[=VALUE]`, `name=TEXT`,
    /// `id=PREFIX`, `status=created|running|exited`), as Docker's `ps`:
    /// every label filter must match, and one of each other kind given.
    #[arg(short, long, value_name = "KIND=VALUE", value_parser = Filter::parse)]
    filter: Vec<Filter>,
    /// `table`, `json` (an object a line) or a template of Docker's fields
    /// (`{{.Names}} {{.Status}}`, `{{.Label "key"}}`; `table TEMPLATE` for
    /// a header row).
    #[arg(long, default_value = "table", value_parser = str::parse::<crate::format::Shape>)]
    format: crate::format::Shape,
}

/// One `--filter` of `ls` (and of the Docker API's list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `label=KEY` or `label=KEY=VALUE`.
    Label(String, Option<String>),
    /// `name=TEXT`: the name contains it.
    Name(String),
    /// `id=PREFIX`.
    Id(String),
    /// `status=created|running|exited`.
    Status(String),
}

impl Filter {
    /// Parses `KIND=VALUE`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, value) = text.split_once('=').ok_or_else(|| {
            format!("filter {text:?}: KIND=VALUE, such as label=app or status=running")
        })?;
        match kind {
            "label" => Ok(match value.split_once('=') {
                Some((key, wanted)) => Self::Label(key.to_owned(), Some(wanted.to_owned())),
                None => Self::Label(value.to_owned(), None),
            }),
            "name" => Ok(Self::Name(value.trim_start_matches('/').to_owned())),
            "id" => Ok(Self::Id(value.to_owned())),
            "status" if matches!(value, "created" | "running" | "exited") => {
                Ok(Self::Status(value.to_owned()))
            }
            "status" => Err(format!(
                "filter {text:?}: status is created, running or exited"
            )),
            _ => Err(format!(
                "filter {text:?}: filters are label, name, id and status"
            )),
        }
    }

    /// Whether a container of `config` in `state` passes it.
    pub fn admits(&self, config: &ContainerConfig, state: &ContainerState) -> bool {
        match self {
            Self::Label(key, wanted) => config
                .labels
                .get(key)
                .is_some_and(|value| wanted.as_ref().is_none_or(|w| w == value)),
            Self::Name(text) => config.name.contains(text.as_str()),
            Self::Id(prefix) => config.id.as_str().starts_with(prefix.as_str()),
            Self::Status(status) => docker_status(state) == status,
        }
    }
}

/// Docker's word for where a container is: created, running or exited.
pub(crate) fn docker_status(state: &ContainerState) -> &'static str {
    match state.status {
        _ if state.is_running() => "running",
        Status::Created => "created",
        _ => "exited",
    }
}

/// Whether `filters` admit a container, as Docker's `ps` filters: every
/// label filter matches, and one filter of each other kind given.
pub(crate) fn admitted(
    filters: &[Filter],
    config: &ContainerConfig,
    state: &ContainerState,
) -> bool {
    // Every label filter must match (Compose asks for its project's and
    // `oneoff=True` at once); of the other kinds, any one of a kind.
    let labels = filters
        .iter()
        .filter(|f| matches!(f, Filter::Label(..)))
        .all(|f| f.admits(config, state));
    let kinds = [
        |f: &Filter| matches!(f, Filter::Name(_)),
        |f: &Filter| matches!(f, Filter::Id(_)),
        |f: &Filter| matches!(f, Filter::Status(_)),
    ];
    labels
        && kinds.iter().all(|of_kind| {
            let mut given = filters.iter().filter(|f| of_kind(f)).peekable();
            given.peek().is_none() || given.any(|f| f.admits(config, state))
        })
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// "5 seconds", "3 minutes", "2 hours", "4 days".
pub(crate) fn ago(ms: u64) -> String {
    let seconds = now_ms().saturating_sub(ms) / 1000;
    let (n, unit) = match seconds {
        0..60 => (seconds, "second"),
        60..3600 => (seconds / 60, "minute"),
        3600..86400 => (seconds / 3600, "hour"),
        _ => (seconds / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Docker's STATUS column.
pub(crate) fn status_text(state: &ContainerState) -> String {
    let running = state.is_running();
    match state.status {
        Status::Running if running => {
            format!("Up {}", ago(state.started_ms.unwrap_or_else(now_ms)))
        }
        Status::Starting if running => "Starting".to_owned(),
        Status::Created => "Created".to_owned(),
        _ => format!(
            "Exited ({}) {} ago",
            state.exit_code.unwrap_or(137),
            ago(state.finished_ms.unwrap_or_else(now_ms))
        ),
    }
}

pub(crate) fn command_text(config: &ContainerConfig) -> String {
    let args: Vec<&str> = config.spec["process"]["args"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut text = args.join(" ");
    if text.chars().count() > 20 {
        text = text.chars().take(19).collect::<String>() + "…";
    }
    format!("\"{text}\"")
}

/// Prints the table of containers.
pub fn list(manager: &ContainerManager, args: &ListArgs) -> anyhow::Result<i32> {
    let rows: Vec<_> = manager
        .list()?
        .into_iter()
        .filter(|(config, state)| {
            // A status filter shows stopped ones too, as Docker's.
            let by_status = args.filter.iter().any(|f| matches!(f, Filter::Status(_)));
            (args.all || by_status || state.is_running()) && admitted(&args.filter, config, state)
        })
        .collect();
    // Docker lists dead containers with --all only (and no filter).
    let damaged = if args.all && args.filter.is_empty() {
        manager.list_damaged()?
    } else {
        Vec::new()
    };
    if args.quiet {
        for (config, _) in rows {
            println!("{}", short(config.id.as_str()));
        }
        for dead in damaged {
            println!("{}", short(dead.id.as_str()));
        }
        return Ok(0);
    }
    let pods: std::collections::HashMap<_, _> = manager
        .list_pods()?
        .into_iter()
        .map(|(pod, _)| (pod.id, pod.name))
        .collect();
    let mut shown = Vec::new();
    for (config, state) in &rows {
        let address = match (&state.address, state.is_running()) {
            (Some(address), true) => address.to_string(),
            _ => String::new(),
        };
        let pod = config
            .pod
            .as_ref()
            .map(|id| {
                pods.get(id)
                    .map_or_else(|| short(id.as_str()), String::as_str)
            })
            .unwrap_or_default();
        shown.push(row(
            Some(config),
            config.id.as_str(),
            &status_text(state),
            docker_status(state),
            &address,
            pod,
        ));
    }
    for dead in &damaged {
        shown.push(row(
            dead.config.as_ref(),
            dead.id.as_str(),
            "Dead",
            "dead",
            "",
            "",
        ));
    }
    crate::format::print(
        &args.format,
        &shown,
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Address}}\t{{.Ports}}\t{{.Pod}}\t{{.Names}}",
        &[("ID", "CONTAINER ID"), ("RunningFor", "CREATED")],
    )
    .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    Ok(0)
}

/// One container as `ls` shows it, in Docker's field names (`docker ps
/// --format`), with its address and pod.
fn row(
    config: Option<&ContainerConfig>,
    id: &str,
    status: &str,
    state: &str,
    address: &str,
    pod: &str,
) -> crate::format::Row {
    let mut row = crate::format::Row::new();
    let mut put = |key: &str, value: serde_json::Value| {
        row.insert(key.to_owned(), value);
    };
    put("ID", short(id).into());
    put("Image", config.map_or("?", |c| c.image.as_str()).into());
    put(
        "Command",
        config.map(command_text).unwrap_or_default().into(),
    );
    put(
        "CreatedAt",
        config
            .map(|c| {
                let (y, mo, d, h, mi, s) =
                    crate::clock::civil(i64::try_from(c.created_ms / 1000).unwrap_or(0));
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
            })
            .unwrap_or_default()
            .into(),
    );
    put(
        "RunningFor",
        config
            .map(|c| format!("{} ago", ago(c.created_ms)))
            .unwrap_or_default()
            .into(),
    );
    put("Status", status.into());
    put("State", state.into());
    let ports: Vec<String> = config
        .map(|c| c.ports.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    put("Ports", ports.join(", ").into());
    put("Address", address.into());
    put("Pod", pod.into());
    put("Names", config.map_or("", |c| c.name.as_str()).into());
    let labels: Vec<String> = config
        .map(|c| c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .unwrap_or_default();
    put("Labels", labels.join(",").into());
    put(
        "Networks",
        config
            .map(|c| match &c.network {
                containerization::NetworkMode::None => "none".to_owned(),
                containerization::NetworkMode::Network(_) => {
                    let names: Vec<&str> = c.joined_networks().iter().map(|(n, _)| *n).collect();
                    names.join(",")
                }
            })
            .unwrap_or_default()
            .into(),
    );
    put(
        crate::format::LABELS,
        config.map_or(json!({}), |c| json!(c.labels)),
    );
    row
}

/// The first 12 digits of an id, as Docker shows it.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// What `inspect` says of a container whose records cannot be read.
fn inspect_damaged(dead: &DamagedContainer) -> serde_json::Value {
    json!({
        "Id": dead.id,
        "Name": dead.config.as_ref().map(|c| c.name.clone()),
        "Image": dead.config.as_ref().map(|c| c.image.clone()),
        "State": {
            "Status": "dead",
            "Running": false,
            "Dead": true,
            "Error": dead.problem,
        },
    })
}

/// Prints containers as Docker-like JSON.
pub fn inspect(manager: &ContainerManager, names: &[String]) -> anyhow::Result<i32> {
    let mut all = Vec::new();
    for name in names {
        match manager.find(name)? {
            Found::Container(container) => all.push(inspect_value(&container)?),
            Found::Damaged(dead) => all.push(inspect_damaged(&dead)),
        }
    }
    println!("{}", serde_json::to_string_pretty(&all)?);
    Ok(0)
}

/// One container as `inspect` shows it (Docker's shape, with ours added).
pub fn inspect_value(container: &LinuxContainer) -> anyhow::Result<serde_json::Value> {
    {
        let config = container.config();
        let state = container.state()?;
        let alive = state.is_running();
        let running = alive && state.status == Status::Running;
        Ok(json!({
            "Id": config.id,
            "Name": config.name,
            // Podman's: the pod's id, empty for a container of its own.
            "Pod": config.pod.as_ref().map_or("", |id| id.as_str()),
            "Created": crate::clock::rfc3339_millis(Some(config.created_ms)),
            "Image": config.image,
            "ImageManifest": config.manifest,
            // Docker's `Platform` is the OS alone; the architecture is ours.
            "Platform": config.platform.as_ref().map_or("linux".to_owned(), |p| p.os.clone()),
            "ImagePlatform": config.platform.as_ref().map(ToString::to_string),
            // Docker's volume and bind mounts; tmpfs mounts are in the spec.
            "Mounts": config.volumes.iter().enumerate().map(|(i, v)| json!({
                "Type": "volume",
                "Name": v.name,
                "Destination": mount_destination(&config.spec, &guest_volume_path(i)),
                "RW": !v.read_only,
                "Anonymous": v.anonymous,
            })).chain(config.binds.iter().enumerate().map(|(i, b)| json!({
                "Type": "bind",
                "Source": b.source,
                "Destination": mount_destination(&config.spec, &guest_share_path(i)),
                "RW": !b.read_only,
            }))).collect::<Vec<_>>(),
            "State": {
                "Status": match state.status {
                    Status::Running | Status::Starting if !alive => "exited".to_owned(),
                    status => status.to_string(),
                },
                "Running": running,
                "OOMKilled": state.oom_killed,
                "ExitCode": state.exit_code,
                "Error": state.error,
                "StartedAt": crate::clock::rfc3339_millis(state.started_ms),
                "FinishedAt": crate::clock::rfc3339_millis(state.finished_ms),
                "OwnerPid": state.owner_pid,
            },
            "Config": {
                "Labels": config.labels,
                "Hostname": config.spec["hostname"],
                "Cmd": config.spec["process"]["args"],
                "Env": config.spec["process"]["env"],
                "WorkingDir": config.spec["process"]["cwd"],
                "User": config.spec["process"]["user"],
                "Tty": config.terminal,
                "OpenStdin": config.interactive,
                "StopSignal": config.stop_signal,
            },
            "RestartCount": state.restart_count,
            "HostConfig": {
                "RestartPolicy": {
                    "Name": config.restart.name(),
                    "MaximumRetryCount": config.restart.max_retries(),
                },
                "AutoRemove": config.auto_remove,
                "ReadonlyRootfs": config.read_only,
                "Memory": config.spec["linux"]["resources"]["memory"]["limit"],
                "VmMemoryMiB": config.vm_memory_mib,
                "VmCpus": config.vcpus,
                "Kernel": config.kernel,
                "Dns": config.dns,
                "NetworkMode": match &config.pod {
                    Some(pod) => json!(format!("pod:{pod}")),
                    None => json!(config.network),
                },
                "PortBindings": config.ports.iter().map(ToString::to_string).collect::<Vec<_>>(),
            },
            "NetworkSettings": {
                "IPAddress": if running { state.address.map(|a| a.to_string()) } else { None },
                "Tap": if running { state.tap.clone() } else { None },
                // Each network it joins, its first first.
                "Networks": config.joined_networks().into_iter().map(|(name, aliases)| (
                    name.to_owned(),
                    json!({
                        "Aliases": aliases,
                        "IPAddress": state
                            .address_on(config, name)
                            .filter(|_| running)
                            .map(|a| a.to_string()),
                    }),
                )).collect::<serde_json::Map<_, _>>(),
            },
        }))
    }
}

/// Prints a table of resource use, once or every second.
pub async fn stats(
    manager: &ContainerManager,
    names: &[String],
    once: bool,
) -> anyhow::Result<i32> {
    let containers = if names.is_empty() {
        manager
            .list()?
            .into_iter()
            .filter(|(_, state)| state.is_running())
            .map(|(config, _)| manager.get(config.id.as_str()))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        names
            .iter()
            .map(|name| manager.get(name))
            .collect::<Result<Vec<_>, _>>()?
    };
    // CPU % is a rate: the CPU time used between two samples over the time
    // between them (100% is one whole CPU, as Docker shows it). The first
    // table, `--no-stream`'s only one, needs a sample taken before it too.
    let mut previous = Vec::with_capacity(containers.len());
    for container in &containers {
        let s = container.statistics().await?;
        previous.push((s.cpu_usage_usec, std::time::Instant::now()));
    }
    loop {
        tokio::time::sleep(SAMPLE_INTERVAL).await;
        println!(
            "{:<12}  {:<20}  {:>7}  {:>22}  {:>5}  {:>21}  {:>21}",
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS", "NET I/O", "BLOCK I/O"
        );
        for (container, last) in containers.iter().zip(previous.iter_mut()) {
            let s = container.statistics().await?;
            let now = std::time::Instant::now();
            let cpu = cpu_percent(*last, (s.cpu_usage_usec, now));
            *last = (s.cpu_usage_usec, now);
            let limit = if s.memory_limit_bytes == 0 || s.memory_limit_bytes == u64::MAX {
                "-".to_owned()
            } else {
                crate::image::bytes(s.memory_limit_bytes)
            };
            println!(
                "{:<12}  {:<20}  {:>6.2}%  {:>22}  {:>5}  {:>21}  {:>21}",
                short(container.id().as_str()),
                container.config().name,
                cpu,
                format!("{} / {limit}", crate::image::bytes(s.memory_current_bytes)),
                s.pids_current,
                format!(
                    "{} / {}",
                    crate::image::bytes(s.net_rx_bytes),
                    crate::image::bytes(s.net_tx_bytes)
                ),
                format!(
                    "{} / {}",
                    crate::image::bytes(s.io_read_bytes),
                    crate::image::bytes(s.io_write_bytes)
                ),
            );
        }
        if once {
            return Ok(0);
        }
    }
}

/// How long `stats` waits between two samples of a container.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// The CPU use between two samples of (CPU microseconds, when), in percent
/// of one CPU.
fn cpu_percent(
    (before_usec, before): (u64, std::time::Instant),
    (after_usec, after): (u64, std::time::Instant),
) -> f64 {
    let wall = after.duration_since(before).as_micros().max(1) as f64;
    100.0 * after_usec.saturating_sub(before_usec) as f64 / wall
}

/// Where the container's `index`th volume is mounted, from its spec.
/// Where the spec binds the guest path `source` (or a file in it) from.
fn mount_destination(spec: &serde_json::Value, source: &str) -> serde_json::Value {
    let inside = format!("{source}/");
    spec["mounts"]
        .as_array()
        .and_then(|mounts| {
            mounts.iter().find(|m| {
                m["source"] == source
                    || m["source"].as_str().is_some_and(|s| s.starts_with(&inside))
            })
        })
        .map(|m| m["destination"].clone())
        .unwrap_or(serde_json::Value::Null)
}

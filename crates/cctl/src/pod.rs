//! `cctl pod`: several containers in one VM. `pod create` makes a pod and
//! starts its VM under an owner process (`cctl pod __owner ID`, in its own
//! process group, like a detached container's monitor); `cctl run --pod`
//! adds containers to it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use containerization::pod::{LinuxPod, PodOptions, PodStatus};
use containerization::{ContainerManager, NetworkMode, StateRoot};
use serde_json::json;

use crate::container::flags::{PortFlag, parse_cpus, parse_memory};
use crate::container::run::{termination_signals, told_to_go};

/// The pod commands.
#[derive(Debug, Subcommand)]
pub enum PodCommand {
    /// Make a pod and start its VM; print its id.
    Create(CreateArgs),
    /// Start stopped pods' VMs.
    Start {
        /// Pods (names or ids).
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// List pods.
    #[command(alias = "ps")]
    Ls {
        /// Print ids only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print pods' configuration, state and containers as JSON.
    Inspect {
        /// Pods.
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Stop pods: each container's stop signal, SIGKILL after a timeout,
    /// then the VM.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        /// Pods.
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Remove pods and their containers.
    Rm {
        /// Stop a running pod first.
        #[arg(short, long)]
        force: bool,
        /// Pods.
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// The owner of a pod's VM (internal).
    #[command(name = "__owner", hide = true)]
    Owner {
        /// The pod's id.
        id: String,
    },
}

/// `cctl pod create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name for the pod.
    #[arg(long)]
    name: Option<String>,
    /// The hostname its containers share (the pod's name by default).
    #[arg(long)]
    hostname: Option<String>,
    /// The network: a name from `cctl network ls`, or none.
    #[arg(long)]
    network: Option<String>,
    /// Publish a port of the pod: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp].
    #[arg(short, long = "publish", value_name = "PORT")]
    publish: Vec<PortFlag>,
    /// A DNS server for its containers (instead of the host's).
    #[arg(long)]
    dns: Vec<std::net::IpAddr>,
    /// The guest kernel, by catalogue name (`cctl kernel ls`).
    #[arg(long)]
    kernel: Option<String>,
    /// CPUs of its VM.
    #[arg(long, value_parser = parse_cpus, allow_negative_numbers = true)]
    cpus: Option<f64>,
    /// Memory its containers share, such as 1g (its VM gets this plus room
    /// for the guest kernel).
    #[arg(short, long, value_parser = parse_memory, allow_hyphen_values = true)]
    memory: Option<u64>,
}

impl PodCommand {
    /// Runs the command.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let vminitd = match matches!(self, Self::Owner { .. }) {
            true => root.find_vminitd()?,
            false => root.tools_bin().join("vminitd"),
        };
        let manager = ContainerManager::new(root.clone(), vminitd);
        let result = runtime.block_on(self.run_async(&manager));
        runtime.shutdown_timeout(Duration::from_millis(100));
        result
    }

    async fn run_async(self, manager: &ContainerManager) -> anyhow::Result<()> {
        if !matches!(self, Self::Owner { .. }) {
            manager.reap_stale().await?;
        }
        match self {
            Self::Create(args) => {
                let ports = args
                    .publish
                    .iter()
                    .map(PortFlag::resolve)
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let network = match args.network.as_deref() {
                    None => None,
                    Some("none") => Some(NetworkMode::None),
                    Some(name) => Some(NetworkMode::Network(name.to_owned())),
                };
                let pod = manager
                    .create_pod(PodOptions {
                        name: args.name,
                        hostname: args.hostname,
                        network,
                        ports,
                        dns: args.dns,
                        kernel: args.kernel,
                        cpus: args.cpus,
                        memory_bytes: args.memory,
                    })
                    .await?;
                start_owner(&pod).await?;
                println!("{}", pod.id());
            }
            Self::Start { pods } => {
                for name in pods {
                    let pod = manager.get_pod(&name)?;
                    if !pod.state()?.is_running() {
                        start_owner(&pod).await?;
                    }
                    println!("{name}");
                }
            }
            Self::Ls { quiet } => list(manager, quiet)?,
            Self::Inspect { pods } => inspect(manager, &pods)?,
            Self::Stop { time, pods } => {
                for name in pods {
                    manager
                        .get_pod(&name)?
                        .stop(Duration::from_secs(time))
                        .await?;
                    println!("{name}");
                }
            }
            Self::Rm { force, pods } => {
                for name in pods {
                    manager.get_pod(&name)?.delete(force).await?;
                    println!("{name}");
                }
            }
            Self::Owner { id } => {
                let pod = manager.get_pod(&id)?;
                let mut watched = termination_signals();
                pod.run(async move {
                    let signal = told_to_go(&mut watched).await;
                    tracing::debug!(signal, "the pod's owner was told to go");
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// Starts `pod`'s owner and returns once its VM runs; its error if it
/// could not start.
async fn start_owner(pod: &LinuxPod) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find cctl's own path")?;
    let log = pod.owner_log();
    let stderr =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["pod", "__owner", pod.id().as_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let before = pod.state()?;
    let mut owner = command.spawn().context("cannot start the pod's owner")?;
    loop {
        let state = pod.state()?;
        match state.status {
            PodStatus::Running if state.is_running() => return Ok(()),
            PodStatus::Stopped if state.finished_ms != before.finished_ms => {
                let _ = owner.wait();
                anyhow::bail!(
                    "pod {} could not start: {}",
                    pod.config().name,
                    state
                        .error
                        .unwrap_or_else(|| "its owner stopped".to_owned())
                );
            }
            _ => {}
        }
        if let Some(status) = owner.try_wait()? {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::bail!("the pod's owner exited ({status}) before its VM ran: {log}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn list(manager: &ContainerManager, quiet: bool) -> anyhow::Result<()> {
    let pods = manager.list_pods()?;
    let containers = manager.list()?;
    if quiet {
        for (config, _) in pods {
            println!("{}", &config.id.as_str()[..12]);
        }
        return Ok(());
    }
    println!(
        "{:<12}  {:<20}  {:<10}  {:<16}  {:<10}  CREATED",
        "POD ID", "NAME", "STATUS", "ADDRESS", "CONTAINERS"
    );
    for (config, state) in pods {
        let count = containers
            .iter()
            .filter(|(c, _)| c.pod.as_ref() == Some(&config.id))
            .count();
        let address = match (state.address, state.is_running()) {
            (Some(address), true) => address.to_string(),
            _ => String::new(),
        };
        println!(
            "{:<12}  {:<20}  {:<10}  {:<16}  {:<10}  {}",
            &config.id.as_str()[..12],
            config.name,
            state.status.to_string(),
            address,
            count,
            crate::clock::rfc3339_millis(Some(config.created_ms))
        );
    }
    Ok(())
}

fn inspect(manager: &ContainerManager, names: &[String]) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for name in names {
        let pod = manager.get_pod(name)?;
        let state = pod.state()?;
        let containers: Vec<_> = pod
            .containers()?
            .into_iter()
            .map(|(config, state)| {
                json!({
                    "Id": config.id,
                    "Name": config.name,
                    "State": match state.is_running() {
                        true => "running".to_owned(),
                        false if state.status == containerization::Status::Created => "created".to_owned(),
                        false => "exited".to_owned(),
                    },
                })
            })
            .collect();
        all.push(json!({
            "Id": pod.id(),
            "Name": pod.config().name,
            "Hostname": pod.config().hostname,
            "Created": crate::clock::rfc3339_millis(Some(pod.config().created_ms)),
            "State": state.status.to_string(),
            "Error": state.error,
            "OwnerPid": state.owner_pid,
            "NetworkMode": pod.config().network,
            "IPAddress": if state.is_running() { state.address.map(|a| a.to_string()) } else { None },
            "Tap": if state.is_running() { state.tap.clone() } else { None },
            "PortBindings": pod.config().ports.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "VmCpus": pod.config().vcpus,
            "VmMemoryMiB": pod.config().vm_memory_mib,
            "Kernel": pod.config().kernel,
            "Containers": containers,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&all)?);
    Ok(())
}

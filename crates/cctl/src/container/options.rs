//! The flags `cctl run` and `cctl create` share, as Docker spells them, and
//! how they become a container's [`CreateOptions`].

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use containerization::{CreateOptions, NetworkJoin, NetworkMode, StateRoot, spec};
use containerization_oci::Reference;
use containerization_oci::registry::PullPlan;
use containerization_oci::store::{BlobFollower, ImageStore};

use super::flags::{PortFlag, parse_cpus, parse_memory};
use crate::image::{PlatformOptions, RegistryOptions, progress::Progress, store_name};

/// `--tmpfs`, parsed as it is read, so a bad one ends the command with 125.
fn parse_tmpfs(flag: &str) -> Result<spec::Mount, String> {
    spec::Mount::parse_tmpfs_flag(flag).map_err(|e| e.to_string())
}

/// `-v`, parsed as it is read.
fn parse_volume(flag: &str) -> Result<spec::Mount, String> {
    spec::Mount::parse_volume_flag(flag).map_err(|e| e.to_string())
}

/// `--restart`, parsed as it is read.
fn parse_restart(flag: &str) -> Result<containerization::RestartPolicy, String> {
    flag.parse()
        .map_err(|e: containerization::Error| e.to_string())
}

/// `--mount`, parsed as it is read.
fn parse_mount(flag: &str) -> Result<spec::Mount, String> {
    spec::Mount::parse_mount_flag(flag).map_err(|e| e.to_string())
}

/// `--label` flags as a map: `KEY=VALUE`, or `KEY` for an empty value, as
/// Docker reads them; an empty key is refused.
pub fn labels(flags: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    flags
        .iter()
        .map(|flag| {
            let (key, value) = flag.split_once('=').unwrap_or((flag, ""));
            anyhow::ensure!(
                !key.trim().is_empty(),
                "--label {flag:?}: a label needs a key (KEY=VALUE)"
            );
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// When to pull the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull only when the image store does not have it.
    Missing,
    /// Always pull first.
    Always,
    /// Never pull; fail when the store does not have it.
    Never,
}

/// The flags of `cctl create` (and `cctl run`).
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Keep standard input open and feed it to the container.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// A name for the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Another name the container answers to on its network (containers
    /// started after it there find it by it, as by its name).
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// When to start the container's process again after it exits: no,
    /// on-failure[:N], always, unless-stopped (detached containers).
    #[arg(long, default_value = "no", value_parser = parse_restart)]
    pub restart: containerization::RestartPolicy,
    /// Set a label on the container (KEY=VALUE, or KEY for an empty value).
    #[arg(short, long = "label", value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to take this shell's).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (one KEY=VALUE per line).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// The working directory in the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// The user to run as: name, uid, name:group or uid:gid.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Replace the image's entrypoint ("" clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// CPUs for the container (its VM gets as many whole CPUs).
    #[arg(long, value_parser = parse_cpus, allow_negative_numbers = true)]
    pub cpus: Option<f64>,
    /// Memory limit, such as 512m or 1g (its VM gets this plus room for the
    /// guest kernel).
    #[arg(short, long, value_parser = parse_memory, allow_hyphen_values = true)]
    pub memory: Option<u64>,
    /// The network: a name from `cctl network ls`, or none. Given again,
    /// a further network with a card of its own (the default route stays on
    /// the first), as Podman's repeated --network.
    #[arg(long)]
    pub network: Vec<String>,
    /// Publish a port: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], or
    /// CONTAINER_PORT[/tcp|/udp] for a free host port.
    #[arg(short, long = "publish", value_name = "PORT")]
    pub publish: Vec<PortFlag>,
    /// Mount the root file system read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Mount a host path or a named volume: HOST-PATH:PATH[:ro|rw] (a
    /// missing host folder is made), NAME:PATH[:ro|rw] (a volume, made on
    /// first use) or PATH (an anonymous volume).
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:PATH[:MODE]", value_parser = parse_volume)]
    pub volume: Vec<spec::Mount>,
    /// Mount a tmpfs: PATH[:size=SIZE,mode=MODE,ro,noexec].
    #[arg(long, value_name = "PATH[:OPTIONS]", value_parser = parse_tmpfs)]
    pub tmpfs: Vec<spec::Mount>,
    /// Mount something: type=bind|volume|tmpfs,[source=SOURCE,]target=PATH[,readonly]
    /// (tmpfs also takes tmpfs-size=SIZE,tmpfs-mode=MODE).
    #[arg(long, value_name = "FIELDS", value_parser = parse_mount)]
    pub mount: Vec<spec::Mount>,
    /// A DNS server for the container (instead of the host's).
    #[arg(long)]
    pub dns: Vec<IpAddr>,
    /// The container's hostname (the first 12 digits of its id by default).
    #[arg(long)]
    pub hostname: Option<String>,
    /// The guest kernel, by catalogue name (`cctl kernel ls`).
    #[arg(long)]
    pub kernel: Option<String>,
    /// Run it in this pod's VM (`cctl pod create`), sharing its network.
    #[arg(long)]
    pub pod: Option<String>,
    #[command(flatten)]
    pub platform: PlatformOptions,
    /// When to pull the image.
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,
    #[command(flatten)]
    pub registry: RegistryOptions,
    /// The image.
    pub image: String,
    /// The command and its arguments (the image's Cmd by default).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl CreateArgs {
    /// The container's options, the image pulled as the policy says.
    pub async fn options(&self, root: &StateRoot) -> anyhow::Result<CreateOptions> {
        let image = self.ensure_image(root).await?;
        let memory_bytes = self.memory;
        let ports = self
            .publish
            .iter()
            .map(PortFlag::resolve)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let network = match self.network.first().map(String::as_str) {
            None => None,
            Some("none") => Some(NetworkMode::None),
            Some(name) => Some(NetworkMode::Network(name.to_owned())),
        };
        let more_networks = self
            .network
            .iter()
            .skip(1)
            .map(|name| NetworkJoin {
                name: name.clone(),
                aliases: Vec::new(),
            })
            .collect();
        Ok(CreateOptions {
            image,
            platform: Some(self.platform.platform()?),
            name: self.name.clone(),
            container: spec::ContainerOptions {
                hostname: self.hostname.clone().unwrap_or_default(),
                read_only: self.read_only,
                memory_bytes,
                cpus: self.cpus,
                process: spec::ProcessOptions {
                    entrypoint: self.entrypoint.clone(),
                    args: self.command.clone(),
                    env: self.env.clone(),
                    env_files: self.env_file.clone(),
                    workdir: self.workdir.clone(),
                    user: self.user.clone(),
                    terminal: self.tty,
                },
                mounts: self
                    .volume
                    .iter()
                    .chain(&self.tmpfs)
                    .chain(&self.mount)
                    .cloned()
                    .collect(),
            },
            network,
            ports,
            dns: self.dns.clone(),
            kernel: self.kernel.clone(),
            auto_remove: self.rm,
            disposable: false,
            interactive: self.interactive,
            pod: self.pod.clone(),
            labels: labels(&self.label)?,
            restart: self.restart,
            aliases: self.network_alias.clone(),
            more_networks,
        })
    }

    /// The image's name in the store, pulled first when the policy asks.
    async fn ensure_image(&self, root: &StateRoot) -> anyhow::Result<String> {
        let store = ImageStore::open(root.path()).context("cannot open the image store")?;
        let name = store_name(&store, &self.image);
        let platform = self.platform.platform()?;
        // Only an image the store lacks (wholly, for this platform, or a blob
        // of it) is pulled. A damaged blob found now is set aside and named:
        // the run is refused, and a pull (this run's next time) repairs it.
        let have = match store.resolve(&name, &platform) {
            Ok(_) => true,
            Err(e @ containerization_oci::Error::DamagedBlob { .. }) => return Err(e.into()),
            Err(
                containerization_oci::Error::ImageNotFound(_)
                | containerization_oci::Error::PlatformNotFound { .. }
                | containerization_oci::Error::BlobNotFound(_),
            ) => false,
            Err(_) => true,
        };
        let pull = match self.pull {
            PullPolicy::Always => true,
            PullPolicy::Missing => !have,
            PullPolicy::Never if have => false,
            PullPolicy::Never => anyhow::bail!(
                "the image {} is not in the image store and --pull never forbids pulling it",
                self.image
            ),
        };
        if !pull {
            return Ok(name);
        }
        let reference: Reference = self
            .image
            .parse()
            .with_context(|| format!("{:?} is not an image reference", self.image))?;
        let progress = Progress::new();
        let client = crate::image::client(root, &self.registry, &reference, Some(progress.sink()))?;
        let pulled = if std::env::var("CZ_BUILD_WHILE_PULLING").as_deref() == Ok("0") {
            // Two passes: the pull, then the base (for comparison).
            client.pull(&store, &reference, &platform).await
        } else {
            // The base root file system is written while the layers
            // download (the container needs it next): one pass, not two.
            let follower = BlobFollower::new();
            let (plan_sender, plan) = tokio::sync::oneshot::channel();
            let pull = async {
                let pulled = client
                    .pull_planned(&store, &reference, &platform, plan_sender)
                    .await;
                if pulled.is_err() {
                    follower.stop();
                }
                pulled
            };
            let build = build_while_pulling(root, &store, plan, follower.clone());
            tokio::join!(pull, build).0
        };
        progress.finish();
        let image = pulled.with_context(|| format!("cannot pull {reference}"))?;
        Ok(image.name)
    }
}

/// Builds the base root file system of the image being pulled, once the
/// pull sends its plan, reading each layer as it arrives. A build that
/// fails costs only time: the container's creation builds the base again
/// from the stored layers, and reports what is wrong with them.
async fn build_while_pulling(
    root: &StateRoot,
    store: &ImageStore,
    plan: tokio::sync::oneshot::Receiver<PullPlan>,
    follower: BlobFollower,
) {
    let Ok(plan) = plan.await else { return };
    let cache = root.rootfs();
    let content = store.content().clone();
    let watcher = follower.clone();
    let built = tokio::task::spawn_blocking(move || {
        cache.base_following(&plan.manifest, &content, &plan.layers, &follower)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|built| built.map_err(|e| e.to_string()));
    match built {
        Ok(path) => tracing::debug!(
            base = %path.display(),
            bytes_before_stored = watcher.bytes_before_stored(),
            "built the base root file system while pulling"
        ),
        Err(e) => tracing::debug!("the base was not built while pulling: {e}"),
    }
}

//! `cctl image …`: pull, push, list, tag, remove, inspect, save, load,
//! prune and check images in the local store (`<state root>/content`).

use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use containerization::StateRoot;
use containerization_oci::progress::ProgressSink;
use containerization_oci::registry::{ClientConfig, CredentialStore, RegistryClient};
use containerization_oci::store::ImageStore;
use containerization_oci::{Platform, Reference, archive, layer};

use progress::Progress;

/// Output formats for `ls` and `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns / readable text.
    Table,
    /// JSON.
    Json,
}

/// Options for commands that talk to a registry.
#[derive(Debug, Default, Args)]
pub struct RegistryOptions {
    /// Treat this registry as insecure: plain HTTP is allowed and its TLS
    /// certificate is not checked (loopback registries may always use HTTP).
    #[arg(long)]
    insecure: bool,
    /// Extra CA certificate (PEM) to trust for the registry.
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
}

/// Which platform's image to take from an index.
#[derive(Debug, Args)]
pub struct PlatformOptions {
    /// The platform (os/arch[/variant]); this machine's by default.
    #[arg(long)]
    platform: Option<String>,
    /// On an amd64 platform, also take a linux/386 image when the index has
    /// no amd64 one (amd64 hosts run 386 binaries only when asked).
    #[arg(long)]
    allow_386: bool,
}

impl PlatformOptions {
    /// The platform asked for, with the 386 switch applied.
    pub fn platform(&self) -> anyhow::Result<Platform> {
        let mut platform = parse_platform(self.platform.as_deref())?;
        platform.allow_386_on_amd64 = self.allow_386;
        Ok(platform)
    }
}

/// Subcommands of `cctl image`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry into the local store.
    Pull {
        /// The image: `alpine`, `127.0.0.1:5000/demo/busybox:1`, `name@sha256:…`.
        reference: String,
        #[command(flatten)]
        platform: PlatformOptions,
        /// Pull every platform of an index.
        #[arg(long, conflicts_with = "platform")]
        all_platforms: bool,
        /// Also unpack the image's layers into this folder (created 0700;
        /// device nodes are skipped, see --keep-devices).
        #[arg(long, value_name = "DIR")]
        unpack: Option<PathBuf>,
        /// With --unpack, as root: create the image's device nodes too.
        /// Anyone who can reach a node in the folder can use the device.
        #[arg(long, requires = "unpack")]
        keep_devices: bool,
        #[command(flatten)]
        registry: RegistryOptions,
    },
    /// Push an image from the local store to a registry.
    Push {
        /// The image in the store.
        name: String,
        /// Where to push it; the image's own name by default.
        destination: Option<String>,
        #[command(flatten)]
        registry: RegistryOptions,
    },
    /// List the images in the store.
    Ls {
        /// `table`, `json` (an object a line) or a template of Docker's
        /// fields (`{{.Repository}}:{{.Tag}} {{.Size}}`; `table TEMPLATE`
        /// for a header row).
        #[arg(long, default_value = "table", value_parser = str::parse::<crate::format::Shape>)]
        format: crate::format::Shape,
        /// Show only images that match, as Docker's: `reference=PATTERN`,
        /// `label=KEY[=VALUE]`, `before=IMAGE`, `since=IMAGE`, `dangling=BOOL`.
        #[arg(short, long, value_name = "KIND=VALUE")]
        filter: Vec<String>,
        /// Print image ids only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Give an image another name.
    Tag {
        /// The image.
        source: String,
        /// The new name.
        target: String,
    },
    /// Remove image names, then the blobs no image needs any more.
    Rm {
        /// Remove the names even of images that containers were made from
        /// (the containers keep their own root file systems).
        #[arg(short, long)]
        force: bool,
        /// The images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show an image's manifest and config for a platform.
    Inspect {
        /// The image.
        name: String,
        #[command(flatten)]
        platform: PlatformOptions,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Write images to an OCI image layout tar.
    Save {
        /// The images.
        #[arg(required = true)]
        names: Vec<String>,
        /// The archive to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Load images from an OCI image layout tar or a `docker save` archive.
    Load {
        /// The archive to read.
        #[arg(short, long)]
        input: PathBuf,
    },
    /// Remove blobs no image needs and root file systems no image or
    /// container needs, and report the store's usage.
    Prune,
    /// Check every stored blob against its digest and every layer against
    /// its image's diff_id; damaged blobs are set aside, so pulling their
    /// images again repairs the store. Fails when anything is wrong.
    Check {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

impl ImageCommand {
    /// Runs the subcommand.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(self.run_async(root))
    }

    async fn run_async(self, root: &StateRoot) -> anyhow::Result<()> {
        let store = ImageStore::open(root.path()).context("cannot open the image store")?;
        match self {
            Self::Pull {
                reference,
                platform,
                all_platforms,
                unpack,
                keep_devices,
                registry,
            } => {
                let reference: Reference = reference.parse()?;
                let platform = platform.platform()?;
                let progress = Progress::new();
                let client = client(root, &registry, &reference, Some(progress.sink()))?;
                let image = if all_platforms {
                    client.pull_all_platforms(&store, &reference).await
                } else {
                    client.pull(&store, &reference, &platform).await
                };
                progress.finish();
                let image = image?;
                println!("{} {}", image.name, image.digest()?);
                if let Some(dir) = unpack {
                    let resolved = store.resolve(&image.name, &platform)?;
                    let options = layer::UnpackOptions {
                        keep_devices,
                        ..Default::default()
                    };
                    unpack_new(&dir, |dir| {
                        layer::unpack_resolved(store.content(), &resolved, dir, &options)
                    })
                    .with_context(|| format!("cannot unpack into {}", dir.display()))?;
                }
            }
            Self::Push {
                name,
                destination,
                registry,
            } => {
                let name = store_name(&store, &name);
                let destination: Reference = destination.as_deref().unwrap_or(&name).parse()?;
                let progress = Progress::new();
                let client = client(root, &registry, &destination, Some(progress.sink()))?;
                let digest = client.push(&store, &name, &destination).await;
                progress.finish();
                println!("{destination} {}", digest?);
            }
            Self::Ls {
                format,
                filter,
                quiet,
            } => list(&store, &format, &filter, quiet)?,
            Self::Tag { source, target } => {
                let source = store_name(&store, &source);
                let target = target
                    .parse::<Reference>()
                    .map_or(target, |r| r.to_string());
                store.tag(&source, &target)?;
                println!("{target}");
            }
            Self::Rm { force, names } => {
                for name in names {
                    let name = store_name(&store, &name);
                    if !force {
                        crate::image_in_use::refuse_if_in_use(root, &store, &name)?;
                    }
                    store.untag(&name)?;
                    println!("untagged {name}");
                }
                let report = store.prune()?;
                let rootfs = collect_rootfs(root, &report)?;
                println!(
                    "removed {} blobs and {} root file systems, {} freed",
                    report.removed.len(),
                    rootfs.removed.len(),
                    bytes(report.freed_bytes + rootfs.freed_bytes)
                );
            }
            Self::Inspect {
                name,
                platform,
                format,
            } => {
                let name = store_name(&store, &name);
                let resolved = store.resolve(&name, &platform.platform()?)?;
                let config: serde_json::Value = serde_json::from_slice(&resolved.config_bytes)?;
                let out = serde_json::json!({
                    "name": resolved.image.name,
                    "digest": resolved.image.descriptor.digest().to_string(),
                    "manifestDigest": resolved.manifest_descriptor.digest().to_string(),
                    "manifest": resolved.manifest,
                    "config": config,
                });
                if format == Format::Json {
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    println!("name:     {}", resolved.image.name);
                    println!("digest:   {}", resolved.image.descriptor.digest());
                    println!("manifest: {}", resolved.manifest_descriptor.digest());
                    println!(
                        "platform: {}/{}",
                        resolved.config.os(),
                        resolved.config.architecture()
                    );
                    println!("layers:   {}", resolved.manifest.layers().len());
                    let size: u64 = resolved.manifest.layers().iter().map(|l| l.size()).sum();
                    println!("size:     {}", bytes(size));
                }
            }
            Self::Save { names, output } => {
                let names: Vec<String> = names.iter().map(|n| store_name(&store, n)).collect();
                let file = std::fs::File::create(&output)
                    .with_context(|| format!("cannot create {}", output.display()))?;
                if let Err(error) = archive::save(&store, &names, std::io::BufWriter::new(file)) {
                    // No half archive is left to be loaded elsewhere.
                    let _ = std::fs::remove_file(&output);
                    return Err(error.into());
                }
                println!("saved {} image(s) to {}", names.len(), output.display());
            }
            Self::Load { input } => {
                for name in archive::load(&store, &input)? {
                    println!("loaded {name}");
                }
            }
            Self::Check { format } => {
                let report = store.check()?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                    Format::Table => {
                        for problem in &report.problems {
                            let image = problem.image.as_deref().unwrap_or("(no image)");
                            println!("{image}: {}", problem.what);
                        }
                        println!(
                            "checked {} blobs ({}); {} layers decompressed to check their \
                             diff_ids, {} checked before",
                            report.blobs,
                            bytes(report.bytes),
                            report.decompressed,
                            report.known
                        );
                    }
                }
                if !report.problems.is_empty() {
                    bail!(
                        "{} problems in the image store; damaged blobs were set aside: pull \
                         (or load) the images named above again",
                        report.problems.len()
                    );
                }
            }
            Self::Prune => {
                let report = store.prune()?;
                let rootfs = collect_rootfs(root, &report)?;
                let usage = store.usage()?;
                println!(
                    "removed {} blobs and {} root file systems, {} freed; {} images, {} blobs, {} in use",
                    report.removed.len(),
                    rootfs.removed.len(),
                    bytes(report.freed_bytes + rootfs.freed_bytes),
                    usage.images,
                    usage.blobs,
                    bytes(usage.bytes)
                );
            }
        }
        Ok(())
    }
}

/// After the store's collection (`report`), removes the root file systems no
/// image or container needs any more, and half-built ones; warns about
/// images that cannot be read, whose blobs and bases were all kept.
pub(crate) fn collect_rootfs(
    root: &StateRoot,
    report: &containerization_oci::store::PruneReport,
) -> anyhow::Result<containerization::rootfs::RootfsCollection> {
    for why in &report.kept_because {
        eprintln!(
            "cctl: warning: no blob was removed, because an image cannot be read: {why}; \
             pull it again or remove it"
        );
    }
    Ok(containerization::rootfs::collect_unused(root, true)?.unwrap_or_default())
}

/// The store's name for what the user typed: the normalised reference when
/// the store has it, else the text as given.
pub fn store_name(store: &ImageStore, typed: &str) -> String {
    match typed.parse::<Reference>() {
        Ok(r) if store.get(&r.to_string()).is_ok() => r.to_string(),
        _ => typed.to_owned(),
    }
}

fn parse_platform(text: Option<&str>) -> anyhow::Result<Platform> {
    Ok(match text {
        Some(t) => t.parse()?,
        None => Platform::host(),
    })
}

/// `cctl image ls`: each image with Docker's fields (and its platforms).
fn list(
    store: &ImageStore,
    shape: &crate::format::Shape,
    filters: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    use crate::image_filter::{ImageFilter, familiar};
    let filters = filters
        .iter()
        .map(|text| {
            let (kind, value) = text.split_once('=').with_context(|| {
                format!("filter {text:?}: KIND=VALUE, such as reference=busybox")
            })?;
            ImageFilter::parse(store, kind, value)
                .map_err(|e| anyhow::anyhow!("filter {text:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rows = Vec::new();
    for image in store.list()? {
        let crate::image_filter::Looked {
            resolved,
            labels,
            made,
        } = crate::image_filter::look(store, &image.name);
        if !filters.iter().all(|f| f.admits(&image.name, &labels, made)) {
            continue;
        }
        let platforms: Vec<String> = store
            .platforms(&image.name)
            .map(|list| list.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let id = resolved.as_ref().map_or_else(
            || {
                image
                    .digest()
                    .map(|d| d.hex().to_owned())
                    .unwrap_or_default()
            },
            |r| r.manifest.config().digest().digest().to_owned(),
        );
        let size: u64 = resolved
            .as_ref()
            .map_or(0, |r| r.manifest.layers().iter().map(|l| l.size()).sum());
        let shown = familiar(&image.name);
        let (repository, tag) = match shown.rfind(':') {
            Some(at) if !shown[at..].contains('/') => (&shown[..at], &shown[at + 1..]),
            _ => (shown, "<none>"),
        };
        let (created_at, since) = match made {
            0 => ("N/A".to_owned(), "N/A".to_owned()),
            seconds => {
                let ms = u64::try_from(seconds).unwrap_or(0) * 1000;
                let (y, mo, d, h, mi, s) = crate::clock::civil(seconds);
                (
                    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC"),
                    format!("{} ago", crate::container::list::ago(ms)),
                )
            }
        };
        let mut row = crate::format::Row::new();
        let mut put = |key: &str, value: serde_json::Value| {
            row.insert(key.to_owned(), value);
        };
        put("Name", image.name.clone().into());
        put("Repository", repository.into());
        put("Tag", tag.into());
        put("ID", id.chars().take(12).collect::<String>().into());
        put("Digest", image.descriptor.digest().to_string().into());
        put(
            "MediaType",
            image.descriptor.media_type().to_string().into(),
        );
        put("CreatedAt", created_at.into());
        put("CreatedSince", since.into());
        put("Size", bytes(size).into());
        put("Platform", platforms.join(",").into());
        put(crate::format::LABELS, labels);
        rows.push(row);
    }
    if quiet {
        for row in &rows {
            println!("{}", row["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    crate::format::print(
        shape,
        &rows,
        "{{.Name}}\t{{.ID}}\t{{.Platform}}\t{{.CreatedSince}}\t{{.Size}}",
        &[("ID", "IMAGE ID"), ("CreatedSince", "CREATED")],
    )
    .map_err(|e| anyhow::anyhow!("--format: {e}"))
}

/// A registry client with the user's credentials and options.
pub fn client(
    root: &StateRoot,
    options: &RegistryOptions,
    reference: &Reference,
    progress: Option<ProgressSink>,
) -> anyhow::Result<RegistryClient> {
    client_with(root, options, reference, progress, None)
}

/// [`client`], with `given` (a credential sent with a request) used before
/// the stored ones.
pub fn client_with(
    root: &StateRoot,
    options: &RegistryOptions,
    reference: &Reference,
    progress: Option<ProgressSink>,
    given: Option<containerization_oci::registry::Credential>,
) -> anyhow::Result<RegistryClient> {
    let mut config = ClientConfig {
        credentials: CredentialStore {
            given,
            ..CredentialStore::standard(root.path())
        },
        progress,
        ..ClientConfig::default()
    };
    if options.insecure {
        config.insecure_hosts.push(reference.api_host().to_owned());
    }
    if let Some(path) = &options.ca_cert {
        config
            .extra_ca_pems
            .push(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?);
    }
    Ok(RegistryClient::new(config)?)
}

/// A size for people: 1.2 MiB.
pub use containerization::host::human_size as bytes;

/// Whether standard error is a terminal (bars) or not (plain lines).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// Draws per-blob progress: `indicatif` bars on a terminal, plain lines
/// otherwise (one when a blob starts, is skipped, or is done).
pub mod progress {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use containerization_oci::Digest;
    use containerization_oci::progress::{ProgressEvent, ProgressSink};
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

    use super::{bytes, interactive};

    /// The progress display of one pull or push.
    #[derive(Clone)]
    pub struct Progress {
        inner: Arc<Inner>,
    }

    struct Inner {
        bars: Option<MultiProgress>,
        active: Mutex<HashMap<Digest, (ProgressBar, u64)>>,
    }

    impl Progress {
        /// Bars on a terminal, lines elsewhere.
        pub fn new() -> Self {
            Self {
                inner: Arc::new(Inner {
                    bars: interactive().then(MultiProgress::new),
                    active: Mutex::new(HashMap::new()),
                }),
            }
        }

        /// The sink to hand to the registry client.
        pub fn sink(&self) -> ProgressSink {
            let me = self.clone();
            Arc::new(move |event: &ProgressEvent| me.on(event))
        }

        /// Clears the bars.
        pub fn finish(&self) {
            if let Some(bars) = &self.inner.bars {
                let _ = bars.clear();
            }
        }

        fn on(&self, event: &ProgressEvent) {
            let Ok(mut active) = self.inner.active.lock() else {
                return;
            };
            match event {
                ProgressEvent::Started {
                    digest,
                    size,
                    offset,
                } => {
                    if let Some(bars) = &self.inner.bars {
                        let bar = bars.add(ProgressBar::new(*size));
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(digest.short().to_owned());
                        bar.set_position(*offset);
                        active.insert(digest.clone(), (bar, *size));
                    } else {
                        let resumed = if *offset > 0 {
                            format!(" (resuming at {})", bytes(*offset))
                        } else {
                            String::new()
                        };
                        eprintln!("{} downloading {}{resumed}", digest.short(), bytes(*size));
                        active.insert(digest.clone(), (ProgressBar::hidden(), *size));
                    }
                }
                ProgressEvent::Advanced { digest, done } => {
                    if let Some((bar, _)) = active.get(digest) {
                        bar.set_position(*done);
                    }
                }
                ProgressEvent::Skipped { digest, size, why } => {
                    let line = format!("{} {why} ({})", digest.short(), bytes(*size));
                    match &self.inner.bars {
                        Some(bars) => {
                            let _ = bars.println(line);
                        }
                        None => eprintln!("{line}"),
                    }
                }
                ProgressEvent::Finished { digest } => {
                    if let Some((bar, size)) = active.remove(digest) {
                        bar.finish_and_clear();
                        let line = format!("{} done ({})", digest.short(), bytes(size));
                        match &self.inner.bars {
                            Some(bars) => {
                                let _ = bars.println(line);
                            }
                            None => eprintln!("{line}"),
                        }
                    }
                }
            }
        }
    }
}

/// Runs `unpack` into `dir`, which must be missing or empty; on an error,
/// nothing unpacked is left there (a folder made for it is removed).
fn unpack_new(
    dir: &Path,
    unpack: impl FnOnce(&Path) -> containerization_oci::Result<()>,
) -> anyhow::Result<()> {
    let existed = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} is not empty: unpack into a new folder", dir.display());
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let Err(error) = unpack(dir) else {
        return Ok(());
    };
    // Nothing built from a refused layer may be used.
    let cleaned = std::fs::remove_dir_all(dir).and_then(|()| {
        if existed {
            std::fs::DirBuilder::new().mode(0o700).create(dir)
        } else {
            Ok(())
        }
    });
    if let Err(e) = cleaned {
        tracing::warn!(dir = %dir.display(), "cannot remove what was unpacked: {e}");
    }
    Err(error.into())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ImageCommand,
    }

    fn pull_platform(args: &[&str]) -> Platform {
        let args = ["image", "pull"]
            .iter()
            .chain(args)
            .chain(&["demo/busybox"]);
        match Cli::try_parse_from(args).expect("parses").command {
            ImageCommand::Pull { platform, .. } => platform.platform().expect("platform"),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn pull_takes_386_on_amd64_only_with_allow_386() {
        let i386: Platform = "linux/386".parse().expect("platform");
        assert!(!pull_platform(&["--platform", "linux/amd64"]).runs(&i386));
        assert!(pull_platform(&["--platform", "linux/amd64", "--allow-386"]).runs(&i386));
    }
}

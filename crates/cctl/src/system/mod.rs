//! `cctl system …`: what this machine offers the project, what the state
//! root holds (`df`) and removing what nothing uses (`prune`).

mod df;
mod prune;

use std::path::{Path, PathBuf};

use clap::Subcommand;
use containerization::StateRoot;

/// Subcommands of `cctl system`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show the state folder, the guest kernels and the programs VMs need.
    Info,
    /// Say which accelerator, vsock back end and kernel VMs will use, and why.
    Check,
    /// Show the disk space images, containers and root file systems take,
    /// and what `cctl system prune` would free.
    Df,
    /// Remove stopped containers, networks no container uses, and the
    /// blobs and root file systems no image or container needs.
    Prune {
        /// Remove images no container was made from too.
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Serve the Docker Engine API (1.41) on a unix socket, for the
    /// `docker` CLI and tools built on its API.
    Service(crate::service::ServiceArgs),
}

impl SystemCommand {
    /// Runs the subcommand.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        match self {
            Self::Info => info(root),
            Self::Check => check(root),
            Self::Df => df::df(root),
            Self::Prune { all, force } => prune::prune(root, all, force),
            Self::Service(args) => crate::service::run(root, &args),
        }
    }
}

fn info(root: &StateRoot) -> anyhow::Result<()> {
    println!("state root:          {}", root.path().display());
    let kernels = root.kernels().list()?;
    if kernels.is_empty() {
        println!("kernels:             none (run scripts/setup)");
    }
    for kernel in &kernels {
        println!("kernel:              {}", super::kernel::describe(kernel)?);
    }
    let tools = root.tools_bin();
    for program in ["qemu-system-x86_64", "vhost-device-vsock", "qemu-img"] {
        let found = find_program(program, &tools)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "missing (run scripts/setup)".to_owned());
        println!("{:<20} {found}", format!("{program}:"));
    }
    Ok(())
}

fn check(root: &StateRoot) -> anyhow::Result<()> {
    let (accel, why) = containerization_vmm::Accelerator::detect();
    println!("accelerator:  {:<12} {why}", accel.to_string());
    let helper = root.tools_bin().join("vhost-device-vsock");
    let (vsock, why) = containerization_vmm::VsockBackend::detect(&helper);
    let name = match &vsock {
        containerization_vmm::VsockBackend::Kernel => "vhost-vsock",
        containerization_vmm::VsockBackend::VhostUser { .. } => "vhost-user",
        containerization_vmm::VsockBackend::Serial => "serial",
    };
    println!("transport:    {name:<12} {why}");
    let mut problems = Vec::new();
    if let containerization_vmm::VsockBackend::VhostUser { program } = &vsock
        && !program.is_file()
    {
        problems.push(format!(
            "{} is missing (run scripts/setup)",
            program.display()
        ));
    }
    match root.kernels().default_kernel() {
        Ok((kernel, why)) => println!("kernel:       {:<12} {why}", kernel.name()),
        Err(err) => problems.push(err.to_string()),
    }
    for kernel in root.kernels().list()? {
        println!("  available:  {}", super::kernel::describe(&kernel)?);
    }
    match root.find_vminitd() {
        Ok(path) => println!("vminitd:      {}", path.display()),
        Err(err) => problems.push(err.to_string()),
    }
    if find_program("qemu-system-x86_64", &root.tools_bin()).is_none() {
        problems.push("qemu-system-x86_64 is missing (run scripts/setup)".to_owned());
    }
    if problems.is_empty() {
        println!("VMs can run here");
        return Ok(());
    }
    anyhow::bail!("VMs cannot run here yet:\n  {}", problems.join("\n  "))
}

/// Finds `program` in the project's tools folder, then on `PATH`.
fn find_program(program: &str, tools: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(tools.to_path_buf())
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

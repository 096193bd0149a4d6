//! `cctl system …`: what this machine offers the project.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use containerization::StateRoot;

/// Subcommands of `cctl system`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show the state folder, the guest kernels and the programs VMs need.
    Info,
}

impl SystemCommand {
    /// Runs the subcommand.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        match self {
            Self::Info => info(root),
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

/// Finds `program` in the project's tools folder, then on `PATH`.
fn find_program(program: &str, tools: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(tools.to_path_buf())
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

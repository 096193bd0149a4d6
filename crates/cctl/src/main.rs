//! `cctl`: the containerization command line.
//!
//! Today it reports what this machine offers (`cctl system info`), lists the
//! guest kernel catalogue (`cctl kernel ls`), manages images (`cctl image …`,
//! `cctl login`, `cctl logout`), builds and inspects ext4 root file systems
//! (`cctl rootfs …`), manages container networks (`cctl network …`) and
//! boots a VM with vminitd (`cctl vm boot`; `cctl system check` says what it
//! will use).
//! Container commands arrive with their issue.

mod image;
mod kernel;
mod login;
mod network;
mod rootfs;
mod system;
mod vm;

use clap::{Parser, Subcommand};

/// Run Linux containers, each in its own lightweight virtual machine.
#[derive(Debug, Parser)]
#[command(name = "cctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// This machine: state folder, guest kernels, hypervisor and helper programs.
    #[command(subcommand)]
    System(system::SystemCommand),
    /// The guest kernel catalogue.
    #[command(subcommand)]
    Kernel(kernel::KernelCommand),
    /// Container networks: host bridges with a subnet each (needs root).
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Root file systems: ext4 images from a directory or layer tarballs.
    #[command(subcommand)]
    Rootfs(rootfs::RootfsCommand),
    /// Images: pull, push, list, tag, remove, inspect, save, load, prune.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// The VM playground: boot a VM with vminitd and time it.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Save credentials for a registry (checked against it first).
    Login(login::LoginCommand),
    /// Forget the credentials for a registry.
    Logout(login::LogoutCommand),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CZ_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let root = containerization::StateRoot::from_env()?;
    match Cli::parse().command {
        Command::System(command) => command.run(&root),
        Command::Kernel(command) => command.run(&root),
        Command::Network(command) => command.run(&root),
        Command::Rootfs(command) => command.run(&root),
        Command::Image(command) => command.run(&root),
        Command::Vm(command) => command.run(&root),
        Command::Login(command) => command.run(&root),
        Command::Logout(command) => command.run(&root),
    }
}

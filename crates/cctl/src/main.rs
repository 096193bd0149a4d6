//! `cctl`: the containerization command line.
//!
//! Today it reports what this machine offers (`cctl system info`), lists the
//! guest kernel catalogue (`cctl kernel ls`), manages images (`cctl image …`,
//! `cctl login`, `cctl logout`), builds and inspects ext4 root file systems
//! (`cctl rootfs …`), manages container networks (`cctl network …`) and
//! boots a VM with vminitd (`cctl vm boot`; `cctl system check` says what it
//! will use), and runs containers, each in its own VM, with Docker's flags
//! and exit codes (`cctl run`, `create`, `start`, `ls`, `logs`, `stop`,
//! `kill`, `rm`, `exec`, `inspect`, `stats`, `cp`), alone in a VM or
//! several in a pod's (`cctl pod …`, `cctl run --pod`).

mod clock;
mod container;
mod format;
mod image;
mod image_filter;
mod image_in_use;
mod kernel;
mod login;
mod network;
mod pod;
mod report;
mod rootfs;
mod service;
mod system;
mod vm;
mod volume;

use clap::{Parser, Subcommand};

/// Run Linux containers, each in its own lightweight virtual machine.
#[derive(Debug, Parser)]
#[command(
    name = "cctl",
    version,
    about,
    after_help = "Docker's verbs work too: pull, push, images, rmi and tag are `cctl image \
                  pull|push|ls|rm|tag`, info is `cctl system info`; ps, run, create, start, \
                  stop, kill, rm, exec, cp, logs, inspect, stats, wait, restart, rename, port, top \
                  and version are cctl's own."
)]
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
    /// Pods: several containers in one VM, sharing its network and volumes.
    #[command(subcommand)]
    Pod(pod::PodCommand),
    /// Named volumes: data that outlives containers.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
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
    #[command(flatten)]
    Container(container::ContainerCommand),
}

/// Docker's exit code for every error before a container runs, usage
/// errors included (clap's own is 2).
const USAGE_FAILED: u8 = 125;

/// The exit status of a process a closed pipe stopped (128 + SIGPIPE), as
/// a shell reports a tool killed by the signal.
const CLOSED_PIPE_EXIT: i32 = 141;

/// Ends quietly when standard output or error is a pipe whose reader has
/// gone (`cctl inspect x | grep -q …`), as Unix tools do, instead of
/// panicking in `println!`. Rust ignores SIGPIPE so that sockets report
/// `EPIPE`; the agent's connections keep doing so.
fn end_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(CLOSED_PIPE_EXIT);
        }
        default(info);
    }));
}

/// Docker's top-level image and system verbs, as the `cctl` commands they
/// are: `cctl pull X` is `cctl image pull X`, `cctl images` is `cctl image
/// ls`, and so on.
fn docker_verbs(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let words: &[&str] = match args.get(1).and_then(|a| a.to_str()) {
        Some("pull") => &["image", "pull"],
        Some("push") => &["image", "push"],
        Some("images") => &["image", "ls"],
        Some("rmi") => &["image", "rm"],
        Some("tag") => &["image", "tag"],
        Some("info") => &["system", "info"],
        _ => return args,
    };
    args.splice(1..2, words.iter().map(std::ffi::OsString::from));
    args
}

fn main() -> std::process::ExitCode {
    end_quietly_on_closed_stdout();
    let cli = match Cli::try_parse_from(docker_verbs(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(error) => {
            // `--help` and `--version` are "errors" to clap that print to
            // standard output and succeed; real usage errors end with 125.
            let _ = error.print();
            return if error.use_stderr() {
                std::process::ExitCode::from(USAGE_FAILED)
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    if let Command::Container(command) = cli.command {
        // Container commands end with Docker's codes: the container's own,
        // 125 when the runtime fails, 126 or 127 when the program cannot run.
        init_tracing();
        close_inherited_fds_on_exec();
        let failed = command.failure_code();
        let code = match containerization::StateRoot::from_env()
            .map_err(anyhow::Error::from)
            .and_then(|root| command.run(&root))
        {
            Ok(code) => code,
            Err(error) => {
                eprintln!("cctl: {}", report::one_line(&error));
                match error.downcast_ref::<container::ExitWith>() {
                    Some(container::ExitWith(code, _)) => *code,
                    None if failed == container::RUNTIME_FAILED => container::exit_code_of(&error),
                    None => failed,
                }
            }
        };
        return std::process::ExitCode::from(u8::try_from(code & 0xff).unwrap_or(255));
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The message and its causes on one line, as the container
            // commands print them; no backtrace even with RUST_BACKTRACE set.
            eprintln!("cctl: {}", report::one_line(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Marks every descriptor this process inherited beyond 0, 1 and 2 close-on-
/// exec, so a detached container's monitor, QEMU and its helper do not hold
/// the pipes of whoever ran `cctl` (a test harness waiting for end of file).
fn close_inherited_fds_on_exec() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: `fd` was listed as open in /proc/self/fd just now and
        // nothing in this process closes descriptors it did not open; it is
        // only borrowed for the two fcntl calls.
        let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = rustix::io::fcntl_getfd(fd) {
            let _ = rustix::io::fcntl_setfd(fd, flags | rustix::io::FdFlags::CLOEXEC);
        }
    }
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CZ_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: never escape codes in a log file.
        .with_ansi(rustix::termios::isatty(std::io::stderr()))
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    init_tracing();
    let root = containerization::StateRoot::from_env()?;
    match cli.command {
        Command::System(command) => command.run(&root),
        Command::Kernel(command) => command.run(&root),
        Command::Network(command) => command.run(&root),
        Command::Volume(command) => command.run(&root),
        Command::Pod(command) => command.run(&root),
        Command::Rootfs(command) => command.run(&root),
        Command::Image(command) => command.run(&root),
        Command::Vm(command) => command.run(&root),
        Command::Login(command) => command.run(&root),
        Command::Logout(command) => command.run(&root),
        Command::Container(_) => Ok(()),
    }
}

//! Container commands, with Docker's flags and exit codes: `run`, `create`,
//! `start`, `ls`, `logs`, `stop`, `kill`, `rm`, `exec`, `inspect`, `stats`.

pub(crate) mod attach;
mod cp;
pub(crate) mod detach;
pub(crate) mod flags;
pub(crate) mod list;
mod options;
pub(crate) mod run;
pub(crate) mod verbs;

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use containerization::{
    ContainerManager, LogReader, LogStream, StateRoot, StdioConfig, log_tail, parse_signal, spec,
};

pub use run::{ExitWith, RUNTIME_FAILED, exit_code_of, start_monitored};

/// The container commands.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create a container from an image and run a command in it, in its own VM.
    Run(Box<run::RunArgs>),
    /// Create a container without starting it.
    Create(Box<options::CreateArgs>),
    /// Start created or exited containers in the background.
    Start {
        /// Containers (names or ids).
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers (running ones unless --all).
    #[command(alias = "ps")]
    Ls(list::ListArgs),
    /// Print a container's output.
    Logs {
        /// Keep printing new output until the container stops.
        #[arg(short, long)]
        follow: bool,
        /// Print only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// The container.
        container: String,
    },
    /// Stop running containers: their stop signal, then SIGKILL after a timeout.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to running containers' first process.
    Kill {
        /// The signal, by name or number.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        /// Remove the container's anonymous volumes too.
        #[arg(short, long)]
        volumes: bool,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Copy files between a container (running or stopped) and the host.
    Cp(cp::CpArgs),
    /// Print containers' configuration and state as JSON.
    Inspect {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Wait until containers stop, then print their exit codes.
    Wait {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop containers (if they run), then start them in the background.
    Restart {
        /// Seconds to wait for each to stop before killing it.
        #[arg(short, long, default_value_t = 10)]
        time: u64,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List a container's published ports (or the one for PORT[/PROTOCOL]).
    Port {
        /// The container.
        container: String,
        /// Only this container port (`80` or `80/tcp`).
        port: Option<String>,
    },
    /// Join this terminal to a running container's first process: its
    /// output from now on, this terminal's input when it was made with
    /// `-i`; `ctrl-p ctrl-q` detaches from one with a terminal. Ends with
    /// its exit code when it ends.
    Attach {
        /// Do not send this terminal's input.
        #[arg(long)]
        no_stdin: bool,
        /// The container.
        container: String,
    },
    /// Show the processes of a running container (`ps` in it: they live in
    /// its VM).
    Top {
        /// The container.
        container: String,
    },
    /// Give a container another name.
    Rename {
        /// The container.
        container: String,
        /// Its new name.
        name: String,
    },
    /// Print cctl's version and the Docker Engine API version it serves.
    Version,
    /// Print running containers' resource use.
    Stats {
        /// Print once instead of every second.
        #[arg(long)]
        no_stream: bool,
        /// Containers (all running ones when none is named).
        containers: Vec<String>,
    },
    /// The monitor of a detached container (internal).
    #[command(name = "__monitor", hide = true)]
    Monitor {
        /// The container's id.
        id: String,
    },
}

/// `cctl exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Feed standard input to the process.
    #[arg(short, long)]
    interactive: bool,
    /// Give the process a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Start it and return at once.
    #[arg(short, long)]
    detach: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to take this shell's).
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// The working directory.
    #[arg(short, long)]
    workdir: Option<String>,
    /// The user: name, uid, name:group or uid:gid.
    #[arg(short, long)]
    user: Option<String>,
    /// The container.
    container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl ContainerCommand {
    /// The exit code of a failure: Docker's 125 for `run`, `create`, `start`
    /// and `exec` (126 and 127 when the program cannot run), 1 otherwise.
    pub fn failure_code(&self) -> i32 {
        match self {
            Self::Run(_)
            | Self::Create(_)
            | Self::Start { .. }
            | Self::Exec(_)
            | Self::Monitor { .. } => RUNTIME_FAILED,
            _ => 1,
        }
    }

    /// Runs the command; returns the exit code to end with.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<i32> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        // Only commands that boot a VM need vminitd: `ls` or `rm` work without.
        let vminitd = if matches!(
            self,
            Self::Run(_) | Self::Start { .. } | Self::Monitor { .. } | Self::Cp(_)
        ) {
            root.find_vminitd()?
        } else {
            root.tools_bin().join("vminitd")
        };
        let manager = ContainerManager::new(root.clone(), vminitd);
        let result = runtime.block_on(self.run_async(&manager));
        // A read of standard input may still block a thread: do not wait for it.
        runtime.shutdown_timeout(Duration::from_millis(100));
        result
    }

    async fn run_async(self, manager: &ContainerManager) -> anyhow::Result<i32> {
        if !matches!(self, Self::Monitor { .. }) {
            manager.reap_stale().await?;
        }
        match self {
            Self::Run(args) => run::run(manager, &args).await,
            Self::Create(args) => run::create(manager, &args).await,
            Self::Monitor { id } => run::monitor(manager, &id).await,
            Self::Start { containers } => {
                for name in containers {
                    let container = manager.get(&name)?;
                    // Docker echoes each container as it was named.
                    run::start_detached(&container, &name).await?;
                }
                Ok(0)
            }
            Self::Ls(args) => list::list(manager, &args),
            Self::Logs {
                follow,
                tail,
                container,
            } => logs(manager, &container, follow, tail).await,
            Self::Wait { containers } => verbs::wait(manager, &containers).await,
            Self::Restart { time, containers } => {
                verbs::restart(manager, &containers, Duration::from_secs(time)).await
            }
            Self::Port { container, port } => verbs::port(manager, &container, port.as_deref()),
            Self::Top { container } => verbs::top(manager, &container).await,
            Self::Attach {
                no_stdin,
                container,
            } => verbs::attach(manager, &container, !no_stdin).await,
            Self::Rename { container, name } => {
                manager.rename(&container, &name)?;
                Ok(0)
            }
            Self::Version => {
                println!("cctl {}", env!("CARGO_PKG_VERSION"));
                println!(
                    "Docker Engine API {} (cctl system service)",
                    crate::service::API_VERSION
                );
                Ok(0)
            }
            Self::Stop { time, containers } => {
                for name in containers {
                    manager.get(&name)?.stop(Duration::from_secs(time)).await?;
                    println!("{name}");
                }
                Ok(0)
            }
            Self::Kill { signal, containers } => {
                let signal = parse_signal(&signal)?;
                for name in containers {
                    manager.get(&name)?.kill(signal).await?;
                    println!("{name}");
                }
                Ok(0)
            }
            Self::Rm {
                force,
                volumes,
                containers,
            } => {
                for name in containers {
                    manager.remove_with_volumes(&name, force, volumes).await?;
                    println!("{name}");
                }
                Ok(0)
            }
            Self::Exec(args) => exec(manager, args).await,
            Self::Cp(args) => cp::cp(manager, args).await,
            Self::Inspect { containers } => list::inspect(manager, &containers),
            Self::Stats {
                no_stream,
                containers,
            } => list::stats(manager, &containers, no_stream).await,
        }
    }
}

async fn logs(
    manager: &ContainerManager,
    name: &str,
    follow: bool,
    tail: Option<usize>,
) -> anyhow::Result<i32> {
    let container = manager.get(name)?;
    let mut reader = LogReader::new(&container.log_path());
    let mut records = reader.read_new()?;
    if let Some(lines) = tail {
        records = log_tail(records, lines);
    }
    loop {
        for (stream, bytes) in &records {
            match stream {
                LogStream::Stdout => std::io::stdout().write_all(bytes)?,
                LogStream::Stderr => std::io::stderr().write_all(bytes)?,
            }
        }
        std::io::stdout().flush()?;
        if !follow {
            return Ok(0);
        }
        let running = container.state()?.is_running();
        tokio::time::sleep(Duration::from_millis(100)).await;
        records = reader.read_new()?;
        if !running && records.is_empty() {
            return Ok(0);
        }
    }
}

async fn exec(manager: &ContainerManager, args: ExecArgs) -> anyhow::Result<i32> {
    let container = manager.get(&args.container)?;
    let options = spec::ProcessOptions {
        args: args.command,
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        terminal: args.tty,
        ..spec::ProcessOptions::default()
    };
    let stdio = StdioConfig {
        stdin: args.interactive && !args.detach,
        stdout: !args.detach,
        stderr: !args.detach,
        terminal: args.tty.then(attach::terminal_size),
    };
    let mut process = container.exec(&options, stdio).await?;
    if args.detach {
        return Ok(0);
    }
    let status = attach::attach(
        &mut process,
        attach::Attach {
            stdin: args.interactive,
            tty: args.tty,
            log: None,
        },
    )
    .await?;
    let _ = process.delete().await;
    Ok(status.code)
}

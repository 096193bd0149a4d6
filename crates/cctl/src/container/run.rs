//! `cctl run`, `cctl create`, `cctl start` and the detached monitor.
//!
//! A foreground `run` owns the VM itself: if `cctl` dies, QEMU dies with it.
//! A detached container (`run -d`, `start`) is owned by a monitor, `cctl`
//! run again as `cctl __monitor ID` in its own process group, which writes
//! the output to the container's log and records the exit.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use containerization::{ContainerManager, Error, LinuxContainer, LogWriter, StdioConfig};

use super::attach::{Attach, attach, log_only, terminal_size};
use super::options::CreateArgs;

/// `cctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container's id.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// The exit code of a runtime failure, as Docker's.
pub const RUNTIME_FAILED: i32 = 125;

/// Docker's exit code for `error`: 127 for a missing program, 126 for one
/// that cannot run, 1 (Podman's) for one of another architecture, 125
/// otherwise.
pub fn exit_code_of(error: &anyhow::Error) -> i32 {
    match error.downcast_ref::<Error>() {
        Some(Error::CommandNotFound(_)) => 127,
        Some(Error::CommandNotRunnable(_)) => 126,
        Some(Error::ExecFormat(_)) => 1,
        _ => RUNTIME_FAILED,
    }
}

/// Creates the container and prints its id.
pub async fn create(manager: &ContainerManager, args: &CreateArgs) -> anyhow::Result<i32> {
    let options = args.options(manager.root()).await?;
    let container = manager.create(options).await?;
    println!("{}", container.id());
    Ok(0)
}

/// Runs a container in the foreground or, with `-d`, under a monitor.
pub async fn run(manager: &ContainerManager, args: &RunArgs) -> anyhow::Result<i32> {
    // `-it` asks for this terminal's keys; without a terminal there are
    // none to give. Docker refuses with these words and exit code 1.
    if !args.detach
        && args.create.tty
        && args.create.interactive
        && !rustix::termios::isatty(std::io::stdin())
    {
        eprintln!("cctl: the input device is not a TTY");
        return Ok(1);
    }
    let options = args.create.options(manager.root()).await?;
    let mut container = manager.create(options).await?;
    if args.detach {
        return start_detached(&container, container.id().as_str()).await;
    }
    foreground(&mut container, &args.create).await
}

async fn foreground(container: &mut LinuxContainer, args: &CreateArgs) -> anyhow::Result<i32> {
    let stdio = StdioConfig {
        stdin: args.interactive,
        stdout: true,
        stderr: true,
        terminal: args.tty.then(terminal_size),
    };
    let mut process = container.start(stdio).await?;
    let log = LogWriter::open(&container.log_path()).ok();
    let attached = attach(
        &mut process,
        Attach {
            stdin: args.interactive,
            tty: args.tty,
            log,
        },
    )
    .await;
    let status = container.wait().await?;
    attached?;
    Ok(status.code)
}

/// Starts `container` under a monitor process, prints `shown` once it runs
/// and returns 0 (or fails, with its exit code in an [`ExitWith`]).
pub async fn start_detached(container: &LinuxContainer, shown: &str) -> anyhow::Result<i32> {
    start_monitored(container).await?;
    println!("{shown}");
    Ok(0)
}

/// Starts `container` under a monitor process and returns once it runs (or
/// failed to start: an [`ExitWith`] with its exit code and why).
pub async fn start_monitored(container: &LinuxContainer) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find cctl's own path")?;
    let monitor_log = container.log_path().with_file_name("monitor.log");
    let stderr = std::fs::File::create(&monitor_log)
        .with_context(|| format!("cannot create {}", monitor_log.display()))?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("__monitor")
        .arg(container.id().as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    // A container started before has times of its last run: wait for new ones.
    let before = container.state()?;
    let mut monitor = command
        .spawn()
        .context("cannot start the container's monitor")?;
    loop {
        let state = container.state()?;
        match state.status {
            containerization::Status::Running
                if state.started_ms.is_some() && state.started_ms != before.started_ms =>
            {
                return Ok(());
            }
            containerization::Status::Exited
                if state.finished_ms.is_some() && state.finished_ms != before.finished_ms =>
            {
                let _ = monitor.wait();
                let why = state
                    .error
                    .unwrap_or_else(|| "it exited at once".to_owned());
                anyhow::bail!(ExitWith(state.exit_code.unwrap_or(RUNTIME_FAILED), why));
            }
            _ => {}
        }
        if let Some(status) = monitor.try_wait()? {
            let log = std::fs::read_to_string(&monitor_log).unwrap_or_default();
            anyhow::bail!("the container's monitor exited ({status}) before it started: {log}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A failure that carries the exit code to end with.
#[derive(Debug)]
pub struct ExitWith(pub i32, pub String);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitWith {}

/// `cctl __monitor ID`: owns a detached container's VM, logs its output and
/// records its exit; starts it again when its restart policy says so (after
/// 100 ms, doubling up to a minute between restarts, back to 100 ms once a
/// run lasted 10 s, as Docker's).
pub async fn monitor(manager: &ContainerManager, id: &str) -> anyhow::Result<i32> {
    let mut watched = termination_signals();
    let mut delay = Duration::from_millis(100);
    let mut restarting = false;
    loop {
        let mut container = manager.get(id)?;
        // Standard input, for `-i`, from whoever attaches first (see
        // `log_only`).
        let interactive = container.config().interactive;
        let stdio = StdioConfig {
            stdin: interactive,
            stdout: true,
            stderr: true,
            terminal: container.config().terminal.then_some((24, 80)),
        };
        let started = std::time::Instant::now();
        let mut process = container.start(stdio).await?;
        // Counted once it runs again, so its count never says a restart
        // happened while its record still shows the exit before it (Docker
        // says "restarting" then; a waiter that saw "exited" with the new
        // count read the last run's logs before it had begun).
        if restarting {
            container.record_restart()?;
        }
        let log = LogWriter::open(&container.log_path())?;
        // Told to go (SIGTERM, SIGINT, SIGHUP: a shutdown, a kill), the
        // monitor does not just die, which would take the VM down with it
        // and leave the exit unrecorded and the lease held until another
        // command noticed: it kills the container and records the end on
        // its way out.
        let stdin_socket = interactive.then(|| container.stdin_socket());
        let told = tokio::select! {
            () = log_only(&mut process, log, stdin_socket.as_deref(), container.config().terminal) => None,
            signal = told_to_go(&mut watched) => Some(signal),
        };
        if let Some(signal) = told {
            tracing::debug!(signal, "the monitor was told to go: killing its container");
            let _ = container.kill(9).await;
            let status = container.wait().await?;
            return Ok(status.code);
        }
        let status = container.wait().await?;
        let policy = container.config().restart;
        let state = match container.state() {
            Ok(state) => state,
            // Removed meanwhile.
            Err(_) => return Ok(status.code),
        };
        if !policy.restarts(status.code, state.restart_count, state.stopped_by_user) {
            return Ok(status.code);
        }
        if started.elapsed() > Duration::from_secs(10) {
            delay = Duration::from_millis(100);
        }
        tracing::debug!(
            code = status.code,
            ?delay,
            "restarting the container as its policy says"
        );
        let waited = tokio::select! {
            () = tokio::time::sleep(delay) => None,
            signal = told_to_go(&mut watched) => Some(signal),
        };
        if let Some(signal) = waited {
            tracing::debug!(
                signal,
                "the monitor was told to go while waiting to restart"
            );
            return Ok(status.code);
        }
        delay = (delay * 2).min(Duration::from_secs(60));
        // A user's stop during the wait holds the policy off.
        let held = manager
            .get(id)
            .and_then(|c| c.state())
            .map(|s| s.stopped_by_user);
        if !matches!(held, Ok(false)) {
            return Ok(status.code);
        }
        restarting = true;
    }
}

/// Watches SIGTERM, SIGINT and SIGHUP (from the moment it is made: one that
/// comes while the container boots is kept) and returns the first to come.
pub(crate) async fn told_to_go(watched: &mut [(tokio::signal::unix::Signal, i32)]) -> i32 {
    std::future::poll_fn(|cx| {
        for (stream, number) in watched.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*number);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The streams [`told_to_go`] watches, with their numbers.
pub(crate) fn termination_signals() -> Vec<(tokio::signal::unix::Signal, i32)> {
    use tokio::signal::unix::{SignalKind, signal};
    [
        (SignalKind::terminate(), 15),
        (SignalKind::interrupt(), 2),
        (SignalKind::hangup(), 1),
    ]
    .into_iter()
    .filter_map(|(kind, number)| Some((signal(kind).ok()?, number)))
    .collect()
}

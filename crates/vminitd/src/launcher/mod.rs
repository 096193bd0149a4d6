//! The container launcher: how vminitd starts a process inside a container.
//!
//! vminitd is multi-threaded (its async runtime), and namespaces, `setns`
//! into a mount namespace and a dozen other steps want a single-threaded
//! process. So it re-executes itself (`/proc/self/exe` with the hidden
//! subcommand [`LAUNCH_COMMAND`]) for every container process, with the
//! process's standard streams already in place, and the stages talk over a
//! typed [`channel`]:
//!
//! 1. vminitd ([`launch`]): a socketpair, spawns the launcher, sends
//!    [`channel::LaunchConfig`] (spec, new container or exec, terminal,
//!    cgroup).
//! 2. the launcher ([`main`]): joins the cgroup, unshares or joins the
//!    namespaces ([`namespaces`]), then forks, because a new PID namespace
//!    takes effect for children only. It reports the child's pid, waits until
//!    vminitd's reaper has registered it (so an exit is never reaped as an
//!    unknown orphan), and exits.
//! 3. the child ([`init`]): mounts, `pivot_root`, hostname, sysctls, masked
//!    paths, the terminal (opened in the container's `devpts`, its primary
//!    end sent back over the channel), rlimits, capabilities, seccomp, user,
//!    then exec. Success closes the channel (close-on-exec); failure sends
//!    the reason.

mod caps;
pub(crate) mod cgroups;
mod channel;
mod devices;
mod init;
mod mounts;
mod namespaces;
mod paths;
mod rlimits;
mod seccomp;
pub(crate) mod spec;
mod syscalls;
mod user;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use channel::{Channel, Message};
pub(crate) use channel::{
    Failure, FailureKind, LaunchConfig, Target, TerminalSize, describe_errno,
};
use tokio::sync::watch;

use crate::reaper::{Exit, Reaper};

/// The hidden first argument that makes vminitd act as the launcher.
pub(crate) const LAUNCH_COMMAND: &str = "__launch";

/// How long vminitd waits for any one message from the launcher.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A launched container process.
pub(crate) struct Launched {
    /// Its pid in vminitd's PID namespace.
    pub(crate) pid: u32,
    /// Its exit, from the reaper.
    pub(crate) exit: watch::Receiver<Option<Exit>>,
    /// The primary end of its terminal, when it asked for one.
    pub(crate) terminal: Option<OwnedFd>,
}

/// Starts `config`'s process with `stdio` as its standard streams.
/// Blocking: call from a blocking task.
pub(crate) fn launch(
    config: LaunchConfig,
    stdio: [Stdio; 3],
    reaper: &Reaper,
) -> Result<Launched, Failure> {
    let other = |what: &str, err: std::io::Error| Failure::io(what, &err);
    let wants_terminal = config.terminal.is_some();
    let began = std::time::Instant::now();
    let (mut ours, theirs) =
        Channel::pair().map_err(|e| other("create the launcher channel", e))?;
    let [stdin, stdout, stderr] = stdio;
    let fd = theirs.fd().as_raw_fd();
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0("vminitd")
        .arg(LAUNCH_COMMAND)
        .arg(fd.to_string())
        .env_clear()
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: between fork and exec the child only calls fcntl(2), which is
    // async-signal-safe, on a descriptor the parent keeps open until spawn
    // returns.
    unsafe {
        command.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| other("start the launcher (/proc/self/exe)", e))?;
    drop(command);
    drop(theirs);
    tracing::debug!(after = ?began.elapsed(), "launcher spawned");
    ours.set_timeout(STEP_TIMEOUT)
        .map_err(|e| other("launcher channel", e))?;
    ours.send(&Message::Launch(Box::new(config)))
        .map_err(|e| other("send the launch to the launcher", e))?;
    let mut started = None;
    let mut terminal = None;
    loop {
        let message = ours
            .receive()
            .map_err(|e| other("hear from the launcher", e))?;
        match message {
            Some(Message::Started { pid }) => {
                tracing::debug!(after = ?began.elapsed(), pid, "launcher started the process");
                let pid = pid.cast_unsigned();
                let exit = reaper.lock().register(pid);
                started = Some((pid, exit));
                // The launcher may be gone already when the process failed;
                // its failure message is then still to be read.
                let _ = ours.send(&Message::Registered);
            }
            Some(Message::Warning(warning)) => tracing::warn!("launcher: {warning}"),
            // The process's stage may send it before the launcher's `Started`.
            Some(Message::Terminal { primary }) => {
                terminal = Some(primary.ok_or_else(|| {
                    Failure::new(
                        FailureKind::Other,
                        "the launcher's terminal message came without its descriptor",
                    )
                })?);
            }
            Some(Message::Failed(failure)) => return Err(failure),
            Some(other) => {
                return Err(Failure::new(
                    FailureKind::Other,
                    format!("the launcher sent an unexpected {other:?}"),
                ));
            }
            None => {
                tracing::debug!(after = ?began.elapsed(), "launcher done (process executed)");
                let (pid, exit) = started.ok_or_else(|| {
                    Failure::new(
                        FailureKind::Other,
                        "the launcher ended without starting the process",
                    )
                })?;
                if wants_terminal && terminal.is_none() {
                    return Err(Failure::new(
                        FailureKind::Other,
                        "the launcher started the process without its terminal",
                    ));
                }
                return Ok(Launched {
                    pid,
                    exit,
                    terminal,
                });
            }
        }
    }
}

/// The launcher's entry point: `vminitd __launch <channel fd>`. Never starts
/// the async runtime: it must stay single-threaded.
pub(crate) fn main(args: &[String]) -> ExitCode {
    let Some(fd) = args.first().and_then(|a| a.parse::<i32>().ok()) else {
        eprintln!("vminitd {LAUNCH_COMMAND}: the channel descriptor is missing");
        return ExitCode::from(2);
    };
    // SAFETY: vminitd passed this descriptor (its end of the socketpair, made
    // inheritable for this exec only) and nothing else in this fresh process
    // owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // The container's process must not inherit it.
    if rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).is_err() {
        eprintln!(
            "vminitd {LAUNCH_COMMAND}: descriptor {} is not open",
            fd.as_raw_fd()
        );
        return ExitCode::from(2);
    }
    let mut channel = Channel::from_fd(fd);
    let config = match channel.receive() {
        Ok(Some(Message::Launch(config))) => config,
        _ => return ExitCode::from(2),
    };
    match stage(&config, &mut channel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = channel.send(&Message::Failed(failure));
            ExitCode::FAILURE
        }
    }
}

/// Joins the cgroup and namespaces, forks the process and reports it.
fn stage(config: &LaunchConfig, channel: &mut Channel) -> Result<(), Failure> {
    if let Some(group) = &config.cgroup {
        cgroups::join(group)
            .map_err(|e| Failure::io(format!("join cgroup {}", group.display()), &e))?;
    }
    match &config.target {
        Target::Create { .. } => namespaces::create(&config.spec)?,
        Target::Exec { init_pid } => namespaces::join_running(&config.spec, *init_pid)?,
    }
    // SAFETY: the launcher is single-threaded (it never starts a runtime or
    // a thread), so the child is a full copy with no lock held elsewhere.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(Failure::io("fork", &std::io::Error::last_os_error())),
        0 => {
            let failure = init::run(config, channel);
            let _ = channel.send(&Message::Failed(failure));
            std::process::exit(127);
        }
        pid => {
            channel
                .send(&Message::Started { pid })
                .map_err(|e| Failure::io("report the pid", &e))?;
            // Wait until vminitd has registered the pid (or gave up).
            let _ = channel.receive();
            Ok(())
        }
    }
}

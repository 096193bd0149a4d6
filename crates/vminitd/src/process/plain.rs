//! Plain processes: run in the guest itself (vminitd's own namespaces and
//! root), spawned directly by vminitd without the launcher.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use tokio::sync::watch;
use tonic::Status;

use super::{DEFAULT_PATH, Processes, State, already_started, internal, lock};
use crate::launcher::describe_errno;
use crate::pty::{self, Terminal};

impl Processes {
    /// Starts a process that runs in the guest itself.
    pub(super) fn start_plain(&self, id: &str) -> Result<u32, Status> {
        let mut table = lock(&self.table);
        let entry = table
            .get_mut(id)
            .ok_or_else(|| Status::not_found(format!("no process {id}")))?;
        let State::Created {
            stdin,
            stdout,
            stderr,
        } = &mut entry.state
        else {
            return Err(already_started(id));
        };
        let request = &entry.request;
        let program = &request.args[0];
        let cwd = if request.cwd.is_empty() {
            "/"
        } else {
            &request.cwd
        };
        if !std::path::Path::new(cwd).is_dir() {
            return Err(Status::not_found(format!(
                "process {id}: working directory {cwd}: no such directory"
            )));
        }
        let mut command = Command::new(program);
        command
            .args(&request.args[1..])
            .env_clear()
            .current_dir(cwd);
        if !request.env.iter().any(|kv| kv.starts_with("PATH=")) {
            command.env("PATH", &DEFAULT_PATH["PATH=".len()..]);
        }
        for kv in &request.env {
            if let Some((key, value)) = kv.split_once('=') {
                command.env(key, value);
            }
        }
        let (drained, relay) = match entry.terminal.as_ref().and_then(Terminal::pty) {
            Some(pty) => {
                let secondary = pty
                    .secondary
                    .as_ref()
                    .ok_or_else(|| Status::internal("terminal already handed out"))?;
                let dup = || secondary.try_clone().map(Stdio::from);
                command
                    .stdin(dup().map_err(internal)?)
                    .stdout(dup().map_err(internal)?)
                    .stderr(dup().map_err(internal)?);
                // SAFETY: between fork and exec the child only makes the
                // async-signal-safe calls setsid(2) and ioctl(2).
                unsafe {
                    command.pre_exec(|| {
                        rustix::process::setsid()?;
                        rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
                        Ok(())
                    });
                }
                (None, Some((stdin.take(), stdout.take())))
            }
            None => {
                command
                    .stdin(stdin.take().map_or_else(Stdio::null, Stdio::from))
                    .stdout(stdout.take().map_or_else(Stdio::null, Stdio::from))
                    .stderr(stderr.take().map_or_else(Stdio::null, Stdio::from));
                // The process writes to the host directly: nothing to drain.
                (Some(watch::channel(true).1), None)
            }
        };
        let mut guard = self.reaper.lock();
        let child = command.spawn().map_err(|err| {
            let message = format!("exec {program}: {}", describe_errno(&err));
            match err.kind() {
                std::io::ErrorKind::NotFound => Status::not_found(message),
                std::io::ErrorKind::PermissionDenied => Status::permission_denied(message),
                _ => Status::failed_precondition(message),
            }
        })?;
        let pid = child.id();
        let exit = guard.register(pid);
        drop(guard);
        // The child holds its own copies; ours would keep the streams open.
        drop(command);
        let drained = match (
            drained,
            relay,
            entry.terminal.as_ref().and_then(Terminal::pty),
        ) {
            (Some(drained), _, _) => drained,
            (None, Some((input, output)), Some(pty)) => {
                pty::relay(&pty.primary, input, output).map_err(internal)?
            }
            _ => return Err(Status::internal("terminal state is inconsistent")),
        };
        if let Some(pty) = entry.terminal.as_mut().and_then(Terminal::pty_mut) {
            // Close our copy of the secondary end so the relay sees the end.
            pty.secondary = None;
        }
        entry.state = State::Running { pid, exit, drained };
        tracing::debug!(id, pid, "started {program}");
        Ok(pid)
    }
}

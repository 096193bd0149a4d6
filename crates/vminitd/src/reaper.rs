//! The reaper: waits for every child, ours or reparented to us.
//!
//! Processes are spawned under the reaper's lock and registered before it is
//! released, so a child that exits at once is never reaped unregistered;
//! exits of processes nobody registered (orphans reparented to PID 1 or to
//! this subreaper) are reaped and dropped, so no zombie stays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::process::{Pid, WaitOptions, WaitStatus};
use tokio::sync::watch;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It called exit with this status.
    Code(i32),
    /// This signal ended it.
    Signal(i32),
}

impl From<WaitStatus> for Exit {
    fn from(status: WaitStatus) -> Self {
        match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            // Stopped or continued children are not reported (no WUNTRACED).
            (None, None) => Exit::Code(-1),
        }
    }
}

/// Watchers of registered children, keyed by pid.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reaper {
    children: Arc<Mutex<HashMap<i32, watch::Sender<Option<Exit>>>>>,
}

/// Held while spawning: the reaper cannot run until the child is registered.
pub(crate) struct SpawnGuard<'a> {
    children: MutexGuard<'a, HashMap<i32, watch::Sender<Option<Exit>>>>,
}

impl SpawnGuard<'_> {
    /// Registers a just-spawned child; the receiver sees its exit.
    pub(crate) fn register(&mut self, pid: u32) -> watch::Receiver<Option<Exit>> {
        let (tx, rx) = watch::channel(None);
        self.children.insert(pid.cast_signed(), tx);
        rx
    }
}

impl Reaper {
    /// Locks the reaper for a spawn.
    pub(crate) fn lock(&self) -> SpawnGuard<'_> {
        SpawnGuard {
            children: self
                .children
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Reaps on every SIGCHLD, forever.
    pub(crate) fn spawn_task(&self) -> std::io::Result<()> {
        let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        let reaper = self.clone();
        tokio::spawn(async move {
            loop {
                reaper.reap_all();
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// Collects every child that has ended.
    fn reap_all(&self) {
        let mut guard = self.lock();
        // `wait` is waitpid(-1): any child, whatever its process group. It
        // stops with Ok(None) when none has ended and Err(ECHILD) when there
        // are none at all.
        while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
            let pid = Pid::as_raw(Some(pid));
            if let Some(tx) = guard.children.remove(&pid) {
                let _ = tx.send(Some(Exit::from(status)));
            } else {
                tracing::debug!("reaped orphan {pid}");
            }
        }
    }
}

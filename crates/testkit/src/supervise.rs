//! Child processes that never outlive the test binary.
//!
//! Each child is started with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills
//! it when its parent dies, also when the test binary is killed with SIGKILL
//! and no destructor runs. The parent-death signal fires when the *thread* that
//! forked the child exits, not the process; tests run on short-lived threads, so
//! every child is forked from one spawner thread that lives as long as the
//! process. [`Supervised`] kills and reaps the child when dropped, which covers
//! the normal end of a test and a panic.

use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

use crate::command::start_error;
use crate::{Error, Result};

/// The spawner thread's answer: the command back (for error messages) and the child.
type SpawnReply = (Command, std::io::Result<Child>);

/// A request to the spawner thread: the command, and where to send the reply.
type SpawnRequest = (Command, Sender<SpawnReply>);

/// The spawner thread's inbox, started on first use.
fn spawner() -> &'static Mutex<Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (requests, inbox) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("testkit-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in inbox {
                    // The receiver only goes away if the requesting test died.
                    let child = spawn_with_death_signal(&mut command);
                    let _ = reply.send((command, child));
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| panic!("cannot start the test kit's spawner thread: {e}"));
        Mutex::new(requests)
    })
}

/// Spawns `command` so that it receives SIGKILL when this thread exits.
fn spawn_with_death_signal(command: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // two async-signal-safe system calls (prctl and getppid); it allocates
    // nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The parent may have died between fork and prctl; then nobody
            // would ever send the signal, so refuse to run at all.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other(
                    "the test process exited during spawn",
                ));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// A child process killed and reaped when dropped.
#[derive(Debug)]
pub struct Supervised {
    child: Child,
    name: String,
}

impl Supervised {
    /// Starts `command` under supervision; `name` is used in messages.
    pub fn spawn(name: &str, command: Command) -> Result<Self> {
        let stopped = || Error::Unexpected("the test kit's spawner thread has stopped".into());
        let (reply, answer) = channel();
        spawner()
            .lock()
            .map_err(|_| Error::Unexpected("the test kit's spawner lock is poisoned".into()))?
            .send((command, reply))
            .map_err(|_| stopped())?;
        let (command, outcome) = answer.recv().map_err(|_| stopped())?;
        let child = outcome.map_err(|source| start_error(&command, source))?;
        Ok(Self {
            child,
            name: name.to_owned(),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child has exited, and how, without waiting.
    pub fn try_exit_status(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.child.try_wait().map_err(|source| Error::Io {
            action: "cannot wait for",
            path: self.name.clone().into(),
            source,
        })
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // Both fail only when the child has already been reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

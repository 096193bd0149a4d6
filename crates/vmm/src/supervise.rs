//! Children that die with their owner.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
//! not the process. A VM started from a short-lived thread (a test thread, a
//! tokio blocking-pool thread that retires after 10 s idle) would be killed
//! with it. So every child is forked by one thread that lives as long as the
//! process: the signal then fires exactly when the owner process dies, SIGKILL
//! included.
//!
//! Every child also gets a process group of its own, so the keyboard's
//! signals (Ctrl-C, Ctrl-\) reach only the owner, which decides what the
//! guest gets: before, a Ctrl-C meant for a container killed its QEMU.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

type Request = (Command, Sender<std::io::Result<Child>>);

/// The spawner thread's inbox.
fn spawner() -> &'static Mutex<Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (sender, receiver) = channel::<Request>();
        std::thread::Builder::new()
            .name("cz-vmm-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _ = reply.send(command.spawn());
                }
            })
            .map_err(|err| tracing::error!("cannot start the spawner thread: {err}"))
            .ok();
        Mutex::new(sender)
    })
}

/// Spawns `command` so that the child gets SIGKILL when this process dies,
/// in a process group of its own (out of reach of the terminal's signals).
pub(crate) fn spawn_owned(mut command: Command) -> std::io::Result<Child> {
    command.process_group(0);
    // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            Ok(())
        });
    }
    let (reply, answer) = channel();
    let sent = spawner()
        .lock()
        .map_err(|_| std::io::Error::other("the spawner thread's lock is poisoned"))?
        .send((command, reply));
    if sent.is_err() {
        return Err(std::io::Error::other("the spawner thread is gone"));
    }
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// Lets the child of `command` inherit `fd` under its own number: the
/// close-on-exec flag is cleared in the child only, between fork and exec,
/// so no other child (the spawner forks them all) gets it. `fd` must stay
/// open until `command` is spawned.
pub(crate) fn inherit_fd(command: &mut Command, fd: BorrowedFd<'_>) {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl(2) is async-signal-safe, and the closure touches no
    // memory of the parent beyond the copied number.
    unsafe {
        command.pre_exec(move || {
            // SAFETY: the caller keeps `fd` open until the spawn returns, so
            // `raw` is open in the forked child.
            let fd = BorrowedFd::borrow_raw(raw);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
}

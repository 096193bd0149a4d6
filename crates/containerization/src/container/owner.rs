//! The process that owns a running container's VM (`cctl run`, or a
//! detached container's monitor), known by more than its PID: a PID is
//! reused once its process is gone (a crash, a reboot), so the state also
//! records the owner's start time, field 22 of `/proc/<pid>/stat` in clock
//! ticks since boot, and a PID is the owner only while both match. A process
//! is signalled only through a pidfd opened before its start time is checked
//! again, so the signal cannot reach a process that took the PID meanwhile.
//!
//! An owner also keeps a [`Heartbeat`]: it sets the modification time of the
//! container's `owner.alive` every [`HEARTBEAT`] while it owns the VM. An
//! owner killed outright cannot record its end, and its VM dies with it;
//! whoever notices later takes the end from the last beat ([`last_beat_ms`]),
//! not from the moment it noticed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

/// How often a live owner beats.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// The owner's beat: a task that sets the file's modification time to now
/// every [`HEARTBEAT`]; it stops when dropped.
#[derive(Debug)]
pub(crate) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    /// Starts beating on `path` (created when missing). Needs a tokio runtime.
    pub(crate) fn start(path: PathBuf) -> std::io::Result<Self> {
        let file = std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.set_modified(SystemTime::now())?;
        Ok(Self(tokio::spawn(async move {
            let mut beats = tokio::time::interval(HEARTBEAT);
            loop {
                beats.tick().await;
                if let Err(error) = file.set_modified(SystemTime::now()) {
                    tracing::debug!(path = %path.display(), %error, "heartbeat missed");
                }
            }
        })))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// When the owner beating on `path` last beat (ms since the Unix epoch), if
/// it ever did.
pub(crate) fn last_beat_ms(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

/// The state letter and start time of process `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces and parentheses: the
    // fields after it start after its last ") ". That is field 3, the state.
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 22 is the 20th from field 3.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// When process `pid` started, in clock ticks since boot; `None` when there
/// is no such process.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether `pid` is a live process (not a zombie) that started at `start`.
/// Without a recorded start time nothing proves the PID is still the owner,
/// so it is not.
pub(crate) fn is_alive(pid: u32, start: Option<u64>) -> bool {
    match (stat(pid), start) {
        (Some((state, started)), Some(start)) => {
            started == start && !matches!(state, 'Z' | 'X' | 'x')
        }
        _ => false,
    }
}

/// Sends SIGKILL to the owner `pid` that started at `start`; `false` when
/// the PID is not (or no longer) that process, which is then left alone.
pub(crate) fn kill(pid: u32, start: Option<u64>) -> std::io::Result<bool> {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Ok(false);
    };
    let pidfd = match pidfd_open(raw, PidfdFlags::empty()) {
        Ok(pidfd) => pidfd,
        Err(rustix::io::Errno::SRCH) => return Ok(false),
        Err(errno) => return Err(errno.into()),
    };
    // The pidfd names the process that had the PID when it was opened; if
    // the PID still shows the owner's start time now, that process is it.
    if !is_alive(pid, start) {
        return Ok(false);
    }
    match pidfd_send_signal(&pidfd, Signal::KILL) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_heartbeat_moves_the_time_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("owner.alive");
        assert_eq!(last_beat_ms(&path), None);
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::write(&path, b"").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let beat = Heartbeat::start(path.clone()).unwrap();
        let started = last_beat_ms(&path).unwrap();
        let now = || {
            u64::try_from(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap()
        };
        assert!(now() - started < 1000, "it beats at once");
        tokio::time::sleep(HEARTBEAT * 2 + Duration::from_millis(200)).await;
        let later = last_beat_ms(&path).unwrap();
        assert!(later > started, "it beats again: {started} -> {later}");
        drop(beat);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stopped = last_beat_ms(&path).unwrap();
        tokio::time::sleep(HEARTBEAT * 2).await;
        assert_eq!(last_beat_ms(&path).unwrap(), stopped, "it stopped");
    }

    #[test]
    fn a_pid_is_the_owner_only_with_its_start_time() {
        let me = std::process::id();
        let start = start_time(me);
        assert!(start.is_some());
        assert!(is_alive(me, start));
        assert!(!is_alive(me, None), "a PID alone proves nothing");
        assert!(
            !is_alive(me, start.map(|s| s + 1)),
            "another process's time"
        );
    }

    #[test]
    fn only_the_recorded_process_is_killed() {
        let mut sleep = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = sleep.id();
        let start = start_time(pid);
        assert!(!kill(pid, start.map(|s| s + 1)).unwrap());
        assert!(!kill(pid, None).unwrap());
        assert!(sleep.try_wait().unwrap().is_none(), "left alone");
        assert!(kill(pid, start).unwrap());
        let status = sleep.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
}

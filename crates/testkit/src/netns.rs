//! Network namespaces: an isolated host for each test, and stand-in guests.
//!
//! [`enter_new_network_namespace`] moves the calling *thread* into a fresh,
//! empty namespace, so a test can create bridges, addresses, routes and
//! nftables tables without touching the machine or other tests; the namespace
//! disappears with the thread. Processes the thread starts inherit it. Work a
//! runtime moves to other threads (tokio's blocking pool) does not, so such a
//! test must keep its network work on its own thread (a current-thread tokio
//! runtime does).
//!
//! [`NamedNetns`] is a namespace made by `ip netns add`, standing in for a
//! container's VM in network tests; it is deleted on drop.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::command::run;
use crate::error::IoContext;
use crate::{Error, Result};

/// Moves the calling thread into a new network namespace holding only `lo`
/// (down). Needs root.
pub fn enter_new_network_namespace() -> Result<()> {
    // SAFETY: only the network namespace is unshared; the file descriptor
    // table (the hazard of `unshare_unsafe`) stays shared with other threads.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }.map_err(|e| {
        Error::Io {
            action: "cannot unshare the network namespace (root is needed)",
            path: "/proc/thread-self/ns/net".into(),
            source: e.into(),
        }
    })
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct NamedNetns {
    name: String,
}

impl NamedNetns {
    /// Creates a namespace with a name unique to this process.
    pub fn new() -> Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cztest-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let namespace = Self { name };
        namespace.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its file under `/run/netns`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Opens the namespace, for moving a link into it.
    pub fn open(&self) -> Result<File> {
        let path = self.path();
        File::open(&path).at("cannot open", path)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `argv` inside the namespace and returns its standard output.
    pub fn exec(&self, argv: &[&str]) -> Result<String> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::Unexpected("NamedNetns::exec needs a program".into()))?;
        let output = run(self.command(program).args(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        // Fails only if the namespace is already gone.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

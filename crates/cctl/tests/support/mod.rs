//! One test's world for container commands: a network namespace of its own
//! (its bridge, taps and nftables table vanish with it), a state root whose
//! kernels, tools and initramfs cache are the real ones, and a loopback
//! registry holding the busybox fixture, pulled into the store.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use containerization_testkit::{Fixture, NamedNetns, Registry, fixture, shared_state_root};

/// What one `cctl` run left.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub struct World {
    pub netns: NamedNetns,
    pub root: tempfile::TempDir,
    pub registry: Registry,
    /// The busybox image's reference in the registry (and the store).
    pub image: String,
}

impl World {
    pub fn new() -> Self {
        Self::new_in(&std::env::temp_dir())
    }

    /// A world whose state root is a new folder in `parent` (a small file
    /// system to fill, say).
    pub fn new_in(parent: &Path) -> Self {
        let netns = NamedNetns::new().expect("network namespace");
        let root = shared_state_root(parent, "cz-containers-").expect("state root");
        let registry = Registry::anonymous().expect("registry");
        let image = registry
            .push(
                &fixture(Fixture::Busybox).expect("busybox fixture"),
                "test/busybox:1",
            )
            .expect("push busybox");
        let world = Self {
            netns,
            root,
            registry,
            image,
        };
        // The registry listens on the host's loopback, outside the namespace.
        let pulled = world.cctl_on_host(&["image", "pull", &world.image]);
        assert_eq!(pulled.code, 0, "pull: {pulled:?}");
        world
    }

    /// `cctl args…` inside the namespace, with this world's state root.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.netns.command(env!("CARGO_BIN_EXE_cctl"));
        command
            .args(args)
            .env("CZ_ROOT", self.root.path())
            .env("CZ_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    /// Runs `cctl args…` outside the namespace (where the registry is).
    pub fn cctl_on_host(&self, args: &[&str]) -> Ran {
        Command::new(env!("CARGO_BIN_EXE_cctl"))
            .args(args)
            .env("CZ_ROOT", self.root.path())
            .stdin(Stdio::null())
            .output()
            .expect("cctl runs")
            .into()
    }

    /// Runs `cctl args…` and collects what it printed.
    pub fn cctl(&self, args: &[&str]) -> Ran {
        self.command(args).output().expect("cctl runs").into()
    }

    /// Runs `cctl args…`, killed after `seconds` (then its code is -1 and
    /// its stderr ends with "killed after N s").
    pub fn cctl_within(&self, seconds: u64, args: &[&str]) -> Ran {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cctl runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while child.try_wait().expect("try_wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let mut ran: Ran = child.wait_with_output().expect("cctl ends").into();
                ran.code = -1;
                ran.stderr.push_str(&format!("\nkilled after {seconds} s"));
                return ran;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.wait_with_output().expect("cctl ends").into()
    }

    /// Runs `cctl args…` with `input` on standard input.
    pub fn cctl_with_input(&self, args: &[&str], input: &[u8]) -> Ran {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cctl runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        child.wait_with_output().expect("cctl ends").into()
    }

    /// script(1) running `shell` in a pseudo-terminal inside the namespace,
    /// with this world's state root; its standard input is empty.
    pub fn in_terminal(&self, shell: &str) -> Command {
        let mut command = self.netns.command("script");
        command
            .args(["-qec", shell, "/dev/null"])
            .env("CZ_ROOT", self.root.path())
            .stdin(Stdio::null());
        command
    }

    /// `cctl run --rm IMAGE args…`, asserting nothing.
    pub fn run(&self, flags: &[&str], args: &[&str]) -> Ran {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(flags);
        all.push(&self.image);
        all.extend_from_slice(args);
        self.cctl(&all)
    }

    /// `cctl run -d --name NAME flags… IMAGE args…`, asserting it started.
    pub fn detach(&self, name: &str, flags: &[&str], args: &[&str]) {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(flags);
        all.push(&self.image);
        all.extend_from_slice(args);
        let ran = self.cctl(&all);
        assert_eq!(ran.code, 0, "run -d {name}: {ran:?}");
        assert_eq!(ran.stdout.trim().len(), 64, "an id is printed: {ran:?}");
    }

    /// Waits (up to 120 s) until container `name` runs; its id.
    pub fn id_once_running(&self, name: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let ran = self.cctl(&["inspect", name]);
            if ran.code == 0 && ran.stdout.contains("\"Running\": true") {
                let json: serde_json::Value =
                    serde_json::from_str(&ran.stdout).expect("inspect JSON");
                return json[0]["Id"].as_str().expect("an id").to_owned();
            }
            assert!(std::time::Instant::now() < deadline, "never ran: {ran:?}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// `cctl inspect NAME` as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let ran = self.cctl(&["inspect", name]);
        assert_eq!(ran.code, 0, "inspect {name}: {ran:?}");
        let all: serde_json::Value = serde_json::from_str(&ran.stdout).expect("inspect JSON");
        all[0].clone()
    }

    /// The containers' folder.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.path().join("containers")
    }

    /// Containers with a folder.
    pub fn container_folders(&self) -> Vec<String> {
        match std::fs::read_dir(self.containers_dir()) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The namespace's links whose names start with `prefix`.
    pub fn links(&self, prefix: &str) -> Vec<String> {
        let out = self
            .netns
            .exec(&["ip", "-o", "link", "show"])
            .expect("ip link");
        out.lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap_or(name).to_owned())
            .filter(|name| name.starts_with(prefix))
            .collect()
    }

    /// Asserts that containers had taps and that each is back in the
    /// network's pool: no VM holds one open (no carrier).
    pub fn assert_taps_idle(&self) {
        let taps = self.links("czt");
        assert!(!taps.is_empty(), "the containers had taps");
        for tap in taps {
            let shown = self
                .netns
                .exec(&["ip", "-o", "link", "show", &tap])
                .expect("ip link show");
            assert!(shown.contains("NO-CARRIER"), "{shown}");
        }
    }

    /// Leases held on every network.
    pub fn leases(&self) -> usize {
        let dir = self.root.path().join("network");
        let mut count = 0;
        for entry in walk(&dir) {
            let name = entry.file_name().map(|n| n.to_string_lossy().into_owned());
            if let Some(name) = name
                && name.starts_with("leases-")
                && name.ends_with(".json")
                && let Ok(text) = std::fs::read_to_string(&entry)
            {
                let json: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                count += json.as_array().map_or(0, Vec::len);
            }
        }
        count
    }
}

impl Drop for World {
    /// Removes what a failed test left running, before its folder goes.
    fn drop(&mut self) {
        let pods = self.cctl(&["pod", "ls", "-q"]);
        for id in pods.stdout.split_whitespace() {
            let _ = self.cctl(&["pod", "rm", "-f", id]);
        }
        let listed = self.cctl(&["ls", "-aq"]);
        for id in listed.stdout.split_whitespace() {
            let _ = self.cctl(&["rm", "-f", id]);
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// QEMU processes whose command line mentions `needle`.
pub fn qemu_with(needle: &str) -> Vec<u32> {
    processes_with("qemu-system", needle)
}

/// Processes whose command line starts with `program` and mentions `needle`.
pub fn processes_with(program: &str, needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with(program) && cmdline.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

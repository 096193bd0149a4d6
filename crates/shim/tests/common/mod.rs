//! What the shim's tests share: a private containerd (in a network
//! namespace, on a state root of its own) with our runtime, a registry
//! holding busybox, and what they look at on the host.

#![allow(dead_code)] // Each test binary uses a part.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use containerization_testkit::{
    Containerd, Fixture, NamedNetns, Registry, fixture, shared_state_root,
};

pub const RUNTIME: &str = "io.containerd.cz.v2";

/// A containerd with our runtime, and busybox pulled into it.
pub struct World {
    /// Our state root (the shims' `CZ_ROOT`).
    pub root: tempfile::TempDir,
    _registry: Registry,
    /// Busybox, in the registry and pulled.
    pub image: String,
    /// The sandbox image, when CRI is on.
    pub pause: Option<String>,
    pub containerd: Containerd,
    _netns: NamedNetns,
}

impl World {
    /// containerd with its CRI plugin off; busybox pulled into the
    /// `default` namespace.
    pub fn new() -> Self {
        Self::start(false)
    }

    /// containerd with its CRI plugin on, our runtime as handler `cz`;
    /// busybox and the sandbox image pulled into CRI's `k8s.io` namespace
    /// (containerd runs in its own network namespace, away from the
    /// registry, so `ctr` pulls for it as a kubelet's image puller would).
    pub fn with_cri() -> Self {
        Self::start(true)
    }

    fn start(cri: bool) -> Self {
        let netns = NamedNetns::new().expect("network namespace");
        let root = shared_state_root(&std::env::temp_dir(), "cz-shim-").expect("state root");
        let registry = Registry::anonymous().expect("registry");
        let image = registry
            .push(
                &fixture(Fixture::Busybox).expect("busybox"),
                "test/busybox:1",
            )
            .expect("push busybox");
        let pause = cri.then(|| {
            registry
                .push(&fixture(Fixture::Pause).expect("pause"), "test/pause:1")
                .expect("push pause")
        });
        let shim = Path::new(env!("CARGO_BIN_EXE_containerd-shim-cz-v2"));
        let containerd = Containerd::start(
            shim.parent().expect("the shim's folder"),
            &[("CZ_ROOT", root.path())],
            Some(&netns),
            pause.as_deref(),
        )
        .expect("containerd");
        let world = Self {
            root,
            _registry: registry,
            image,
            pause,
            containerd,
            _netns: netns,
        };
        let namespace = if cri { "k8s.io" } else { "default" };
        for image in [Some(&world.image), world.pause.as_ref()]
            .into_iter()
            .flatten()
        {
            let pulled = world.ctr(&["-n", namespace, "image", "pull", "--plain-http", image]);
            assert!(pulled.status.success(), "pull: {}", text(&pulled.stderr));
        }
        world
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        self.containerd.ctr(args).output().expect("ctr runs")
    }

    /// `ctr run --rm --runtime io.containerd.cz.v2 IMAGE id args…`.
    pub fn run(&self, id: &str, args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--runtime", RUNTIME, &self.image, id];
        all.extend_from_slice(args);
        self.ctr(&all)
    }

    /// The state of task `id` in `ctr task ls`, if listed.
    pub fn task_status(&self, id: &str) -> Option<String> {
        let listed = self.ctr(&["task", "ls"]);
        text(&listed.stdout)
            .lines()
            .find(|line| line.split_whitespace().next() == Some(id))
            .and_then(|line| line.split_whitespace().nth(2).map(str::to_owned))
    }

    /// Waits up to `seconds` for `done`.
    pub fn within(&self, seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{what} within {seconds} s; containerd's log:\n{}",
                self.containerd.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Entries of the state root's `dir` (containers, pods).
    pub fn entries(&self, dir: &str) -> Vec<String> {
        std::fs::read_dir(self.root.path().join(dir))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The bases built from containerd's snapshots: `rootfs/*.ext4`
    /// files with their key (`*.snapshot`) beside them.
    pub fn snapshot_bases(&self) -> Vec<String> {
        let dir = self.root.path().join("rootfs");
        let mut bases: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter_map(|name| name.strip_suffix(".ext4").map(str::to_owned))
            .filter(|stem| dir.join(format!("{stem}.snapshot")).exists())
            .collect();
        bases.sort();
        bases
    }

    /// QEMU processes of this state root's pods and containers (their run
    /// folders are named by their ids).
    pub fn vms(&self) -> usize {
        let pods = self
            .entries("pods")
            .into_iter()
            .map(|id| format!("p-{}", &id[..14]));
        let containers = self
            .entries("containers")
            .into_iter()
            .map(|id| id[..16].to_owned());
        pods.chain(containers)
            .map(|needle| qemu_with(&needle))
            .sum()
    }

    /// Address leases held on this state root's networks.
    pub fn leases(&self) -> usize {
        let dir = self.root.path().join("network");
        let mut count = 0;
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    stack.push(path);
                } else if name.starts_with("leases-") && name.ends_with(".json") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let json: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    count += json.as_array().map_or(0, Vec::len);
                }
            }
        }
        count
    }

    /// Mounts under this containerd's folders (a task's root file system
    /// the shim mounted on its bundle, say).
    pub fn mounts(&self) -> Vec<String> {
        let dir = self
            .containerd
            .socket()
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(&dir))
            .map(str::to_owned)
            .collect()
    }

    /// Asserts nothing of the tasks is left: no shim, no VM, no container,
    /// no pod, no address lease, no mount.
    pub fn assert_clean(&self) {
        self.within(15, "the shims exit", || self.containerd.shims().is_empty());
        assert_eq!(self.vms(), 0);
        assert!(
            self.entries("containers").is_empty(),
            "{:?}",
            self.entries("containers")
        );
        assert!(
            self.entries("pods").is_empty(),
            "{:?}",
            self.entries("pods")
        );
        assert_eq!(self.leases(), 0, "an address is still leased");
        assert!(self.mounts().is_empty(), "{:?}", self.mounts());
    }
}

/// The host's kernel release, as `uname -r` prints it.
pub fn host_kernel() -> String {
    text(
        &Command::new("uname")
            .arg("-r")
            .output()
            .expect("uname")
            .stdout,
    )
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// QEMU processes whose command line mentions `needle`.
pub fn qemu_with(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("qemu-system") && cmdline.contains(needle)
        })
        .count()
}

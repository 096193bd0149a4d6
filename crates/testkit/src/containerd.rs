//! A private containerd: its own root, state, sockets and configuration in
//! a temporary folder, started in a network namespace when one is given,
//! killed with its owner like the registry. Shims it started are killed
//! when it is dropped, so no VM outlives a test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::supervise::Supervised;
use crate::{Error, NamedNetns, Result};

/// A running containerd for one test.
#[derive(Debug)]
pub struct Containerd {
    dir: tempfile::TempDir,
    /// Killed when dropped, after the shims.
    _process: Supervised,
}

impl Containerd {
    /// Starts containerd with `path` prepended to its `PATH` (where it
    /// finds shims) and `env` set for it and its shims, inside `netns` when
    /// given. Its CRI plugin is off, or on when `sandbox_image` names the
    /// pods' sandbox image: CNI then reads a private, empty configuration,
    /// so only host-network pods run.
    pub fn start(
        path: &Path,
        env: &[(&str, &Path)],
        netns: Option<&NamedNetns>,
        sandbox_image: Option<&str>,
    ) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("cz-containerd-")
            .tempdir()
            .map_err(|source| Error::Io {
                action: "cannot make",
                path: std::env::temp_dir(),
                source,
            })?;
        let root = dir.path();
        let (disabled, cri) = match sandbox_image {
            Some(image) => (
                "",
                format!(
                    "[plugins.\"io.containerd.grpc.v1.cri\"]\n  \
                     sandbox_image = \"{image}\"\n\
                     [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  \
                     bin_dir = \"{root}/cni/bin\"\n  \
                     conf_dir = \"{root}/cni/conf\"\n\
                     [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  \
                     default_runtime_name = \"cz\"\n",
                    root = root.display()
                ),
            ),
            None => ("\"io.containerd.grpc.v1.cri\"", String::new()),
        };
        let config = format!(
            "version = 2\n\
             root = \"{root}/root\"\n\
             state = \"{root}/state\"\n\
             disabled_plugins = [{disabled}]\n\
             [grpc]\n  address = \"{root}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{root}/containerd.sock.ttrpc\"\n\
             {cri}\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.cz]\n  \
             runtime_type = \"io.containerd.cz.v2\"\n",
            root = root.display()
        );
        let config_path = root.join("config.toml");
        std::fs::write(&config_path, config).map_err(|source| Error::Io {
            action: "cannot write",
            path: config_path.clone(),
            source,
        })?;
        let log =
            std::fs::File::create(root.join("containerd.log")).map_err(|source| Error::Io {
                action: "cannot create",
                path: root.join("containerd.log"),
                source,
            })?;
        let mut command = match netns {
            Some(netns) => netns.command("containerd"),
            None => Command::new("containerd"),
        };
        let search = format!(
            "{}:{}",
            path.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .arg("--config")
            .arg(&config_path)
            .env("PATH", search)
            .stdout(log.try_clone().map_err(|source| Error::Io {
                action: "cannot duplicate",
                path: root.join("containerd.log"),
                source,
            })?)
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let process = Supervised::spawn("containerd", command)?;
        let containerd = Self {
            dir,
            _process: process,
        };
        containerd.wait_ready()?;
        Ok(containerd)
    }

    /// Its gRPC socket, for `ctr -a` and CRI clients.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a <socket> args…`, run on the host's network.
    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ctr");
        command.arg("-a").arg(self.socket()).args(args);
        command
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .ctr(&["version"])
                .output()
                .is_ok_and(|out| out.status.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::NotReady {
                    what: "containerd".to_owned(),
                    seconds: 30,
                    detail: format!("its log:\n{}", self.log()),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pids of the shims this containerd started.
    pub fn shims(&self) -> Vec<u32> {
        let socket = self.socket().display().to_string();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("containerd-shim") && cmdline.contains(&socket) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for pid in self.shims() {
            if let Some(pid) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

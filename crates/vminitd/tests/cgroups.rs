//! Container cgroup limits: an OOM kill that wait reports, a fork bomb that
//! pids.max stops.
//!
//! They need the cgroup v2 `memory` and `pids` controllers where vminitd
//! makes its groups. On a cgroup-v2-only host they run against vminitd on
//! this host. Otherwise (the build machines keep their controllers in cgroup
//! v1) they boot a VM with Debian's cloud kernel and vminitd as PID 1 (the
//! vmm crate, QEMU, the static musl vminitd that `make test` builds), copy
//! the busybox rootfs in with CopyIn, and run there. When neither is
//! possible they print a loud SKIPPED line naming what is missing; they never
//! pass silently.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerization_agent::AgentClient;
use containerization_agent::proto::v1::{
    CopyInRequest, CreateProcessRequest, ProcessStdio, StreamEndpoint, WaitProcessResponse,
    stream_endpoint::Target,
};
use containerization_testkit::{kernel_catalogue_dir, state_root};
use containerization_vmm::{
    Hypervisor, KernelCatalogue, Qemu, QemuVm, VirtualMachine, VmConfig, VsockBackend,
    VsockEndpoint, build_initramfs,
};
use serde_json::json;
use support::{HostAgent, busybox_rootfs, container_request, spec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// The controllers offered where vminitd (this process's child, in this
/// process's cgroup) makes container groups on this host.
fn host_controllers() -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(mount) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(str::to_owned))?
    }) else {
        return Vec::new();
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .unwrap_or_default();
    let path = Path::new(&mount)
        .join(own.trim_start_matches('/'))
        .join("cgroup.controllers");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Where the containers run.
enum Sandbox {
    /// vminitd on this host; the rootfs is a host folder.
    Host { agent: HostAgent, rootfs: PathBuf },
    /// vminitd as PID 1 in a VM reached over hybrid vsock; the rootfs was
    /// copied into the guest.
    Vm {
        vm: Box<QemuVm>,
        agent: AgentClient,
        uds: PathBuf,
        _dir: tempfile::TempDir,
    },
}

/// What a finished container left.
struct Finished {
    status: WaitProcessResponse,
    stdout: String,
    stderr: String,
}

/// The static vminitd for guests: `CZ_VMINITD`, else where `make test`
/// builds it.
fn musl_vminitd() -> PathBuf {
    std::env::var_os("CZ_VMINITD").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/x86_64-unknown-linux-musl/debug/vminitd")
        },
        PathBuf::from,
    )
}

/// A source file of vminitd or the agent changed after `binary` was built.
fn newer_source_than(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stack = vec![
        crates.join("vminitd/src"),
        crates.join("agent/src"),
        crates.join("agent/proto"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built)
            {
                return Some(path);
            }
        }
    }
    None
}

impl Sandbox {
    /// A sandbox with cgroup v2 `controllers`, or why there is none.
    async fn with(controllers: &[&str]) -> Result<Self, String> {
        let offered = host_controllers();
        if controllers.iter().all(|c| offered.iter().any(|o| o == c)) {
            let agent = HostAgent::start().await;
            let rootfs = busybox_rootfs(agent.dir.path());
            return Ok(Self::Host { agent, rootfs });
        }
        let vminitd = musl_vminitd();
        if !vminitd.exists() {
            return Err(format!(
                "the host has no cgroup v2 {controllers:?} controllers and the static vminitd \
                 for a VM is missing at {} (run `make test`, or set CZ_VMINITD)",
                vminitd.display()
            ));
        }
        if let Some(newer) = newer_source_than(&vminitd) {
            return Err(format!(
                "the static vminitd at {} is older than {} and would not run this code \
                 (rebuild it: cargo build -p vminitd --target x86_64-unknown-linux-musl)",
                vminitd.display(),
                newer.display()
            ));
        }
        let kernel = KernelCatalogue::new(kernel_catalogue_dir())
            .list()
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|k| k.name().starts_with("debian-cloud-"))
            .ok_or(
                "the host has no cgroup v2 controllers and the kernel catalogue has no \
                    Debian cloud kernel (scripts/setup installs it)",
            )?;
        let (vsock, why) = VsockBackend::detect(state_root().join("tools/bin/vhost-device-vsock"));
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let initramfs = build_initramfs(&kernel, &vminitd, &state_root().join("initramfs"))
            .map_err(|e| e.to_string())?;
        let config = VmConfig::new(kernel, initramfs, dir.path(), vsock);
        let vm = Qemu::default()
            .start(&config)
            .await
            .map_err(|e| format!("the VM did not start ({why}): {e}"))?;
        let agent = vm.agent().ok_or("the VM has no agent")?.clone();
        let VsockEndpoint::Hybrid(uds) = vm.vsock().clone() else {
            return Err("the VM uses kernel vsock; these tests listen on hybrid vsock only".into());
        };
        // The busybox rootfs, as a tar stream made by GNU tar, copied in.
        let rootfs = busybox_rootfs(dir.path());
        let tar = std::process::Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["-cf", "-", "."])
            .output()
            .map_err(|e| e.to_string())?
            .stdout;
        let port = 5000;
        let listener =
            UnixListener::bind(format!("{}_{port}", uds.display())).map_err(|e| e.to_string())?;
        let serve = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            stream.write_all(&tar).await?;
            stream.shutdown().await
        });
        agent
            .copy_in(CopyInRequest {
                source: Some(StreamEndpoint {
                    target: Some(Target::VsockPort(port)),
                }),
                destination: "/run/rootfs".into(),
            })
            .await
            .map_err(|e| e.to_string())?;
        serve
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(Self::Vm {
            vm: Box::new(vm),
            agent,
            uds,
            _dir: dir,
        })
    }

    fn agent(&self) -> &AgentClient {
        match self {
            Self::Host { agent, .. } => &agent.client,
            Self::Vm { agent, .. } => agent,
        }
    }

    /// Runs a container from `spec` and collects its output and status.
    async fn run(&self, id: &str, spec: &serde_json::Value) -> Finished {
        // Host: unix sockets in the agent's folder. VM: vsock ports, which
        // reach the host as `<uds>_<port>`.
        let (rootfs, out_path, err_path, out_target, err_target) = match self {
            Self::Host { agent, rootfs } => {
                let out = agent.dir.path().join(format!("{id}.out"));
                let err = agent.dir.path().join(format!("{id}.err"));
                let (o, e) = (out.display().to_string(), err.display().to_string());
                (
                    rootfs.clone(),
                    out,
                    err,
                    Target::UnixPath(o),
                    Target::UnixPath(e),
                )
            }
            Self::Vm { uds, .. } => (
                PathBuf::from("/run/rootfs"),
                PathBuf::from(format!("{}_6001", uds.display())),
                PathBuf::from(format!("{}_6002", uds.display())),
                Target::VsockPort(6001),
                Target::VsockPort(6002),
            ),
        };
        let out = UnixListener::bind(&out_path).expect("bind stdout");
        let err = UnixListener::bind(&err_path).expect("bind stderr");
        let mut request: CreateProcessRequest = container_request(id, spec, &rootfs);
        request.stdio = Some(ProcessStdio {
            stdout: Some(StreamEndpoint {
                target: Some(out_target),
            }),
            stderr: Some(StreamEndpoint {
                target: Some(err_target),
            }),
            ..Default::default()
        });
        let client = self.agent().clone();
        let create = tokio::spawn(async move { client.create_process(request).await });
        let (mut out, _) = out.accept().await.expect("stdout dialled");
        let (mut err, _) = err.accept().await.expect("stderr dialled");
        create.await.expect("join").expect("create_process");
        self.agent().start_process(id).await.expect("start_process");
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let (a, b) = tokio::join!(
            out.read_to_string(&mut stdout),
            err.read_to_string(&mut stderr)
        );
        a.expect("read stdout");
        b.expect("read stderr");
        let status = self.agent().wait_process(id).await.expect("wait_process");
        self.agent()
            .delete_process(id)
            .await
            .expect("delete_process");
        let _ = (
            std::fs::remove_file(&out_path),
            std::fs::remove_file(&err_path),
        );
        Finished {
            status,
            stdout,
            stderr,
        }
    }

    async fn stop(self) {
        if let Self::Vm { mut vm, .. } = self {
            vm.stop(Duration::from_secs(30)).await;
        }
    }
}

/// The sandbox, or None after a loud SKIPPED line.
async fn sandbox(controllers: &[&str], test: &str) -> Option<Sandbox> {
    match Sandbox::with(controllers).await {
        Ok(sandbox) => Some(sandbox),
        Err(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            None
        }
    }
}

#[tokio::test]
async fn a_memory_limit_ends_in_an_oom_kill_that_wait_reports() {
    let Some(sandbox) = sandbox(
        &["memory"],
        "a_memory_limit_ends_in_an_oom_kill_that_wait_reports",
    )
    .await
    else {
        return;
    };
    let mut s = spec(&[]);
    s["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    // Hold 256 MiB in a shell variable: far past the 32 MiB limit.
    s["process"]["args"] = json!([
        "sh",
        "-c",
        "x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo survived"
    ]);
    let done = sandbox.run("hog", &s).await;
    sandbox.stop().await;
    assert!(!done.stdout.contains("survived"), "the limit did not hold");
    assert_eq!(
        done.status.signal,
        Some(9),
        "{:?} {}",
        done.status,
        done.stderr
    );
    assert!(
        done.status.oom_killed,
        "wait did not report the OOM kill: {:?}",
        done.status
    );
}

#[tokio::test]
async fn pids_max_stops_a_fork_bomb() {
    let Some(sandbox) = sandbox(&["pids"], "pids_max_stops_a_fork_bomb").await else {
        return;
    };
    let mut s = spec(&[]);
    s["linux"]["resources"] = json!({"pids": {"limit": 16}});
    s["process"]["args"] = json!([
        "sh",
        "-c",
        "for i in $(seq 1 64); do sleep 3 & done; echo started; wait"
    ]);
    let done = sandbox.run("bomb", &s).await;
    sandbox.stop().await;
    // busybox sh gives up at the first fork the limit refuses.
    assert!(
        done.stderr.contains("can't fork"),
        "{:?} / {:?}",
        done.stdout,
        done.stderr
    );
    assert_ne!(done.status.exit_code, Some(0));
    assert!(!done.stdout.contains("started"), "all 64 forks worked");
}

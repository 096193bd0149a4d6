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

use containerization_agent::proto::v1::ProcessStdio;
use serde_json::json;
use support::vm::{Finished, GUEST_ROOTFS, GuestVm};
use support::{HostAgent, busybox_rootfs, container_request, spec};
use tokio::io::AsyncReadExt;
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
    /// vminitd as PID 1 in a VM; the rootfs was copied into the guest.
    Vm(GuestVm),
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
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let rootfs = busybox_rootfs(dir.path());
        GuestVm::boot(&rootfs, |_| {})
            .await
            .map(Self::Vm)
            .map_err(|e| format!("the host has no cgroup v2 {controllers:?} controllers and {e}"))
    }

    /// Runs a container from `spec` and collects its output and status.
    async fn run(&self, id: &str, spec: &serde_json::Value) -> Finished {
        let (agent, rootfs) = match self {
            Self::Vm(guest) => {
                return guest
                    .run(container_request(id, spec, Path::new(GUEST_ROOTFS)))
                    .await;
            }
            Self::Host { agent, rootfs } => (agent, rootfs),
        };
        let out = agent.dir.path().join(format!("{id}.out"));
        let err = agent.dir.path().join(format!("{id}.err"));
        let out_listener = UnixListener::bind(&out).expect("bind stdout");
        let err_listener = UnixListener::bind(&err).expect("bind stderr");
        let mut request = container_request(id, spec, rootfs);
        request.stdio = Some(ProcessStdio {
            stdout: support::endpoint(&out),
            stderr: support::endpoint(&err),
            ..Default::default()
        });
        let client = agent.client.clone();
        let create = tokio::spawn(async move { client.create_process(request).await });
        let (mut out, _) = out_listener.accept().await.expect("stdout dialled");
        let (mut err, _) = err_listener.accept().await.expect("stderr dialled");
        create.await.expect("join").expect("create_process");
        agent.client.start_process(id).await.expect("start_process");
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let (a, b) = tokio::join!(
            out.read_to_string(&mut stdout),
            err.read_to_string(&mut stderr)
        );
        a.expect("read stdout");
        b.expect("read stderr");
        let status = agent.client.wait_process(id).await.expect("wait_process");
        agent
            .client
            .delete_process(id)
            .await
            .expect("delete_process");
        Finished {
            status,
            stdout,
            stderr,
        }
    }

    async fn stop(self) {
        if let Self::Vm(guest) = self {
            guest.stop().await;
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

//! What the agent's host tests share: vminitd on a unix socket, stream
//! sockets the agent dials, and (for containers) an unpacked busybox rootfs
//! with a runtime spec.

#![allow(dead_code)]

pub mod vm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use containerization_agent::proto::v1::{
    ContainerSpec, CreateProcessRequest, ProcessStdio, StreamEndpoint,
    create_process_request::Isolation, stream_endpoint::Target,
};
use containerization_agent::{AgentClient, Connector, UnixConnector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// vminitd on a unix socket in a temporary folder, killed on drop.
pub struct HostAgent {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub client: AgentClient,
}

impl HostAgent {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let socket = dir.path().join("agent.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_vminitd"))
            .arg("--unix")
            .arg(&socket)
            .arg("--log")
            .arg("warn")
            .spawn()
            .expect("spawn vminitd");
        let connector: Arc<dyn Connector> = Arc::new(UnixConnector::new(&socket));
        let mut last = None;
        for _ in 0..200 {
            match AgentClient::connect(&connector, Duration::from_secs(30)).await {
                Ok(client) => return Self { dir, child, client },
                Err(err) => last = Some(err),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("vminitd did not answer: {last:?}");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The pids of vminitd's children (none once every process is reaped).
    pub fn children(&self) -> String {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("read children")
            .trim()
            .to_owned()
    }
}

impl Drop for HostAgent {
    fn drop(&mut self) {
        // SIGTERM, so vminitd removes its cgroups on the way out. It stops
        // once our client's connection closes (right after this) or after
        // its drain bound; SIGKILL later if it has not. The pid stays ours
        // (an unreaped child is never reused) until this test binary exits.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let Ok(pid) = i32::try_from(self.child.id()) else {
            let _ = self.child.kill();
            return;
        };
        // SAFETY: kill(2) on our own child, which we have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(10));
            // SAFETY: as above; the child is still unreaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
    }
}

pub fn endpoint(path: &Path) -> Option<StreamEndpoint> {
    Some(StreamEndpoint {
        target: Some(Target::UnixPath(path.display().to_string())),
    })
}

/// A process's host-side streams: listeners the agent dials.
pub struct Streams {
    pub stdin: UnixListener,
    pub stdout: UnixListener,
    pub stderr: UnixListener,
    pub stdio: ProcessStdio,
}

pub fn streams(agent: &HostAgent, id: &str, terminal: bool) -> Streams {
    let path = |s: &str| agent.path(&format!("{id}.{s}"));
    let bind = |s: &str| UnixListener::bind(path(s)).expect("bind stream socket");
    Streams {
        stdin: bind("in"),
        stdout: bind("out"),
        stderr: bind("err"),
        stdio: ProcessStdio {
            stdin: endpoint(&path("in")),
            stdout: endpoint(&path("out")),
            stderr: if terminal {
                None
            } else {
                endpoint(&path("err"))
            },
            terminal,
            rows: 24,
            columns: 80,
        },
    }
}

/// The host ends of a created process's streams.
pub struct Connected {
    pub stdin: UnixStream,
    pub stdout: UnixStream,
    pub stderr: Option<UnixStream>,
}

/// Creates `request` (its stdio set here) and accepts its streams.
pub async fn create(
    agent: &HostAgent,
    mut request: CreateProcessRequest,
    terminal: bool,
) -> Connected {
    let s = streams(agent, &request.id, terminal);
    request.stdio = Some(s.stdio);
    let client = agent.client.clone();
    let create = tokio::spawn(async move { client.create_process(request).await });
    let (stdin, _) = s.stdin.accept().await.expect("stdin dialled");
    let (stdout, _) = s.stdout.accept().await.expect("stdout dialled");
    let stderr = if terminal {
        None
    } else {
        Some(s.stderr.accept().await.expect("stderr dialled").0)
    };
    create.await.expect("join").expect("create_process");
    Connected {
        stdin,
        stdout,
        stderr,
    }
}

/// What a finished process left.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Outcome {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Creates, starts and waits on `request` with `input` on stdin.
pub async fn run_request(
    agent: &HostAgent,
    request: CreateProcessRequest,
    input: &[u8],
) -> Outcome {
    let id = request.id.clone();
    let mut io = create(agent, request, false).await;
    agent
        .client
        .start_process(&id)
        .await
        .expect("start_process");
    io.stdin.write_all(input).await.expect("write stdin");
    io.stdin.shutdown().await.expect("close stdin");
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut err_stream = io.stderr.expect("stderr");
    let (a, b) = tokio::join!(
        io.stdout.read_to_end(&mut stdout),
        err_stream.read_to_end(&mut stderr)
    );
    a.expect("read stdout");
    b.expect("read stderr");
    let status = agent.client.wait_process(&id).await.expect("wait_process");
    agent
        .client
        .delete_process(&id)
        .await
        .expect("delete_process");
    Outcome {
        stdout,
        stderr,
        code: status.exit_code,
        signal: status.signal,
    }
}

/// Unpacks the busybox fixture (testkit's, built by umoci from Debian's
/// busybox-static) into `dir`/rootfs and returns the rootfs.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let image = containerization_testkit::fixture(containerization_testkit::Fixture::Busybox)
        .expect("busybox fixture");
    let bundle = dir.join("bundle");
    let status = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{}", image.layout().display(), image.name()))
        .arg(&bundle)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run umoci");
    assert!(status.success(), "umoci unpack failed: {status}");
    bundle.join("rootfs")
}

/// A runtime spec like `runc spec` writes (without capabilities, so the
/// launcher's Docker default applies): new mount, PID, IPC, UTS, cgroup and
/// network namespaces, the usual mounts, running `args`.
pub fn spec(args: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ]
        }
    })
}

/// A request for a new container with `spec` on `rootfs`.
pub fn container_request(
    id: &str,
    spec: &serde_json::Value,
    rootfs: &Path,
) -> CreateProcessRequest {
    CreateProcessRequest {
        id: id.into(),
        isolation: Some(Isolation::Container(ContainerSpec {
            oci_spec: serde_json::to_vec(spec).expect("spec to JSON"),
            rootfs: rootfs.display().to_string(),
        })),
        ..Default::default()
    }
}

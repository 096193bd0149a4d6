//! A guest to test in: Debian's cloud kernel with the static musl vminitd as
//! PID 1 (through the vmm crate and QEMU), reached over hybrid vsock, with
//! the busybox rootfs copied in at `/run/rootfs`.

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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// Where the busybox rootfs lies in the guest.
pub const GUEST_ROOTFS: &str = "/run/rootfs";

/// The static vminitd for guests: `CZ_VMINITD`, else where `make test`
/// builds it.
pub fn musl_vminitd() -> PathBuf {
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

/// What a finished process left.
pub struct Finished {
    pub status: WaitProcessResponse,
    pub stdout: String,
    pub stderr: String,
}

/// A running guest.
pub struct GuestVm {
    pub vm: Box<QemuVm>,
    pub agent: AgentClient,
    /// The hybrid vsock socket; guest port P dials `<uds>_P` on the host.
    pub uds: PathBuf,
    pub dir: tempfile::TempDir,
}

impl GuestVm {
    /// Boots a guest (`adjust` may add NICs or disks to its configuration)
    /// and copies `rootfs` in, or says why it cannot.
    pub async fn boot(rootfs: &Path, adjust: impl FnOnce(&mut VmConfig)) -> Result<Self, String> {
        let vminitd = musl_vminitd();
        if !vminitd.exists() {
            return Err(format!(
                "the static vminitd for a VM is missing at {} (run `make test`, or set \
                 CZ_VMINITD)",
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
            .ok_or("the kernel catalogue has no Debian cloud kernel (scripts/setup installs it)")?;
        let (vsock, why) = VsockBackend::detect(state_root().join("tools/bin/vhost-device-vsock"));
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let initramfs = build_initramfs(&kernel, &vminitd, &state_root().join("initramfs"))
            .map_err(|e| e.to_string())?;
        let mut config = VmConfig::new(kernel, initramfs, dir.path(), vsock);
        adjust(&mut config);
        let vm = Qemu::default()
            .start(&config)
            .await
            .map_err(|e| format!("the VM did not start ({why}): {e}"))?;
        let agent = vm.agent().ok_or("the VM has no agent")?.clone();
        let VsockEndpoint::Hybrid(uds) = vm.vsock().clone() else {
            return Err("the VM uses kernel vsock; these tests listen on hybrid vsock only".into());
        };
        let guest = Self {
            vm: Box::new(vm),
            agent,
            uds,
            dir,
        };
        guest.copy_in(rootfs).await?;
        Ok(guest)
    }

    /// Copies `rootfs` to [`GUEST_ROOTFS`] as a tar stream made by GNU tar.
    async fn copy_in(&self, rootfs: &Path) -> Result<(), String> {
        let tar = std::process::Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .args(["-cf", "-", "."])
            .output()
            .map_err(|e| e.to_string())?
            .stdout;
        let port = 5000;
        let listener = UnixListener::bind(format!("{}_{port}", self.uds.display()))
            .map_err(|e| e.to_string())?;
        let serve = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            stream.write_all(&tar).await?;
            stream.shutdown().await
        });
        self.agent
            .copy_in(CopyInRequest {
                source: Some(StreamEndpoint {
                    target: Some(Target::VsockPort(port)),
                }),
                destination: GUEST_ROOTFS.into(),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        serve
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Creates, starts and waits on `request` (its stdio set here) and
    /// collects its output.
    pub async fn run(&self, mut request: CreateProcessRequest) -> Finished {
        let id = request.id.clone();
        let out_path = PathBuf::from(format!("{}_6001", self.uds.display()));
        let err_path = PathBuf::from(format!("{}_6002", self.uds.display()));
        let out = UnixListener::bind(&out_path).expect("bind stdout");
        let err = UnixListener::bind(&err_path).expect("bind stderr");
        request.stdio = Some(ProcessStdio {
            stdout: Some(StreamEndpoint {
                target: Some(Target::VsockPort(6001)),
            }),
            stderr: Some(StreamEndpoint {
                target: Some(Target::VsockPort(6002)),
            }),
            ..Default::default()
        });
        let client = self.agent.clone();
        let create = tokio::spawn(async move { client.create_process(request).await });
        let (mut out, _) = out.accept().await.expect("stdout dialled");
        let (mut err, _) = err.accept().await.expect("stderr dialled");
        create.await.expect("join").expect("create_process");
        self.agent.start_process(&id).await.expect("start_process");
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let (a, b) = tokio::join!(
            out.read_to_string(&mut stdout),
            err.read_to_string(&mut stderr)
        );
        a.expect("read stdout");
        b.expect("read stderr");
        let status = self.agent.wait_process(&id).await.expect("wait_process");
        self.agent
            .delete_process(&id)
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

    /// Runs `sh -c script` in the guest itself (not in a container), with
    /// the copied busybox.
    pub async fn sh(&self, id: &str, script: &str) -> Finished {
        let busybox = format!("{GUEST_ROOTFS}/bin/busybox");
        self.run(CreateProcessRequest {
            id: id.into(),
            args: vec![busybox, "sh".into(), "-c".into(), script.into()],
            env: vec![format!("PATH={GUEST_ROOTFS}/bin")],
            cwd: "/".into(),
            ..Default::default()
        })
        .await
    }

    pub async fn stop(mut self) {
        self.vm.stop(Duration::from_secs(30)).await;
    }
}

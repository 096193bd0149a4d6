//! containerd-shim-cz-v2 driven through containerd's CRI plugin as the
//! kubelet drives it: a pod sandbox, two containers in it that reach each
//! other on `localhost`, their status, synchronous execs, and the pod's
//! stop and removal; one VM for the pod, seen from the host.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{World, text};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// The CRI client, generated from `proto/runtime/v1/cri.proto`.
mod cri {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/runtime.v1.rs"));
}

use cri::runtime_service_client::RuntimeServiceClient;

/// The runtime handler containerd's configuration maps to our shim.
const HANDLER: &str = "cz";

async fn connect(socket: PathBuf) -> RuntimeServiceClient<Channel> {
    let channel = Endpoint::try_from("http://[::]:0")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .expect("connect to containerd's CRI");
    RuntimeServiceClient::new(channel)
}

/// The pod's configuration: host network (the test's containerd has no
/// CNI), as a kubelet sends it.
fn sandbox_config(logs: &std::path::Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".to_owned(),
            uid: "0f0e0d0c-uid".to_owned(),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        hostname: "web".to_owned(),
        log_directory: logs.display().to_string(),
        labels: Default::default(),
        annotations: Default::default(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Node as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    target_id: String::new(),
                }),
            }),
        }),
    }
}

fn container_config(name: &str, image: &str, command: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.to_owned(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: image.to_owned(),
        }),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}

/// The state of container `id`.
async fn state(client: &mut RuntimeServiceClient<Channel>, id: &str) -> cri::ContainerStatus {
    client
        .container_status(cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .into_inner()
        .status
        .expect("a status")
}

/// Waits up to `seconds` for container `id` to be in `wanted`.
async fn until_state(
    client: &mut RuntimeServiceClient<Channel>,
    id: &str,
    wanted: cri::ContainerState,
    seconds: u64,
) -> cri::ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let status = state(client, id).await;
        if status.state() == wanted {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} is {:?}, not {wanted:?}, after {seconds} s",
            status.state()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `ExecSync` of `cmd` in container `id`: (exit code, stdout, stderr).
async fn exec_sync(
    client: &mut RuntimeServiceClient<Channel>,
    id: &str,
    cmd: &[&str],
) -> (i32, String, String) {
    let answer = client
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
            timeout: 60,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    (answer.exit_code, text(&answer.stdout), text(&answer.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cri_pod_runs_in_one_vm_whose_containers_share_localhost() {
    let world = tokio::task::spawn_blocking(World::with_cri)
        .await
        .expect("the world");
    let logs = tempfile::tempdir().expect("a log folder");
    let mut client = connect(world.containerd.socket()).await;
    let version = client
        .version(cri::VersionRequest {
            version: "v1".to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("Version: {e}\n{}", world.containerd.log()))
        .into_inner();
    assert_eq!(version.runtime_name, "containerd");

    let config = sandbox_config(logs.path());
    let pod = client
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: HANDLER.to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", world.containerd.log()))
        .into_inner()
        .pod_sandbox_id;
    let status = client
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner()
        .status
        .expect("a pod status");
    assert_eq!(status.state(), cri::PodSandboxState::SandboxReady);
    assert_eq!(status.runtime_handler, HANDLER);

    let mut ids = Vec::new();
    for (name, command) in [
        (
            "server",
            vec![
                "sh",
                "-c",
                "echo served > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
            ],
        ),
        ("client", vec!["sleep", "600"]),
    ] {
        let id = client
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(container_config(name, &world.image, &command)),
                sandbox_config: Some(config.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"))
            .into_inner()
            .container_id;
        client
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("StartContainer {name}: {e}"));
        ids.push(id);
    }
    let (server, client_id) = (ids[0].clone(), ids[1].clone());
    for id in &ids {
        let status = until_state(&mut client, id, cri::ContainerState::ContainerRunning, 60).await;
        assert_eq!(
            status.image.map(|i| i.image).as_deref(),
            Some(&*world.image)
        );
    }

    // The client reaches the server on the pod's localhost.
    let (code, out, err) = exec_sync(
        &mut client,
        &client_id,
        &[
            "sh",
            "-c",
            "for i in $(seq 50); do wget -qO- http://localhost:8080/index.html && exit 0; \
             sleep 0.2; done; exit 1",
        ],
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "served\n"), "{err}");
    // Exit codes and standard error come back.
    let (code, out, err) =
        exec_sync(&mut client, &server, &["sh", "-c", "echo oops >&2; exit 3"]).await;
    assert_eq!((code, out.as_str(), err.as_str()), (3, "", "oops\n"));
    // In a VM: a kernel that is not the host's.
    let (_, guest, _) = exec_sync(&mut client, &client_id, &["uname", "-r"]).await;
    let host = common::host_kernel();
    assert_ne!(guest, host, "the container ran on the host's kernel");
    // One shim and one VM for the pod and its three containers (the
    // sandbox's and two).
    assert_eq!(world.containerd.shims().len(), 1, "one shim for the pod");
    assert_eq!(world.entries("pods").len(), 1, "one pod");
    assert_eq!(
        world.entries("containers").len(),
        3,
        "{:?}",
        world.entries("containers")
    );
    assert_eq!(world.vms(), 1, "one VM for the pod");

    // Stop and remove the client; the server runs on.
    client
        .stop_container(cri::StopContainerRequest {
            container_id: client_id.clone(),
            timeout: 0,
        })
        .await
        .expect("StopContainer");
    let stopped = until_state(
        &mut client,
        &client_id,
        cri::ContainerState::ContainerExited,
        30,
    )
    .await;
    assert_eq!(stopped.exit_code, 137, "killed: {stopped:?}");
    client
        .remove_container(cri::RemoveContainerRequest {
            container_id: client_id.clone(),
        })
        .await
        .expect("RemoveContainer");
    assert!(
        client
            .container_status(cri::ContainerStatusRequest {
                container_id: client_id.clone(),
                verbose: false,
            })
            .await
            .is_err(),
        "a removed container has no status"
    );
    assert_eq!(
        state(&mut client, &server).await.state(),
        cri::ContainerState::ContainerRunning
    );
    let (code, out, _) = exec_sync(&mut client, &server, &["cat", "/tmp/index.html"]).await;
    assert_eq!((code, out.as_str()), (0, "served\n"));
    assert_eq!(world.entries("containers").len(), 2);

    // The pod goes, and with it everything it made.
    client
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("StopPodSandbox");
    until_state(
        &mut client,
        &server,
        cri::ContainerState::ContainerExited,
        30,
    )
    .await;
    client
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("RemovePodSandbox");
    tokio::task::spawn_blocking(move || world.assert_clean())
        .await
        .expect("clean");
}

//! The agent side of `bench/agent`: drives a running vminitd over its unix
//! socket.
//!
//! - `launch_bench launch SOCKET SPEC ROOTFS N`: N containers from the spec
//!   file (OCI runtime spec JSON) on ROOTFS, one after the other: create,
//!   start, wait, delete. No stdio (the process's streams are /dev/null).
//! - `launch_bench stream SOCKET SPEC ROOTFS BYTES`: one container whose
//!   stdout is a unix socket this program listens on; reads it to the end,
//!   checks BYTES arrived and that the process exited 0.

use std::sync::Arc;
use std::time::Duration;

use containerization_agent::proto::v1::{
    ContainerSpec, CreateProcessRequest, ProcessStdio, StreamEndpoint,
    create_process_request::Isolation, stream_endpoint::Target,
};
use containerization_agent::{AgentClient, Connector, UnixConnector};
use tokio::io::AsyncReadExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn request(id: String, spec: &[u8], rootfs: &str) -> CreateProcessRequest {
    CreateProcessRequest {
        id,
        isolation: Some(Isolation::Container(ContainerSpec {
            oci_spec: spec.to_vec(),
            rootfs: rootfs.to_owned(),
        })),
        ..Default::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, socket, spec, rootfs, count] = args.as_slice() else {
        return Err("usage: launch_bench launch|stream SOCKET SPEC ROOTFS N|BYTES".into());
    };
    let spec = std::fs::read(spec)?;
    let count: u64 = count.parse()?;
    let connector: Arc<dyn Connector> = Arc::new(UnixConnector::new(socket));
    let client = AgentClient::connect(&connector, Duration::from_secs(30)).await?;
    let pid = std::process::id();
    match mode.as_str() {
        "launch" => {
            for i in 0..count {
                let id = format!("b{pid}-{i}");
                client
                    .create_process(request(id.clone(), &spec, rootfs))
                    .await?;
                client.start_process(&id).await?;
                let status = client.wait_process(&id).await?;
                if status.exit_code != Some(0) {
                    return Err(format!("{id} ended with {status:?}").into());
                }
                client.delete_process(&id).await?;
            }
        }
        "stream" => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("out");
            let listener = tokio::net::UnixListener::bind(&path)?;
            let id = format!("s{pid}");
            let mut create = request(id.clone(), &spec, rootfs);
            create.stdio = Some(ProcessStdio {
                stdout: Some(StreamEndpoint {
                    target: Some(Target::UnixPath(path.display().to_string())),
                }),
                ..Default::default()
            });
            let creating = {
                let client = client.clone();
                tokio::spawn(async move { client.create_process(create).await })
            };
            let (mut stream, _) = listener.accept().await?;
            creating.await??;
            client.start_process(&id).await?;
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            let status = client.wait_process(&id).await?;
            client.delete_process(&id).await?;
            if total != count || status.exit_code != Some(0) {
                return Err(format!("got {total} of {count} bytes; {status:?}").into());
            }
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}

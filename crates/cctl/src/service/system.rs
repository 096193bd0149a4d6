//! `_ping`, `version` and `info`.

use hyper::{Method, Response, StatusCode};
use serde_json::json;

use super::Service;
use super::body::{Answer, Body, from_error, json, text};

/// `GET|HEAD /_ping`: "OK" (no body for HEAD).
pub(crate) fn ping(method: &Method) -> Response<Body> {
    let mut response = text(StatusCode::OK, "OK");
    if method == Method::HEAD {
        *response.body_mut() = super::body::empty();
    }
    response.headers_mut().insert(
        "Cache-Control",
        "no-cache, no-store, must-revalidate"
            .parse()
            .expect("a header value"),
    );
    response
}

/// This kernel's release, as `uname -r` prints it.
fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// `GET /version`.
pub(crate) fn version() -> Response<Body> {
    let version = env!("CARGO_PKG_VERSION");
    json(
        StatusCode::OK,
        &json!({
            "Platform": { "Name": "containerization" },
            "Components": [{
                "Name": "Engine",
                "Version": version,
                "Details": {
                    "ApiVersion": super::API_VERSION,
                    "MinAPIVersion": super::MIN_API_VERSION,
                    "Os": "linux",
                    "Arch": docker_arch(),
                    "KernelVersion": kernel_release(),
                },
            }],
            "Version": version,
            "ApiVersion": super::API_VERSION,
            "MinAPIVersion": super::MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": docker_arch(),
            "KernelVersion": kernel_release(),
            "BuildTime": "",
        }),
    )
}

/// The host's architecture as Docker names it.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /info`: counts of containers and images, and the host.
pub(crate) fn info(service: &Service) -> Answer {
    let listed = service.manager.list().map_err(|e| from_error(&e.into()))?;
    let running = listed
        .iter()
        .filter(|(_, state)| state.is_running())
        .count();
    let images = containerization_oci::store::ImageStore::open(service.root.path())
        .and_then(|store| store.list())
        .map(|images| images.len())
        .unwrap_or(0);
    let host = containerization::host::HostResources::detect();
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": hostname,
            "Name": hostname,
            "Containers": listed.len(),
            "ContainersRunning": running,
            "ContainersPaused": 0,
            "ContainersStopped": listed.len() - running,
            "Images": images,
            "Driver": "containerization (a VM per container)",
            "DockerRootDir": service.root.path(),
            "OperatingSystem": "containerization",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "KernelVersion": kernel_release(),
            "NCPU": host.cpus,
            "MemTotal": host.memory_bytes,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": { "containerization": { "path": "qemu" } },
            "DefaultRuntime": "containerization",
            "SecurityOptions": ["name=vm"],
            "Warnings": [],
        }),
    ))
}

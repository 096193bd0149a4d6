//! `containerd-shim-cz-v2`: the containerd runtime v2 shim (task API v2, as
//! containerd 1.6 speaks it) for runtime `io.containerd.cz.v2`. One shim
//! process and one VM per pod: containers that name the same
//! `io.kubernetes.cri.sandbox-id` share a shim and its pod, as Kata's do; a
//! plain `ctr run` is a pod of one. The shim owns the pod's VM and its
//! containers' VMs' places (see `containerization::pod`), copies their
//! standard streams to and from containerd's FIFOs and publishes their
//! events.

mod bundle;
mod events;
mod shim;
mod stdio;
mod task;

/// The runtime's name, as containerd knows it.
const RUNTIME: &str = "io.containerd.cz.v2";

/// With `CZ_SHIM_LOG=FILE`, the shim's own log (filtered by `CZ_LOG`, as
/// `cctl`'s) is appended to FILE instead of going to containerd's log.
fn log_to_file() -> bool {
    let Some(path) = std::env::var_os("CZ_SHIM_LOG").filter(|p| !p.is_empty()) else {
        return false;
    };
    let Ok(file) = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
    else {
        return false;
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CZ_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .is_ok()
}

#[tokio::main]
async fn main() {
    let config = containerd_shim::Config {
        no_setup_logger: log_to_file(),
        // QEMU and the shares' helpers are this process's children, waited
        // for by the code that started them: no blanket reaping.
        no_reaper: true,
        no_sub_reaper: true,
        ..Default::default()
    };
    containerd_shim::asynchronous::run::<shim::CzShim>(RUNTIME, Some(config)).await;
}

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

#[tokio::main]
async fn main() {
    let config = containerd_shim::Config {
        // QEMU and the shares' helpers are this process's children, waited
        // for by the code that started them: no blanket reaping.
        no_reaper: true,
        no_sub_reaper: true,
        ..Default::default()
    };
    containerd_shim::asynchronous::run::<shim::CzShim>(RUNTIME, Some(config)).await;
}

//! `vminitd`: PID 1 of every containerization guest.
//!
//! It will mount the early file systems, load the kernel modules the initramfs
//! carries, bring up networking, and serve the agent API on vsock port 1024 to
//! launch, stream, signal and wait on container processes.
//!
//! Status: not implemented yet (the "vminitd and the guest agent" issue). The
//! binary exists so the workspace builds it for `x86_64-unknown-linux-musl`
//! from the start; it says so and exits with status 1 rather than pretend.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("vminitd: not implemented yet; this build only checks the static musl toolchain");
    ExitCode::FAILURE
}

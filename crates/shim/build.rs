//! Generates the tests' CRI client (`proto/runtime/v1/cri.proto`) at build
//! time. `protox` compiles the proto in pure Rust, so no `protoc` is needed.
//! The shim itself does not use it: only `tests/cri.rs` includes it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/runtime/v1/cri.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}

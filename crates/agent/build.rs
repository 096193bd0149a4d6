//! Generates the sandbox protocol's Rust code from its `.proto` at build time.
//!
//! `protox` compiles the proto in pure Rust, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/containerization/sandbox/v1/sandbox.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}

//! Unpacking any bytes as a layer never panics and never writes outside the
//! target: everything created lands under `root/target`, and a sentinel file
//! beside the target stays untouched.
#![no_main]

use containerization_oci::layer::Unpacker;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let sentinel = dir.path().join("sentinel");
    std::fs::write(&sentinel, b"untouched").expect("sentinel");
    let target = dir.path().join("target");
    if let Ok(mut unpacker) = Unpacker::new(&target) {
        if unpacker.apply_layer(data, "fuzz").is_ok() {
            let _ = unpacker.finish();
        }
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        names.len() <= 2,
        "something was written beside the target: {names:?}"
    );
    assert_eq!(std::fs::read(&sentinel).expect("sentinel"), b"untouched");
});

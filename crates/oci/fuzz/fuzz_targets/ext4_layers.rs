//! Applying any bytes as a layer to an ext4 image never panics, never hangs
//! on a claimed size, and a finished image stays within its configured size.
//! The same bytes as two layers exercise whiteouts and links across layers.
#![no_main]

use containerization_ext4::{FormatOptions, Formatter};
use libfuzzer_sys::fuzz_target;

const SIZE: u64 = 8 << 20;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("image.ext4");
    let options = FormatOptions {
        size: Some(SIZE),
        ..FormatOptions::default()
    };
    let Ok(mut formatter) = Formatter::create(&image, options) else {
        return;
    };
    let (lower, upper) = data.split_at(data.len() / 2);
    if formatter.unpack_layer(lower).is_ok() && formatter.unpack_layer(upper).is_ok() {
        let _ = formatter.finish();
        let len = std::fs::metadata(&image).map(|m| m.len()).unwrap_or(0);
        assert!(len <= SIZE, "the image grew to {len} bytes past its size");
    }
});

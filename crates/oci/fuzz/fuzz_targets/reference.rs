//! Any text either fails to parse as a reference or round-trips through
//! its normalised form.
#![no_main]

use containerization_oci::{Digest, Platform, Reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(reference) = text.parse::<Reference>() {
        let again: Reference = reference
            .to_string()
            .parse()
            .expect("a normalised reference parses");
        assert_eq!(again, reference);
    }
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string(), text);
    }
    let _ = text.parse::<Platform>();
});

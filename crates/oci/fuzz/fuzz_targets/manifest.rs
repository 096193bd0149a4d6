//! Manifest, index and config parsing never panics, whatever the bytes and
//! the media type claimed for them.
#![no_main]

use containerization_oci::manifest::{Document, parse_config, parse_document, select_manifest};
use containerization_oci::{Platform, media_type};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for media_type in [
        media_type::OCI_INDEX,
        media_type::OCI_MANIFEST,
        media_type::DOCKER_LIST,
        "",
        "text/plain",
    ] {
        if let Ok(Document::Index(index)) = parse_document(data, media_type, "fuzz") {
            let _ = select_manifest(&index, &Platform::new("linux", "arm", Some("v7")));
        }
    }
    let _ = parse_config(data, "fuzz");
});

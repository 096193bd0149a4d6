//! Root file systems: base ext4 images cached per manifest digest, and writable clones.

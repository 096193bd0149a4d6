//! OCI images for containerization.
//!
//! This crate will own everything that turns an image reference into bytes on
//! disk and back: typed digests, references and platforms; a content store that
//! is an OCI image layout (readable by `skopeo` and `umoci`); an image store that
//! maps names to root descriptors; a registry client with anonymous, Basic and
//! Bearer authentication and docker credential helpers; layer decompression and
//! safe unpacking; import and export of OCI layout archives.
//!
//! Status: nothing is implemented yet. The crate exists so the workspace has its
//! final shape; the work is tracked by the "containerization-oci" issue. It
//! exports no items, so nothing here can be mistaken for a working API.

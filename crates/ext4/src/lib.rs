//! ext4 file system images for containerization.
//!
//! This crate will write ext4 images straight from OCI layer streams, with no
//! mount, no loop device and no root: whiteouts and opaque directories applied
//! on the way, extents, `flex_bg`, htree directories, xattrs, device nodes and
//! `metadata_csum`, plus a reader used for inspection and export.
//!
//! Status: nothing is implemented yet; the work is tracked by the
//! "containerization-ext4" issue. It exports no items.

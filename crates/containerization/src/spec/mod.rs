//! The container's OCI runtime spec from an image config and run options, Docker's way.

//! The host–guest API of containerization.
//!
//! This crate will hold the one versioned protocol (`containerization.sandbox.v1`)
//! that the host uses to drive `vminitd` inside each VM, its generated tonic
//! client and server, and the transports behind one connector trait: AF_VSOCK,
//! hybrid vsock over a unix socket (`CONNECT <port>`), and a plain unix socket
//! for host tests.
//!
//! Status: nothing is implemented yet; the work is tracked by the "vminitd and
//! the guest agent" issue. It exports no items.

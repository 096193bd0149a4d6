//! Netlink for containerization, on the host and in the guest.
//!
//! This crate will give a small typed async API over `rtnetlink`: links,
//! addresses, routes, bridges, veth pairs and persistent tap devices, with one
//! connection reused for many requests and errors a caller can match on.
//!
//! Status: nothing is implemented yet; the work is tracked by the
//! "containerization-netlink" issue. It exports no items.

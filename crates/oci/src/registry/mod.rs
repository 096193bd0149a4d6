//! A client for distribution (OCI) registries: authentication, pull, push,
//! tag listing and manifest deletion.

mod auth;
mod blob;
mod client;
mod config;
mod credentials;
mod pull;
mod push;
mod tags;
mod upload;

pub use auth::Challenge;
pub use client::RegistryClient;
pub use config::ClientConfig;
pub use credentials::{Credential, CredentialStore};
pub use pull::{FetchedManifest, PullPlan};

//! Removing a container whose records cannot be read (a truncated
//! `config.json` or `state.json`): what it held is released as far as its
//! readable parts and the networks' own leases tell. A live owner named by a
//! readable state is killed first (only with force), so its VM goes too; its
//! leases, taps and published ports are found by the container's id on every
//! network, whatever its configuration said.

use std::time::Duration;

use super::manager::Inner;
use super::owner;
use super::store::DamagedContainer;
use crate::Error;

/// Removes `damaged` and releases what it held; a live owner is refused
/// unless `force`, which kills it.
pub(crate) async fn remove(
    inner: &Inner,
    damaged: &DamagedContainer,
    force: bool,
) -> Result<(), Error> {
    if let Some(state) = &damaged.state
        && state.owner_alive()
        && let Some(pid) = state.owner_pid
    {
        if !force {
            return Err(Error::InvalidState {
                container: damaged.id.to_string(),
                state: "dead".to_owned(),
                detail: format!(
                    "its owner (process {pid}) still runs; remove it with --force, \
                     which kills that process and its VM"
                ),
            });
        }
        owner::kill(pid, state.owner_start).map_err(|source| Error::Io {
            path: format!("/proc/{pid}").into(),
            source,
        })?;
        for _ in 0..100 {
            if !state.owner_alive() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    if let Some(networks) = inner.networks().await {
        let id = damaged.id.clone();
        let released = networks.reclaim(|container| container != &id).await?;
        if !released.is_empty() {
            tracing::debug!(%id, "released the network leases of a damaged container");
        }
    }
    inner.store.remove(&damaged.id)
}

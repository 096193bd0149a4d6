//! Names on a network, kept current: when a container starts on a network
//! or ends there, the other containers running on it get their `/etc/hosts`
//! written again (in place: each container binds it), so each finds by name
//! the containers started after it, and no longer those gone, much as
//! Docker's embedded DNS answers. As with Docker's DNS, only on networks a
//! user made: the default network (Docker's `bridge`) does not, which also
//! keeps a host of many containers from rewriting every one at each start.

use std::sync::Arc;
use std::time::Duration;

use super::linux_container::LinuxContainer;
use super::manager::Inner;
use super::record::ContainerConfig;
use super::sandbox;

/// How long the other containers' updates may take in all.
const UPDATES: Duration = Duration::from_secs(5);

/// Writes the `/etc/hosts` of every other container running on one of
/// `changed`'s networks again (`changed` started or ended there). Pods'
/// containers have their pod's names and are left alone. Failures are
/// logged: a peer that cannot be reached keeps its old list.
pub(crate) async fn announce(inner: &Arc<Inner>, changed: &ContainerConfig) {
    let networks: Vec<&str> = changed
        .joined_networks()
        .into_iter()
        .map(|(network, _)| network)
        .filter(|network| *network != super::DEFAULT_NETWORK)
        .collect();
    if changed.pod.is_some() || networks.is_empty() {
        return;
    }
    let peers: Vec<ContainerConfig> = inner
        .store
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|(peer, state)| {
            peer.id != changed.id
                && peer.pod.is_none()
                && networks.iter().any(|network| peer.joins(network))
                && state.is_running()
                && state.address.is_some()
        })
        .map(|(peer, _)| peer)
        .collect();
    if peers.is_empty() {
        return;
    }
    let updates = peers.into_iter().map(|peer| async move {
        let name = peer.name.clone();
        let written = rewrite(inner, peer).await;
        if let Err(error) = written {
            tracing::warn!(peer = name, %error, "cannot update a neighbour's /etc/hosts");
        }
    });
    if tokio::time::timeout(UPDATES, futures::future::join_all(updates))
        .await
        .is_err()
    {
        tracing::warn!(
            ?networks,
            "updating the neighbours' /etc/hosts took too long"
        );
    }
}

/// Writes `peer`'s `/etc/hosts` from the containers running on its
/// networks now.
async fn rewrite(inner: &Arc<Inner>, peer: ContainerConfig) -> Result<(), crate::Error> {
    let container = LinuxContainer::new(Arc::clone(inner), peer);
    let Some((agent, _)) = container.running_agent().await? else {
        return Ok(());
    };
    let config = container.config();
    let address = container.state()?.address;
    let hostname = config.spec["hostname"].as_str().unwrap_or_default();
    let others = sandbox::network_peers(&inner.root, config);
    sandbox::write_hosts(&agent, hostname, address, &others).await
}

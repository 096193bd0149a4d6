//! Benchmark helper: sets up and tears down one container's networking N
//! times (lease, tap, bridge attach, published port, NAT rules), between
//! creating and removing a network. Run it in a scratch network namespace:
//! `unshare --net network_cycle 20`. `bench/network/run` compares it with the
//! same work done by `ip` and `nft` commands. The tap comes from the
//! network's pool after the first cycle, and the port's DNAT element goes
//! over the manager's one nfnetlink socket.

use containerization::ContainerId;
use containerization::network::{Endpoint, NetworkManager};
use containerization_netlink::Netlink;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cycles: usize = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "20".into())
        .parse()?;
    let state = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let manager = NetworkManager::new(state.path(), Netlink::connect()?);
        manager
            .create("bench", Some("10.66.0.0/24".parse()?), None)
            .await?;
        let ports = ["8080:80".parse()?];
        for i in 0..cycles {
            let id: ContainerId = format!("bench-{i}").parse()?;
            manager.attach("bench", &id, Endpoint::Tap, &ports).await?;
            manager.detach("bench", &id).await?;
        }
        manager.remove("bench").await?;
        Ok(())
    })
}

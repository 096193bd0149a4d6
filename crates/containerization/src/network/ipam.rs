//! Address management for one network: leases on disk, behind a file lock.
//!
//! The leases of network `<name>` live in `<state>/network/leases-<name>.json`;
//! every change holds an exclusive `flock` on `leases-<name>.lock`, reads the
//! file, changes it and replaces it atomically (temporary file, fsync,
//! rename), so two processes leasing at once never get the same address and a
//! crash never leaves a half-written file.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use containerization_netlink::MacAddress;

use super::PublishedPort;
use crate::{ContainerId, Error, state_file};

/// One container's address on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The container holding the address.
    pub container: ContainerId,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its IPv6 address, on a network with an IPv6 subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Addr>,
    /// The host-side link carrying its traffic (its tap, or its veth end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Ports published from the host to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PublishedPort>,
    /// The MAC its guest sends from, when it has a device (leases made
    /// before it was kept use the one made from the container's id alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddress>,
}

/// The address allocator of one network.
#[derive(Debug, Clone)]
pub struct Ipam {
    file: PathBuf,
    lock: PathBuf,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    ipv6: Option<(Ipv6Net, Ipv6Addr)>,
}

impl Ipam {
    /// The allocator of network `name` (subnet and gateway address) whose
    /// state lives in `dir` (the state root's `network/` folder).
    pub fn new(dir: &Path, name: &str, subnet: Ipv4Net, gateway: Ipv4Addr) -> Result<Self, Error> {
        if !subnet.contains(&gateway) {
            return Err(Error::InvalidNetwork(format!(
                "gateway {gateway} is outside the subnet {subnet}"
            )));
        }
        if subnet.prefix_len() > 30 {
            return Err(Error::InvalidNetwork(format!(
                "subnet {subnet} is too small: containers need a /30 or larger"
            )));
        }
        Ok(Self {
            file: dir.join(format!("leases-{name}.json")),
            lock: dir.join(format!("leases-{name}.lock")),
            subnet: subnet.trunc(),
            gateway,
            ipv6: None,
        })
    }

    /// Also leases IPv6 addresses from `subnet6`, never its gateway `gateway6`.
    pub fn with_ipv6(mut self, subnet6: Ipv6Net, gateway6: Ipv6Addr) -> Result<Self, Error> {
        if !subnet6.contains(&gateway6) {
            return Err(Error::InvalidNetwork(format!(
                "IPv6 gateway {gateway6} is outside the subnet {subnet6}"
            )));
        }
        self.ipv6 = Some((subnet6.trunc(), gateway6));
        Ok(self)
    }

    /// The lowest free address of a new lease, and of its IPv6 address.
    fn free_addresses(&self, leases: &[Lease]) -> Result<(Ipv4Addr, Option<Ipv6Addr>), Error> {
        let full = || Error::SubnetFull {
            subnet: self.subnet,
            leases: leases.len(),
        };
        let address = self
            .subnet
            .hosts()
            .find(|a| *a != self.gateway && leases.iter().all(|l| l.address != *a))
            .ok_or_else(full)?;
        let address6 = match self.ipv6 {
            None => None,
            Some((subnet6, gateway6)) => {
                let first = u128::from(subnet6.network()) + 1;
                let last = u128::from(subnet6.broadcast());
                // Among leases + 2 candidates one is free; the v4 subnet ends
                // long before a v6 one would.
                let candidates = (first..=last).take(leases.len() + 2).map(Ipv6Addr::from);
                let free = candidates
                    .filter(|a| *a != gateway6)
                    .find(|a| leases.iter().all(|l| l.address6 != Some(*a)))
                    .ok_or_else(full)?;
                Some(free)
            }
        };
        Ok((address, address6))
    }

    /// The address leased to `container`: its existing lease, or the lowest
    /// free address (never the network, broadcast or gateway address).
    pub fn lease(&self, container: &ContainerId) -> Result<Lease, Error> {
        self.update(|leases| {
            if let Some(existing) = leases.iter().find(|l| &l.container == container) {
                return Ok(existing.clone());
            }
            let (address, address6) = self.free_addresses(leases)?;
            let lease = Lease {
                container: container.clone(),
                address,
                address6,
                device: None,
                ports: Vec::new(),
                mac: None,
            };
            leases.push(lease.clone());
            Ok(lease)
        })
    }

    /// Like [`Ipam::lease`], recording at once the host-side device (named
    /// from the address by `device`), the guest's MAC and the published
    /// ports: one write.
    pub(crate) fn lease_with(
        &self,
        container: &ContainerId,
        device: impl FnOnce(Ipv4Addr) -> String,
        mac: MacAddress,
        ports: &[PublishedPort],
    ) -> Result<Lease, Error> {
        self.update(|leases| {
            let index = match leases.iter().position(|l| &l.container == container) {
                Some(index) => index,
                None => {
                    let (address, address6) = self.free_addresses(leases)?;
                    leases.push(Lease {
                        container: container.clone(),
                        address,
                        address6,
                        device: None,
                        ports: Vec::new(),
                        mac: None,
                    });
                    leases.len() - 1
                }
            };
            let lease = &mut leases[index];
            lease.device = Some(device(lease.address));
            lease.mac = Some(mac);
            lease.ports = ports.to_vec();
            Ok(lease.clone())
        })
    }

    /// Releases `container`'s address; returns whether it had one.
    pub fn release(&self, container: &ContainerId) -> Result<bool, Error> {
        self.update(|leases| {
            let before = leases.len();
            leases.retain(|l| &l.container != container);
            Ok(leases.len() != before)
        })
    }

    /// Releases the leases of containers for which `is_alive` says false, and
    /// returns them.
    pub fn reclaim(&self, is_alive: impl Fn(&ContainerId) -> bool) -> Result<Vec<Lease>, Error> {
        self.update(|leases| {
            let (alive, stale): (Vec<Lease>, Vec<Lease>) =
                leases.drain(..).partition(|l| is_alive(&l.container));
            *leases = alive;
            Ok(stale)
        })
    }

    /// Every current lease, sorted by address.
    pub fn leases(&self) -> Result<Vec<Lease>, Error> {
        self.update(|leases| Ok(leases.clone()))
    }

    /// Runs `change` on the leases under the lock, and saves them if they changed.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<Lease>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _lock = state_file::lock(&self.lock)?;
        let mut leases: Vec<Lease> = state_file::read_json(&self.file)?.unwrap_or_default();
        let before = leases.clone();
        let result = change(&mut leases)?;
        if leases != before {
            leases.sort_by_key(|l| l.address);
            self.save(&leases)?;
        }
        Ok(result)
    }

    /// Replaces the lease file: a temporary file renamed over it, so a reader
    /// sees the old leases or the new ones. Not synced to disk, on purpose: a
    /// sync costs more than the rest of a container's network setup, and
    /// leases only matter while their containers run, which a power loss
    /// ends anyway (the leases left behind are reclaimed as stale).
    fn save(&self, leases: &[Lease]) -> Result<(), Error> {
        let temporary = self.file.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(leases).map_err(|e| Error::CorruptState {
            path: self.file.clone(),
            detail: e.to_string(),
        })?;
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &self.file))
            .map_err(|source| Error::Io {
                path: temporary,
                source,
            })
    }

    /// Removes the lease file (for a network being deleted).
    pub(crate) fn remove_files(&self) -> Result<(), Error> {
        for path in [&self.file, &self.lock] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Io {
                        path: path.clone(),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> ContainerId {
        text.parse().unwrap()
    }

    fn ipam(dir: &Path, subnet: &str, gateway: &str) -> Ipam {
        Ipam::new(
            dir,
            "test",
            subnet.parse().unwrap(),
            gateway.parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn leases_skip_the_gateway_and_are_stable_per_container() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = ipam(dir.path(), "10.88.0.0/24", "10.88.0.1");
        let a = ipam.lease(&id("a")).unwrap();
        let b = ipam.lease(&id("b")).unwrap();
        assert_eq!(a.address, Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(b.address, Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(ipam.lease(&id("a")).unwrap(), a);
        assert!(ipam.release(&id("a")).unwrap());
        assert!(!ipam.release(&id("a")).unwrap());
        assert_eq!(
            ipam.lease(&id("c")).unwrap().address,
            a.address,
            "freed addresses are reused"
        );
    }

    #[test]
    fn ipv6_leases_skip_the_gateway_and_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = ipam(dir.path(), "10.88.0.0/24", "10.88.0.1")
            .with_ipv6(
                "fd00:88::/64".parse().unwrap(),
                "fd00:88::1".parse().unwrap(),
            )
            .unwrap();
        let a = ipam.lease(&id("a")).unwrap();
        let b = ipam.lease(&id("b")).unwrap();
        assert_eq!(a.address6, Some("fd00:88::2".parse().unwrap()));
        assert_eq!(b.address6, Some("fd00:88::3".parse().unwrap()));
        ipam.release(&id("a")).unwrap();
        assert_eq!(ipam.lease(&id("c")).unwrap().address6, a.address6);
    }

    #[test]
    fn a_full_subnet_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = ipam(dir.path(), "10.0.0.0/30", "10.0.0.1");
        ipam.lease(&id("only")).unwrap();
        let err = ipam.lease(&id("more")).unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/30"), "{err}");
    }

    #[test]
    fn stale_leases_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = ipam(dir.path(), "10.1.0.0/24", "10.1.0.1");
        for name in ["keep", "gone"] {
            ipam.lease(&id(name)).unwrap();
        }
        let stale = ipam.reclaim(|c| c.as_str() == "keep").unwrap();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].container, id("gone"));
        let left: Vec<_> = ipam
            .leases()
            .unwrap()
            .into_iter()
            .map(|l| l.container)
            .collect();
        assert_eq!(left, [id("keep")]);
    }

    #[test]
    fn bad_networks_and_corrupt_state_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = Ipam::new(
            dir.path(),
            "x",
            "10.0.0.0/24".parse().unwrap(),
            "10.0.1.1".parse().unwrap(),
        );
        assert!(outside.unwrap_err().to_string().contains("outside"));
        let ipam = ipam(dir.path(), "10.2.0.0/24", "10.2.0.1");
        std::fs::write(dir.path().join("leases-test.json"), b"not json").unwrap();
        let err = ipam.lease(&id("a")).unwrap_err();
        assert!(matches!(err, Error::CorruptState { .. }), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("leases-test.json")).unwrap(),
            b"not json"
        );
    }
}

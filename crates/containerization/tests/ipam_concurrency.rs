//! Two processes leasing at the same time never get the same address.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use containerization::ContainerId;
use containerization::network::Ipam;

const PER_PROCESS: usize = 25;
const WORKER_DIR: &str = "CZ_IPAM_WORKER_DIR";
const WORKER_NAME: &str = "CZ_IPAM_WORKER_NAME";

fn ipam(dir: &Path) -> Ipam {
    Ipam::new(
        dir,
        "race",
        "10.66.0.0/24".parse().expect("subnet"),
        Ipv4Addr::new(10, 66, 0, 1),
    )
    .expect("ipam")
}

/// The worker half: run by the test below in two child processes.
#[test]
#[ignore = "run by two_processes_leasing_at_once_get_distinct_addresses"]
fn lease_worker() {
    let (Some(dir), Some(name)) = (
        std::env::var_os(WORKER_DIR),
        std::env::var(WORKER_NAME).ok(),
    ) else {
        return;
    };
    let ipam = ipam(Path::new(&dir));
    for i in 0..PER_PROCESS {
        let id: ContainerId = format!("{name}-{i}").parse().unwrap();
        let lease = ipam.lease(&id).unwrap();
        println!("LEASE {} {}", lease.container, lease.address);
    }
}

#[test]
fn two_processes_leasing_at_once_get_distinct_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    let workers: Vec<_> = ["p1", "p2"]
        .into_iter()
        .map(|name| {
            Command::new(&me)
                .args([
                    "--exact",
                    "lease_worker",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_DIR, dir.path())
                .env(WORKER_NAME, name)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        let out = worker.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        // libtest prints "test lease_worker ... " without a newline first.
        let leases: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split("LEASE ").nth(1))
            .collect();
        assert_eq!(leases.len(), PER_PROCESS, "{text}");
        for line in leases {
            let address = line.rsplit(' ').next().unwrap().to_owned();
            assert!(seen.insert(address.clone()), "{address} handed out twice");
        }
    }
    assert_eq!(seen.len(), 2 * PER_PROCESS);
    let stored = ipam(dir.path()).leases().unwrap();
    assert_eq!(stored.len(), 2 * PER_PROCESS);
}

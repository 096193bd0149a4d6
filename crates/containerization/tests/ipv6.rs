//! A network with an IPv6 subnet as well: the gateway address on the bridge,
//! an IPv6 lease per container, containers pinging each other and the host
//! over IPv6, masquerade for IPv6 egress, refusals that change nothing, and a
//! teardown that restores the host but leaves IPv6 forwarding on. Namespaces
//! stand in for VMs; the test runs in a namespace of its own.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use containerization::network::{Attachment, Endpoint, NetworkManager};
use containerization::{ContainerId, Error};
use containerization_netlink::Netlink;
use containerization_testkit::{NamedNetns, enter_new_network_namespace};

fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("text")
}

/// Links, addresses, routes of both families and the ruleset. Not IP
/// forwarding: the first network turns it on for good.
fn snapshot() -> Vec<String> {
    vec![
        run("ip", &["-j", "link", "show"]),
        run("ip", &["-j", "addr", "show"]),
        run("ip", &["-j", "route", "show"]),
        run("ip", &["-6", "-j", "route", "show"]),
        run("nft", &["-j", "list", "ruleset"]),
    ]
}

/// The guest's side: both addresses (IPv6 without duplicate address
/// detection, as a VM's agent would set it), up, default routes.
fn configure(guest: &NamedNetns, attachment: &Attachment) {
    let device = attachment.guest_device.as_deref().expect("a veth endpoint");
    let address6 = attachment.address6.expect("an IPv6 address").to_string();
    let gateway6 = attachment.gateway6.expect("an IPv6 gateway").to_string();
    for argv in [
        vec![
            "ip",
            "addr",
            "add",
            &attachment.address.to_string(),
            "dev",
            device,
        ],
        vec!["ip", "-6", "addr", "add", &address6, "dev", device, "nodad"],
        vec!["ip", "link", "set", device, "up"],
        vec!["ip", "-6", "route", "add", "default", "via", &gateway6],
    ] {
        guest.exec(&argv).expect("test step");
    }
}

/// Pings `address` from `guest` until it answers (the bridge's own address
/// answers once its duplicate address detection is over).
fn ping6(guest: &NamedNetns, address: &str) {
    let start = Instant::now();
    loop {
        match guest.exec(&["busybox", "ping", "-6", "-c", "1", "-W", "2", address]) {
            Ok(_) => return,
            Err(e) if start.elapsed() > Duration::from_secs(15) => panic!("ping {address}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[tokio::test]
async fn containers_ping_each_other_and_the_host_over_ipv6_and_teardown_restores_the_host() {
    enter_new_network_namespace().unwrap();
    run("ip", &["link", "set", "lo", "up"]);
    let before = snapshot();
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    let network = manager
        .create_with_ipv6(
            "six",
            Some("10.79.0.0/24".parse().unwrap()),
            None,
            Some(("fd00:79::/64".parse().unwrap(), None)),
        )
        .await
        .unwrap();
    assert_eq!(network.gateway6, Some("fd00:79::1".parse().unwrap()));
    let bridge = run("ip", &["-j", "addr", "show", &network.bridge]);
    assert!(
        bridge.contains(r#""local":"fd00:79::1","prefixlen":64"#),
        "{bridge}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").unwrap(),
        "1\n"
    );
    let ruleset = run("nft", &["list", "ruleset"]);
    assert!(
        ruleset.contains("ip6 saddr fd00:79::/64 ip6 daddr != fd00:79::/64 masquerade"),
        "{ruleset}"
    );

    // Refusals change nothing: a subnet given with host bits, one overlapping
    // the network's.
    let unchanged = snapshot();
    let err = manager
        .create_with_ipv6(
            "bad",
            Some("10.80.0.0/24".parse().unwrap()),
            None,
            Some(("fd00:80::1/64".parse().unwrap(), None)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidNetwork(_)), "{err}");
    assert!(
        err.to_string().contains("did you mean fd00:80::/64"),
        "{err}"
    );
    let err = manager
        .create_with_ipv6(
            "bad",
            Some("10.80.0.0/24".parse().unwrap()),
            None,
            Some(("fd00:79::/48".parse().unwrap(), None)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("network \"six\""), "{err}");
    assert_eq!(snapshot(), unchanged);
    assert!(manager.list().unwrap().iter().all(|n| n.name != "bad"));

    let (guest_a, guest_b) = (NamedNetns::new().unwrap(), NamedNetns::new().unwrap());
    let (id_a, id_b): (ContainerId, ContainerId) = ("a".parse().unwrap(), "b".parse().unwrap());
    let mut attachments = Vec::new();
    for (guest, id) in [(&guest_a, &id_a), (&guest_b, &id_b)] {
        let file = guest.open().unwrap();
        let endpoint = Endpoint::Veth {
            namespace: file.as_fd(),
        };
        let attachment = manager.attach("six", id, endpoint, &[]).await.unwrap();
        configure(guest, &attachment);
        attachments.push(attachment);
    }
    let (a, b) = (&attachments[0], &attachments[1]);
    assert_eq!(
        (
            a.address6.unwrap().to_string(),
            b.address6.unwrap().to_string()
        ),
        ("fd00:79::2/64".into(), "fd00:79::3/64".into())
    );

    // Container to container through the bridge, and to the host's gateway.
    ping6(&guest_a, &b.address6.unwrap().addr().to_string());
    ping6(&guest_b, &a.address6.unwrap().addr().to_string());
    ping6(&guest_a, "fd00:79::1");

    manager.detach("six", &id_a).await.unwrap();
    manager.detach("six", &id_b).await.unwrap();
    manager.remove("six").await.unwrap();
    assert_eq!(snapshot(), before, "teardown left the host as it was");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").unwrap(),
        "1\n",
        "IPv6 forwarding stays on"
    );
}

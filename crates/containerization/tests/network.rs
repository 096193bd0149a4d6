//! Named networks against the real kernel, in a network namespace of the
//! test's own: creation, subnet choice from the default address pools around
//! what the host uses, refusals that change nothing, a teardown that leaves
//! links, addresses and routes as they were, and IP forwarding left on.

use containerization::network::NetworkManager;
use containerization::{ContainerId, Error};
use containerization_netlink::Netlink;
use containerization_testkit::enter_new_network_namespace;

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("ip runs");
    assert!(out.status.success(), "ip {args:?}");
    String::from_utf8(out.stdout).expect("text")
}

/// `ip -j link`, `addr` and `route`: the host's network state.
/// Links, addresses and routes, without what the kernel changes by itself
/// a moment after a bridge appears (its carrier and operational state).
fn snapshot() -> [String; 3] {
    let settle = |text: String| {
        let mut json: serde_json::Value = serde_json::from_str(&text).expect("ip -j output");
        if let Some(entries) = json.as_array_mut() {
            for entry in entries {
                if let Some(object) = entry.as_object_mut() {
                    object.remove("operstate");
                    if let Some(flags) = object.get_mut("flags").and_then(|f| f.as_array_mut()) {
                        flags.retain(|f| f != "NO-CARRIER" && f != "linkdown");
                    }
                }
            }
        }
        json.to_string()
    };
    [
        settle(ip(&["-j", "link", "show"])),
        settle(ip(&["-j", "addr", "show"])),
        settle(ip(&["-j", "route", "show"])),
    ]
}

#[tokio::test]
async fn networks_are_created_refused_and_removed_cleanly() {
    enter_new_network_namespace().unwrap();
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    // A host route a subnet asked for must not overlap.
    ip(&[
        "link", "add", "czdummy", "type", "veth", "peer", "name", "czdummyp",
    ]);
    ip(&["addr", "add", "10.88.0.5/24", "dev", "czdummy"]);
    ip(&["link", "set", "czdummy", "up"]);
    let before = snapshot();

    let web = manager
        .create("web", Some("10.70.0.0/24".parse().unwrap()), None)
        .await
        .unwrap();
    // A state root other than the system root names its bridges after itself.
    assert!(
        web.bridge.starts_with("czb") && web.bridge.len() == 15,
        "{}",
        web.bridge
    );
    assert_eq!(web.gateway.to_string(), "10.70.0.1");
    let shown = ip(&["-j", "addr", "show", &web.bridge]);
    assert!(
        shown.contains(r#""local":"10.70.0.1","prefixlen":24"#),
        "{shown}"
    );
    assert!(shown.contains(r#""UP""#), "{shown}");

    let picked = manager.create("auto", None, None).await.unwrap();
    assert_eq!(picked.subnet.to_string(), "172.18.0.0/24");

    let unchanged = snapshot();
    let refusals = [
        manager
            .create("web", Some("10.71.0.0/24".parse().unwrap()), None)
            .await,
        manager
            .create("other", Some("10.70.0.0/25".parse().unwrap()), None)
            .await,
        manager
            .create("dummy", Some("10.88.0.0/25".parse().unwrap()), None)
            .await,
        manager.create("Bad Name", None, None).await,
    ];
    let messages: Vec<String> = refusals
        .into_iter()
        .map(|r| r.unwrap_err().to_string())
        .collect();
    assert!(
        messages[0].contains("\"web\" already exists"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("overlaps network \"web\""),
        "{}",
        messages[1]
    );
    assert!(
        messages[2].contains("host route to 10.88.0.0/24 on czdummy"),
        "{}",
        messages[2]
    );
    assert!(
        messages[3].contains("invalid network name"),
        "{}",
        messages[3]
    );
    assert_eq!(snapshot(), unchanged, "refused requests changed the host");

    let names: Vec<String> = manager
        .list()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["auto", "web"]);

    let ipam = manager.ipam(&web).unwrap();
    let container: ContainerId = "c1".parse().unwrap();
    assert_eq!(
        ipam.lease(&container).unwrap().address.to_string(),
        "10.70.0.2"
    );
    let err = manager.remove("web").await.unwrap_err();
    assert!(matches!(err, Error::NetworkInUse { .. }), "{err}");
    assert!(err.to_string().contains("c1"), "{err}");
    ipam.release(&container).unwrap();

    manager.remove("web").await.unwrap();
    manager.remove("auto").await.unwrap();
    assert!(matches!(
        manager.remove("web").await,
        Err(Error::NetworkNotFound(_))
    ));
    assert_eq!(snapshot(), before, "teardown left the host as it was");
    assert!(manager.list().unwrap().is_empty());
}

/// IPv4 and IPv6 forwarding, as `/proc/sys` has them.
fn forwarding() -> [String; 2] {
    [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ]
    .map(|path| std::fs::read_to_string(path).expect("forwarding setting"))
}

#[tokio::test]
async fn removing_the_last_network_leaves_ip_forwarding_on() {
    enter_new_network_namespace().unwrap();
    // A new namespace may start forwarding already (some kernels copy the
    // host's IPv4 setting, which Podman turns on): start from off.
    for path in [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ] {
        std::fs::write(path, "0").expect("turn forwarding off");
    }
    assert_eq!(forwarding(), ["0\n", "0\n"]);
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    manager
        .create_with_ipv6(
            "fwd",
            Some("10.72.0.0/24".parse().unwrap()),
            None,
            Some(("fd00:72::/64".parse().unwrap(), None)),
        )
        .await
        .unwrap();
    assert_eq!(forwarding(), ["1\n", "1\n"]);
    manager.remove("fwd").await.unwrap();
    assert_eq!(
        forwarding(),
        ["1\n", "1\n"],
        "another runtime's bridge may still need forwarding"
    );
    assert!(!state.path().join("host.json").exists());
}

#[tokio::test]
async fn a_network_without_a_subnet_avoids_host_routes_and_addresses_and_other_runtimes() {
    enter_new_network_namespace().unwrap();
    // Podman's default network, as `cni-podman0` has it.
    ip(&["link", "add", "cni-podman0", "type", "bridge"]);
    ip(&["addr", "add", "10.88.0.1/16", "dev", "cni-podman0"]);
    ip(&["link", "set", "cni-podman0", "up"]);
    // The first candidate /24 is an address on a link that is down (no
    // route), the second is routed.
    ip(&[
        "link", "add", "czdown", "type", "veth", "peer", "name", "czdownp",
    ]);
    ip(&["addr", "add", "172.18.0.7/24", "dev", "czdown"]);
    ip(&[
        "link", "add", "czup", "type", "veth", "peer", "name", "czupp",
    ]);
    ip(&["link", "set", "czup", "up"]);
    ip(&["route", "add", "172.18.1.0/24", "dev", "czup"]);
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());

    let first = manager.create("first", None, None).await.unwrap();
    assert_eq!(first.subnet.to_string(), "172.18.2.0/24");
    let second = manager.create("second", None, None).await.unwrap();
    assert_eq!(second.subnet.to_string(), "172.18.3.0/24");

    // The first pool (172.18.0.0/15) filled up: the next one is used.
    ip(&["route", "add", "172.18.0.0/15", "dev", "czup"]);
    let third = manager.create("third", None, None).await.unwrap();
    assert_eq!(third.subnet.to_string(), "172.20.0.0/24");

    // Every pool covered: the way out is named.
    ip(&["route", "add", "172.16.0.0/12", "dev", "czup"]);
    ip(&["route", "add", "192.168.0.0/16", "dev", "czup"]);
    let err = manager.create("fourth", None, None).await.unwrap_err();
    assert!(err.to_string().contains("--subnet"), "{err}");

    for name in ["first", "second", "third"] {
        manager.remove(name).await.unwrap();
    }
}

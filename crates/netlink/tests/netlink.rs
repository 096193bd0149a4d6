//! The netlink API against the real kernel, each test in a network namespace
//! of its own, cross-checked with `ip -j`.

use std::net::IpAddr;
use std::os::fd::AsFd;

use containerization_netlink::{
    InterfaceConfig, InterfaceSelector, MacAddress, Netlink, NetlinkError, configure_interface,
};
use containerization_testkit::{NamedNetns, enter_new_network_namespace};
use serde_json::Value;

fn ip_json(args: &[&str]) -> Value {
    let out = std::process::Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip -j prints JSON")
}

fn isolated() -> Netlink {
    enter_new_network_namespace().expect("a network namespace of our own");
    Netlink::connect().expect("netlink socket")
}

#[tokio::test]
async fn bridge_veth_and_addresses_match_what_ip_reports() {
    let nl = isolated();
    let bridge = nl.create_bridge("czbr0").await.unwrap();
    assert_eq!(bridge.kind.as_deref(), Some("bridge"));
    let (host, peer) = nl.create_veth("czv0", "czv0p").await.unwrap();
    assert_eq!(host.kind.as_deref(), Some("veth"));

    let mac: MacAddress = "02:00:00:00:00:aa".parse().unwrap();
    nl.set_mac(&host, mac).await.unwrap();
    nl.set_mtu(&host, 1400).await.unwrap();
    nl.set_master(&host, Some(&bridge)).await.unwrap();
    for link in [&bridge, &host, &peer] {
        nl.set_up(link).await.unwrap();
    }
    nl.add_address(&bridge, "10.77.0.1/24".parse().unwrap())
        .await
        .unwrap();
    nl.add_address(&bridge, "fd77::1/64".parse().unwrap())
        .await
        .unwrap();

    let host = nl.link_by_name("czv0").await.unwrap();
    assert_eq!(
        (host.mac, host.mtu, host.master, host.up),
        (Some(mac), Some(1400), Some(bridge.index), true)
    );
    let shown = ip_json(&["link", "show", "czv0"]);
    assert_eq!(shown[0]["master"], "czbr0");
    assert_eq!(shown[0]["mtu"], 1400);
    assert_eq!(shown[0]["address"], "02:00:00:00:00:aa");

    let ours: Vec<String> = nl
        .addresses(Some(&bridge))
        .await
        .unwrap()
        .iter()
        .map(|a| a.address.to_string())
        .collect();
    for expected in ["10.77.0.1/24", "fd77::1/64"] {
        assert!(
            ours.contains(&expected.to_owned()),
            "{expected} in {ours:?}"
        );
    }
    let theirs = ip_json(&["addr", "show", "czbr0"]);
    let local: Vec<String> = theirs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    for address in &ours {
        assert!(local.contains(address), "ip shows {address}: {local:?}");
    }

    nl.delete_address(&bridge, "10.77.0.1/24".parse().unwrap())
        .await
        .unwrap();
    assert!(
        !ip_json(&["addr", "show", "czbr0"])
            .to_string()
            .contains("10.77.0.1")
    );
    nl.set_master(&host, None).await.unwrap();
    assert_eq!(nl.link_by_name("czv0").await.unwrap().master, None);
    nl.set_down(&host).await.unwrap();
    nl.set_name(&host, "czrenamed").await.unwrap();
    assert_eq!(
        nl.link_by_index(host.index).await.unwrap().name,
        "czrenamed"
    );
    nl.delete_link(&host).await.unwrap();
    assert!(matches!(
        nl.link_by_name("czv0p").await,
        Err(NetlinkError::NotFound { .. })
    ));
}

#[tokio::test]
async fn errors_are_typed_and_name_the_object() {
    let nl = isolated();
    let err = nl.link_by_name("nosuch0").await.unwrap_err();
    assert!(matches!(err, NetlinkError::NotFound { .. }));
    assert!(err.to_string().contains("nosuch0"), "{err}");

    let bridge = nl.create_bridge("czdup").await.unwrap();
    let err = nl.create_bridge("czdup").await.unwrap_err();
    assert!(matches!(err, NetlinkError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("czdup"), "{err}");

    nl.add_address(&bridge, "10.1.2.3/24".parse().unwrap())
        .await
        .unwrap();
    let err = nl
        .add_address(&bridge, "10.1.2.3/24".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, NetlinkError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("10.1.2.3/24 on czdup"), "{err}");
    let err = nl
        .delete_address(&bridge, "10.9.9.9/24".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, NetlinkError::NotFound { .. }), "{err}");

    let err = nl.create_bridge("far-too-long-a-name").await.unwrap_err();
    assert!(matches!(err, NetlinkError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn persistent_tap_outlives_its_descriptor_and_joins_a_bridge() {
    let nl = isolated();
    let bridge = nl.create_bridge("czbr1").await.unwrap();
    let tap = nl.create_tap("cztap0", None).await.unwrap();
    assert_eq!(tap.kind.as_deref(), Some("tun"));
    nl.set_master(&tap, Some(&bridge)).await.unwrap();

    let details = ip_json(&["-d", "link", "show", "cztap0"]);
    let info = &details[0]["linkinfo"]["info_data"];
    assert_eq!(info["type"], "tap");
    assert_eq!(info["pi"], false);
    assert_eq!(info["vnet_hdr"], true);
    assert_eq!(info["persist"], true);
    assert_eq!(details[0]["master"], "czbr1");

    let err = nl.create_tap("cztap0", None).await.unwrap_err();
    assert!(matches!(err, NetlinkError::AlreadyExists { .. }), "{err}");
    // A queue opened for QEMU attaches to the device and does not end it.
    let queue = containerization_netlink::open_tap("cztap0").expect("a queue");
    drop(queue);
    assert!(nl.link_by_name("cztap0").await.is_ok(), "the tap went");
    let err = containerization_netlink::open_tap("cztap9").unwrap_err();
    assert!(matches!(err, NetlinkError::NotFound { .. }), "{err}");
    assert!(nl.link_by_name("cztap9").await.is_err(), "a tap was made");
    nl.delete_link(&tap).await.unwrap();
    assert!(nl.link_by_name("cztap0").await.is_err());
}

#[tokio::test]
async fn routes_are_added_listed_and_deleted() {
    let nl = isolated();
    let (link, peer) = nl.create_veth("czr0", "czr0p").await.unwrap();
    nl.set_up(&link).await.unwrap();
    nl.set_up(&peer).await.unwrap();
    nl.add_address(&link, "192.168.77.2/24".parse().unwrap())
        .await
        .unwrap();
    nl.add_link_route(&link, "10.5.5.5/32".parse().unwrap())
        .await
        .unwrap();
    let gateway: IpAddr = "10.5.5.5".parse().unwrap();
    nl.add_default_route(&link, gateway).await.unwrap();

    let routes = nl.routes().await.unwrap();
    let default = routes
        .iter()
        .find(|r| r.is_default())
        .expect("a default route");
    assert_eq!(
        (default.gateway, default.link_index),
        (Some(gateway), Some(link.index))
    );
    let host = routes
        .iter()
        .find(|r| r.destination.to_string() == "10.5.5.5/32")
        .expect("the link route");
    assert!(host.link_scope);

    let shown = ip_json(&["route", "show"]);
    let by_dst = |dst: &str| {
        shown
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["dst"] == dst)
            .unwrap_or_else(|| panic!("ip shows no route to {dst}: {shown}"))
            .clone()
    };
    let default = by_dst("default");
    assert_eq!(
        (&default["gateway"], &default["dev"]),
        (&"10.5.5.5".into(), &"czr0".into())
    );
    let host_route = by_dst("10.5.5.5");
    assert_eq!(
        (&host_route["dev"], &host_route["scope"]),
        (&"czr0".into(), &"link".into())
    );
    // `ip` leaves out the protocol when it is "boot", its own default.
    assert!(host_route.get("protocol").is_none(), "{host_route}");

    let ours = routes.iter().find(|r| r.is_default()).unwrap();
    nl.delete_route(ours).await.unwrap();
    assert!(nl.routes().await.unwrap().iter().all(|r| !r.is_default()));
    let err = nl.delete_route(ours).await.unwrap_err();
    assert!(matches!(err, NetlinkError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_link_moves_into_another_namespace() {
    let nl = isolated();
    let guest = NamedNetns::new().unwrap();
    let (_, peer) = nl.create_veth("czm0", "czm0p").await.unwrap();
    let namespace = guest.open().unwrap();
    nl.set_netns(&peer, namespace.as_fd()).await.unwrap();
    assert!(nl.link_by_name("czm0p").await.is_err());
    assert!(
        guest
            .exec(&["ip", "link", "show", "czm0p"])
            .unwrap()
            .contains("czm0p")
    );
}

/// Runs `configure_interface` inside `namespace`, on a thread that joins it.
fn configure_in(namespace: &NamedNetns, config: InterfaceConfig) {
    let file = namespace.open().expect("namespace file");
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let nl = Netlink::connect().expect("netlink socket");
            configure_interface(&nl, &config).await.expect("configured");
            // A second run changes nothing and does not fail.
            configure_interface(&nl, &config)
                .await
                .expect("configured again");
        });
    })
    .join()
    .expect("configuring thread");
}

/// `ip -j addr` and `ip -j route` of a namespace, without the fields that
/// differ between two namespaces by construction (indexes, peer namespaces).
fn network_view(namespace: &NamedNetns) -> (Value, Value) {
    let strip = |mut value: Value| {
        for item in value.as_array_mut().expect("a JSON list") {
            let object = item.as_object_mut().expect("JSON objects");
            for key in ["ifindex", "link_index", "link_netnsid", "link"] {
                object.remove(key);
            }
            if let Some(infos) = object.get_mut("addr_info").and_then(Value::as_array_mut) {
                // IPv6 link-local addresses appear on their own schedule (DAD).
                infos.retain(|info| info["family"] == "inet");
            }
        }
        value
    };
    let parse = |text: String| serde_json::from_str::<Value>(&text).expect("ip -j prints JSON");
    (
        strip(parse(
            namespace
                .exec(&["ip", "-j", "addr", "show"])
                .expect("ip addr"),
        )),
        strip(parse(
            namespace
                .exec(&["ip", "-j", "route", "show"])
                .expect("ip route"),
        )),
    )
}

#[tokio::test]
async fn guest_helper_configures_an_interface_exactly_as_ip_does() {
    let nl = isolated();
    let ours = NamedNetns::new().unwrap();
    let theirs = NamedNetns::new().unwrap();
    let mac: MacAddress = "02:42:0a:00:00:02".parse().unwrap();
    for (host_end, namespace) in [("czga", &ours), ("czgb", &theirs)] {
        let (host, guest) = nl.create_veth(host_end, "eth0").await.unwrap();
        nl.set_mac(&guest, mac).await.unwrap();
        nl.set_up(&host).await.unwrap();
        nl.set_netns(&guest, namespace.open().unwrap().as_fd())
            .await
            .unwrap();
    }
    // The namespaces start with lo up; take it down so the helper must raise it.
    for namespace in [&ours, &theirs] {
        namespace
            .exec(&["ip", "link", "set", "lo", "down"])
            .unwrap();
    }

    // The gateway lies outside the /24, so a link route must come first.
    configure_in(
        &ours,
        InterfaceConfig {
            interface: InterfaceSelector::Mac(mac),
            address: "10.88.0.2/24".parse().unwrap(),
            mtu: Some(1400),
            gateway: Some("10.99.0.1".parse().unwrap()),
        },
    );
    for argv in [
        &["ip", "link", "set", "lo", "up"][..],
        &["ip", "link", "set", "eth0", "mtu", "1400"],
        &[
            "ip",
            "addr",
            "add",
            "10.88.0.2/24",
            "brd",
            "+",
            "dev",
            "eth0",
        ],
        &["ip", "link", "set", "eth0", "up"],
        &[
            "ip",
            "route",
            "add",
            "10.99.0.1",
            "dev",
            "eth0",
            "scope",
            "link",
        ],
        &[
            "ip",
            "route",
            "add",
            "default",
            "via",
            "10.99.0.1",
            "dev",
            "eth0",
        ],
    ] {
        theirs.exec(argv).unwrap();
    }
    let (our_addr, our_routes) = network_view(&ours);
    let (their_addr, their_routes) = network_view(&theirs);
    assert_eq!(our_addr, their_addr);
    assert_eq!(our_routes, their_routes);
    assert!(our_routes.to_string().contains("10.99.0.1"));
}

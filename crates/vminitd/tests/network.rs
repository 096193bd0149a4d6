//! The network calls against vminitd on this host, in a network namespace of
//! its own holding one end of a veth pair: what the calls leave is what `ip`
//! commands leave in a twin namespace, and bad input is refused naming the
//! interface. Needs root (`ip netns add`); says SKIPPED loudly without it.

mod support;

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use containerization_agent::proto::v1::{
    ConfigureInterfaceRequest, InterfaceSelector, LinkSetRequest, RouteAddRequest,
};
use containerization_agent::{AgentClient, AgentError, Connector, UnixConnector};
use containerization_testkit::NamedNetns;
use serde_json::Value;

/// A network namespace with one end of a veth pair (named `eth0` inside),
/// whose other end stays on the host; both go with the namespace.
struct VethNetns {
    netns: NamedNetns,
    /// The host end's name.
    host_end: String,
}

impl VethNetns {
    fn new() -> Result<Self, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let netns = NamedNetns::new().map_err(|e| e.to_string())?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let (host_end, inner) = (format!("czh{tag}"), format!("czg{tag}"));
        let ip = |args: &[&str]| {
            let status = Command::new("ip").args(args).status();
            match status {
                Ok(s) if s.success() => Ok(()),
                other => Err(format!("ip {}: {other:?}", args.join(" "))),
            }
        };
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", &inner,
        ])?;
        let made = Self { netns, host_end };
        ip(&["link", "set", &inner, "netns", made.netns.name()])?;
        made.netns
            .exec(&["ip", "link", "set", &inner, "name", "eth0"])
            .map_err(|e| e.to_string())?;
        Ok(made)
    }

    /// `ip -j ARGS` in the namespace, parsed.
    fn ip_json(&self, args: &[&str]) -> Value {
        let mut argv = vec!["ip", "-j"];
        argv.extend_from_slice(args);
        let text = self.netns.exec(&argv).expect("ip -j in the namespace");
        serde_json::from_str(&text).expect("ip -j prints JSON")
    }

    /// `ip ARGS` in the namespace, which must succeed.
    fn ip(&self, args: &[&str]) {
        let mut argv = vec!["ip"];
        argv.extend_from_slice(args);
        self.netns.exec(&argv).expect("ip in the namespace");
    }

    /// The addresses of `eth0`: (family, local, prefix length), sorted.
    fn addresses(&self) -> Vec<(String, String, u64)> {
        let links = self.ip_json(&["addr", "show", "dev", "eth0"]);
        let mut found: Vec<_> = links[0]["addr_info"]
            .as_array()
            .expect("addr_info")
            .iter()
            // Link-local IPv6 addresses come and go with the link state.
            .filter(|a| a["scope"] != "link")
            .map(|a| {
                (
                    a["family"].as_str().unwrap_or_default().to_owned(),
                    a["local"].as_str().unwrap_or_default().to_owned(),
                    a["prefixlen"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        found.sort();
        found
    }

    /// The IPv4 and IPv6 routes of the main table, as `ip -j route` shows
    /// them, sorted.
    fn routes(&self) -> Vec<Value> {
        let mut routes = self.ip_json(&["-4", "route", "show"]);
        let mut all = routes.as_array_mut().expect("routes").clone();
        let six = self.ip_json(&["-6", "route", "show"]);
        all.extend(
            six.as_array()
                .expect("routes")
                .iter()
                .filter(|r| !r["dst"].as_str().unwrap_or_default().starts_with("fe80"))
                .cloned(),
        );
        all.sort_by_key(Value::to_string);
        all
    }
}

impl Drop for VethNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_end])
            .output();
    }
}

/// vminitd on a unix socket, run inside `netns`.
struct NetnsAgent {
    child: Child,
    client: AgentClient,
    _dir: tempfile::TempDir,
}

impl NetnsAgent {
    async fn start(netns: &VethNetns) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let socket = dir.path().join("agent.sock");
        let mut child = netns
            .netns
            .command(env!("CARGO_BIN_EXE_vminitd"))
            .arg("--unix")
            .arg(&socket)
            .args(["--log", "warn"])
            .spawn()
            .expect("spawn vminitd in the namespace");
        let connector: Arc<dyn Connector> = Arc::new(UnixConnector::new(&socket));
        for _ in 0..250 {
            if let Ok(client) = AgentClient::connect(&connector, Duration::from_secs(10)).await {
                return Self {
                    child,
                    client,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("vminitd in the namespace did not answer");
    }
}

impl Drop for NetnsAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A namespace (or None after a loud SKIPPED line).
fn namespace(test: &str) -> Option<VethNetns> {
    match VethNetns::new() {
        Ok(netns) => Some(netns),
        Err(why) => {
            eprintln!("SKIPPED: {test}: network namespaces and veth pairs need root: {why}");
            None
        }
    }
}

fn eth0() -> Option<InterfaceSelector> {
    Some(InterfaceSelector::by_name("eth0"))
}

#[tokio::test]
async fn the_network_calls_leave_what_ip_commands_leave() {
    let test = "the_network_calls_leave_what_ip_commands_leave";
    let (Some(ours), Some(twin)) = (namespace(test), namespace(test)) else {
        return;
    };
    let agent = NetnsAgent::start(&ours).await;
    let c = &agent.client;
    // Rename (the link is down), set the MTU, then bring it up.
    let renamed = c
        .link_set(LinkSetRequest {
            interface: eth0(),
            name: "cz0".into(),
            mtu: Some(1400),
            ..Default::default()
        })
        .await
        .expect("rename");
    assert_eq!((renamed.name.as_str(), renamed.mtu), ("cz0", 1400));
    let up = c
        .link_set(LinkSetRequest {
            interface: Some(InterfaceSelector::by_name("cz0")),
            name: "eth0".into(),
            up: Some(true),
            ..Default::default()
        })
        .await
        .expect("rename back and up");
    assert!(up.up && up.name == "eth0", "{up:?}");
    c.address_add(InterfaceSelector::by_name("eth0"), "10.77.1.2/24")
        .await
        .expect("IPv4 address");
    c.address_add(InterfaceSelector::by_mac(&up.mac), "fd77::2/64")
        .await
        .expect("IPv6 address, by MAC");
    for (destination, gateway) in [
        ("default", "10.77.1.1"),
        ("10.99.0.0/16", "10.77.1.1"),
        ("192.168.50.0/24", ""),
        ("fd99::/64", "fd77::1"),
    ] {
        c.route_add(RouteAddRequest {
            interface: eth0(),
            destination: destination.into(),
            gateway: gateway.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("route {destination} via {gateway:?}: {e}"));
    }

    // The same with ip(8) in the twin namespace.
    twin.ip(&["link", "set", "eth0", "mtu", "1400"]);
    twin.ip(&["link", "set", "eth0", "up"]);
    twin.ip(&["addr", "add", "10.77.1.2/24", "dev", "eth0"]);
    twin.ip(&["addr", "add", "fd77::2/64", "dev", "eth0"]);
    twin.ip(&["route", "add", "default", "via", "10.77.1.1", "dev", "eth0"]);
    twin.ip(&[
        "route",
        "add",
        "10.99.0.0/16",
        "via",
        "10.77.1.1",
        "dev",
        "eth0",
    ]);
    twin.ip(&["route", "add", "192.168.50.0/24", "dev", "eth0"]);
    twin.ip(&["route", "add", "fd99::/64", "via", "fd77::1", "dev", "eth0"]);

    // Flags such as "linkdown" depend on the peer's state; compare the rest.
    let strip = |mut routes: Vec<Value>| {
        for route in &mut routes {
            if let Some(object) = route.as_object_mut() {
                object.remove("flags");
            }
        }
        routes
    };
    assert_eq!(ours.addresses(), twin.addresses());
    assert_eq!(
        ours.addresses(),
        [
            ("inet".to_owned(), "10.77.1.2".to_owned(), 24),
            ("inet6".to_owned(), "fd77::2".to_owned(), 64)
        ]
    );
    let routes = strip(ours.routes());
    assert_eq!(routes, strip(twin.routes()));
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "default" && r["gateway"] == "10.77.1.1" && r["dev"] == "eth0"),
        "{routes:?}"
    );
    let mtu = ours.ip_json(&["link", "show", "eth0"])[0]["mtu"].clone();
    assert_eq!(mtu, 1400);
}

#[tokio::test]
async fn bad_network_input_is_refused_naming_the_interface() {
    let test = "bad_network_input_is_refused_naming_the_interface";
    let Some(ours) = namespace(test) else {
        return;
    };
    let agent = NetnsAgent::start(&ours).await;
    let c = &agent.client;
    let err = c
        .address_add(InterfaceSelector::by_name("nope0"), "10.0.0.2/24")
        .await
        .expect_err("no such interface");
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("interface nope0"), "{err}");

    let err = c
        .address_add(
            InterfaceSelector::by_mac("02:00:00:00:99:99"),
            "10.0.0.2/24",
        )
        .await
        .expect_err("no such MAC");
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("02:00:00:00:99:99"), "{err}");

    let err = c
        .address_add(InterfaceSelector::by_name("eth0"), "10.0.0.2")
        .await
        .expect_err("no prefix length");
    assert!(matches!(err, AgentError::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("interface eth0"), "{err}");

    c.address_add(InterfaceSelector::by_name("eth0"), "10.0.0.2/24")
        .await
        .expect("first add");
    let err = c
        .address_add(InterfaceSelector::by_name("eth0"), "10.0.0.2/24")
        .await
        .expect_err("second add");
    assert!(matches!(err, AgentError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("on eth0"), "{err}");

    let err = c
        .route_add(RouteAddRequest {
            interface: eth0(),
            destination: "default".into(),
            gateway: String::new(),
        })
        .await
        .expect_err("a default route without a gateway");
    assert!(matches!(err, AgentError::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("interface eth0"), "{err}");

    let err = c
        .link_set(LinkSetRequest {
            interface: eth0(),
            name: "a/b".into(),
            ..Default::default()
        })
        .await
        .expect_err("a bad name");
    assert!(matches!(err, AgentError::InvalidArgument { .. }), "{err:?}");
}

#[tokio::test]
async fn configure_interface_adds_a_link_route_to_a_gateway_outside_the_subnet() {
    let test = "configure_interface_adds_a_link_route_to_a_gateway_outside_the_subnet";
    let Some(ours) = namespace(test) else {
        return;
    };
    let agent = NetnsAgent::start(&ours).await;
    let request = ConfigureInterfaceRequest {
        interface: eth0(),
        address: "10.77.2.2/32".into(),
        mtu: 0,
        gateway: "10.77.9.1".into(),
    };
    let state = agent
        .client
        .configure_interface(request.clone())
        .await
        .expect("configure");
    assert!(state.up && state.name == "eth0", "{state:?}");
    agent
        .client
        .configure_interface(request)
        .await
        .expect("a second identical call changes nothing");
    let routes = ours.routes();
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "10.77.9.1" && r["scope"] == "link" && r["dev"] == "eth0"),
        "{routes:?}"
    );
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "default" && r["gateway"] == "10.77.9.1"),
        "{routes:?}"
    );
    let lo = ours.ip_json(&["link", "show", "lo"]);
    assert!(
        lo[0]["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP")),
        "lo is up: {lo}"
    );
}

/// Calls made at once (a host configuring several cards of a guest) all
/// succeed: each lists the links, and the kernel refuses a second dump on
/// one socket while another runs, so vminitd takes them one at a time.
#[tokio::test]
async fn network_calls_made_at_once_all_succeed() {
    let test = "network_calls_made_at_once_all_succeed";
    let Some(ours) = namespace(test) else {
        return;
    };
    // Enough links that a listing takes several messages, so listings
    // overlap.
    for i in 0..32 {
        let (a, b) = (format!("cza{i}"), format!("czb{i}"));
        ours.netns
            .exec(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b])
            .expect("a veth pair in the namespace");
    }
    let agent = NetnsAgent::start(&ours).await;
    // Found by MAC, which lists the links.
    let shown = ours.ip_json(&["link", "show", "eth0"]);
    let mac = shown[0]["address"].as_str().expect("eth0's MAC").to_owned();
    let calls = (0..32).map(|i| {
        agent.client.link_set(LinkSetRequest {
            interface: Some(InterfaceSelector::by_mac(&mac)),
            mtu: Some(1300 + i),
            ..Default::default()
        })
    });
    for (i, done) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert!(done.is_ok(), "call {i}: {done:?}");
    }
}

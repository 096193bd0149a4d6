//! Containers on a network reach each other, the host and the outside through
//! NAT, and are reached through published ports; teardown restores the host
//! (but IP forwarding, which stays on: `network.rs` checks it).
//! Network namespaces stand in for VMs (veth endpoints instead of taps, which
//! need a VM on the other side); the test runs in a namespace of its own.

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
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

/// Links, addresses, routes and the ruleset. Not IP forwarding: the first
/// network turns it on for good (another runtime's bridge may need it).
fn snapshot() -> Vec<String> {
    vec![
        run("ip", &["-j", "link", "show"]),
        run("ip", &["-j", "addr", "show"]),
        run("ip", &["-j", "route", "show"]),
        run("nft", &["-j", "list", "ruleset"]),
    ]
}

/// What the guest does with its attachment (vminitd's job in a VM).
fn configure(guest: &NamedNetns, attachment: &Attachment) {
    let device = attachment.guest_device.as_deref().expect("a veth endpoint");
    let address = attachment.address.to_string();
    let gateway = attachment.gateway.to_string();
    guest
        .exec(&["ip", "addr", "add", &address, "dev", device])
        .expect("test step");
    guest
        .exec(&["ip", "link", "set", device, "up"])
        .expect("test step");
    guest
        .exec(&["ip", "route", "add", "default", "via", &gateway])
        .expect("test step");
}

fn read_from(address: &str) -> String {
    let start = Instant::now();
    loop {
        match TcpStream::connect(address) {
            Ok(mut stream) => {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("test step");
                let mut text = String::new();
                stream.read_to_string(&mut text).expect("test step");
                if !text.is_empty() || start.elapsed() > Duration::from_secs(10) {
                    return text;
                }
            }
            Err(e) if start.elapsed() > Duration::from_secs(10) => panic!("{address}: {e}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn containers_reach_each_other_the_host_and_are_reached_through_published_ports() {
    enter_new_network_namespace().unwrap();
    run("ip", &["link", "set", "lo", "up"]);
    let before = snapshot();
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    manager
        .create("conn", Some("10.77.0.0/24".parse().unwrap()), None)
        .await
        .unwrap();

    let (guest_a, guest_b) = (NamedNetns::new().unwrap(), NamedNetns::new().unwrap());
    let (id_a, id_b): (ContainerId, ContainerId) = ("a".parse().unwrap(), "b".parse().unwrap());
    let ports = [
        "8080:80".parse().unwrap(),
        "127.0.0.1:8081:80".parse().unwrap(),
    ];
    let file_a = guest_a.open().unwrap();
    let a = manager
        .attach(
            "conn",
            &id_a,
            Endpoint::Veth {
                namespace: file_a.as_fd(),
            },
            &ports,
        )
        .await
        .unwrap();
    let file_b = guest_b.open().unwrap();
    let b = manager
        .attach(
            "conn",
            &id_b,
            Endpoint::Veth {
                namespace: file_b.as_fd(),
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (a.address.to_string(), b.address.to_string()),
        ("10.77.0.2/24".into(), "10.77.0.3/24".into())
    );
    assert_ne!(a.mac, b.mac);
    configure(&guest_a, &a);
    configure(&guest_b, &b);
    let shown = guest_a
        .exec(&["ip", "link", "show", a.guest_device.as_deref().unwrap()])
        .unwrap();
    assert!(shown.contains(&a.mac.to_string()), "{shown}");

    // Container to container, through the bridge.
    let b_ip = b.address.addr().to_string();
    guest_a
        .exec(&["busybox", "ping", "-c", "1", "-W", "5", &b_ip])
        .unwrap();

    // Container to a server on the host's gateway address.
    let listener = TcpListener::bind((a.gateway, 0)).unwrap();
    let host_port = listener.local_addr().unwrap().port().to_string();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut stream, b"hello from the host\n").unwrap();
    });
    let said = guest_b
        .exec(&[
            "busybox",
            "nc",
            "-w",
            "5",
            &a.gateway.to_string(),
            &host_port,
        ])
        .unwrap();
    assert_eq!(said, "hello from the host\n");
    server.join().unwrap();

    // The host to container a's port 80, through the published ports.
    let script = state.path().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho hello from a\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut web = guest_a
        .command("busybox")
        .args(["nc", "-ll", "-p", "80", "-e"])
        .arg(&script)
        .spawn()
        .unwrap();
    assert_eq!(read_from(&format!("{}:8080", a.gateway)), "hello from a\n");
    assert_eq!(read_from("127.0.0.1:8081"), "hello from a\n");
    web.kill().unwrap();
    web.wait().unwrap();

    // A port already published is refused and changes nothing.
    let unchanged = snapshot();
    let file_c = guest_b.open().unwrap();
    let err = manager
        .attach(
            "conn",
            &"c".parse().unwrap(),
            Endpoint::Veth {
                namespace: file_c.as_fd(),
            },
            &["8080:9090".parse().unwrap()],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PortInUse { .. }), "{err}");
    assert!(
        err.to_string().contains("8080") && err.to_string().contains("container a"),
        "{err}"
    );
    assert_eq!(snapshot(), unchanged);

    manager.detach("conn", &id_a).await.unwrap();
    manager.detach("conn", &id_b).await.unwrap();
    manager.remove("conn").await.unwrap();
    assert_eq!(snapshot(), before, "teardown left the host as it was");
}

#[tokio::test]
async fn a_tap_per_vm_comes_from_the_pool_with_a_mac_other_than_the_guests() {
    enter_new_network_namespace().unwrap();
    let before = snapshot();
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    let vms = manager.create("vms", None, None).await.unwrap();
    let id: ContainerId = "vm-1".parse().unwrap();
    let first = manager
        .attach("vms", &id, Endpoint::Tap, &["8080:80".parse().unwrap()])
        .await
        .unwrap();
    let details = run("ip", &["-d", "-j", "link", "show", &first.device]);
    assert!(
        details.contains(&format!(r#""master":"{}""#, vms.bridge)),
        "{details}"
    );
    assert!(details.contains(r#""type":"tap""#), "{details}");
    // The guest's NIC has the container's MAC; the tap must not, or the
    // bridge would keep the guest's frames for itself.
    assert!(!details.contains(&first.mac.to_string()), "{details}");
    let ruleset = run("nft", &["list", "ruleset"]);
    assert!(
        ruleset.contains(&format!("8080 : {} . 80", first.address.addr())),
        "{ruleset}"
    );

    // Detached, the tap stays on the bridge for the next container, and the
    // port is no longer published.
    manager.detach("vms", &id).await.unwrap();
    let details = run("ip", &["-d", "-j", "link", "show", &first.device]);
    assert!(
        details.contains(&format!(r#""master":"{}""#, vms.bridge)),
        "{details}"
    );
    assert!(!run("nft", &["list", "ruleset"]).contains("8080 :"));
    let other: ContainerId = "vm-2".parse().unwrap();
    let second = manager
        .attach("vms", &other, Endpoint::Tap, &[])
        .await
        .unwrap();
    assert_eq!(second.device, first.device, "the pooled tap is handed out");
    assert_ne!(second.mac, first.mac);
    let details = run("ip", &["-j", "link", "show", &second.device]);
    assert!(!details.contains(&second.mac.to_string()), "{details}");

    // Two at once get two taps; the same container gets its MAC again.
    let again = manager
        .attach("vms", &id, Endpoint::Tap, &[])
        .await
        .unwrap();
    assert_ne!(again.device, second.device);
    assert_eq!(again.mac, first.mac);
    manager.detach("vms", &id).await.unwrap();
    manager.detach("vms", &other).await.unwrap();

    // Removing the network removes its pool.
    manager.remove("vms").await.unwrap();
    assert_eq!(snapshot(), before, "teardown left the host as it was");
}

#[tokio::test]
async fn a_pooled_tap_still_held_open_is_replaced_not_handed_out() {
    enter_new_network_namespace().unwrap();
    let before = snapshot();
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    let held = manager.create("held", None, None).await.unwrap();
    let (old, new): (ContainerId, ContainerId) =
        ("old-vm".parse().unwrap(), "new-vm".parse().unwrap());
    let first = manager
        .attach("held", &old, Endpoint::Tap, &[])
        .await
        .unwrap();
    let index_of = |name: &str| {
        let shown: serde_json::Value =
            serde_json::from_str(&run("ip", &["-j", "link", "show", name])).unwrap();
        shown[0]["ifindex"].as_u64().unwrap()
    };
    let first_index = index_of(&first.device);

    // A VM that outlives its container's detach keeps the tap open (as
    // QEMU would: TUNSETIFF with the tap's flags).
    let holder = format!(
        "import fcntl, os, struct, sys\n\
         fd = os.open('/dev/net/tun', os.O_RDWR)\n\
         fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH22x', b'{}', 0x0002 | 0x1000 | 0x4000))\n\
         print('held', flush=True)\n\
         sys.stdin.read()\n",
        first.device
    );
    let mut vm = std::process::Command::new("python3")
        .args(["-c", &holder])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(vm.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "held\n");
    manager.detach("held", &old).await.unwrap();

    let second = manager
        .attach("held", &new, Endpoint::Tap, &[])
        .await
        .unwrap();
    assert_eq!(
        second.device, first.device,
        "the same address, the same name"
    );
    assert_ne!(index_of(&second.device), first_index, "but a new tap");
    let details = run("ip", &["-d", "-j", "link", "show", &second.device]);
    assert!(
        details.contains(&format!(r#""master":"{}""#, held.bridge)),
        "{details}"
    );
    drop(vm.stdin.take());
    vm.wait().unwrap();

    manager.detach("held", &new).await.unwrap();
    manager.remove("held").await.unwrap();
    assert_eq!(snapshot(), before, "teardown left the host as it was");
}

#[tokio::test]
async fn reclaiming_a_dead_vms_lease_unpublishes_its_ports_and_keeps_its_tap_pooled() {
    enter_new_network_namespace().unwrap();
    let before = snapshot();
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    let stale = manager.create("stale", None, None).await.unwrap();
    let (dead, alive): (ContainerId, ContainerId) =
        ("dead".parse().unwrap(), "alive".parse().unwrap());
    let gone = manager
        .attach("stale", &dead, Endpoint::Tap, &["9090:90".parse().unwrap()])
        .await
        .unwrap();
    manager
        .attach(
            "stale",
            &alive,
            Endpoint::Tap,
            &["9091:91/udp".parse().unwrap()],
        )
        .await
        .unwrap();

    let reclaimed = manager.reclaim(|c| c == &alive).await.unwrap();
    assert_eq!(reclaimed, std::slice::from_ref(&dead));
    let ruleset = run("nft", &["list", "ruleset"]);
    assert!(!ruleset.contains("9090 :"), "{ruleset}");
    assert!(ruleset.contains("9091 :"), "{ruleset}");
    let details = run("ip", &["-d", "-j", "link", "show", &gone.device]);
    assert!(
        details.contains(&format!(r#""master":"{}""#, stale.bridge)),
        "{details}"
    );
    // Its port can be published again.
    let again = manager
        .attach("stale", &dead, Endpoint::Tap, &["9090:90".parse().unwrap()])
        .await
        .unwrap();
    assert_eq!(again.device, gone.device);

    manager.detach("stale", &dead).await.unwrap();
    manager.detach("stale", &alive).await.unwrap();
    manager.remove("stale").await.unwrap();
    assert_eq!(snapshot(), before, "teardown left the host as it was");
}

#[tokio::test]
async fn a_flushed_ruleset_is_rebuilt_when_a_container_comes_or_goes() {
    enter_new_network_namespace().unwrap();
    let before = snapshot();
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    manager.create("flush", None, None).await.unwrap();
    let (one, two): (ContainerId, ContainerId) = ("one".parse().unwrap(), "two".parse().unwrap());
    manager
        .attach("flush", &one, Endpoint::Tap, &["7001:80".parse().unwrap()])
        .await
        .unwrap();
    run("nft", &["flush", "ruleset"]);
    let b = manager
        .attach("flush", &two, Endpoint::Tap, &["7002:80".parse().unwrap()])
        .await
        .unwrap();
    let ruleset = run("nft", &["list", "ruleset"]);
    assert!(ruleset.contains("7001 :"), "{ruleset}");
    assert!(
        ruleset.contains(&format!("7002 : {} . 80", b.address.addr())),
        "{ruleset}"
    );
    assert!(ruleset.contains("masquerade"), "{ruleset}");

    run("nft", &["flush", "ruleset"]);
    manager.detach("flush", &one).await.unwrap();
    let ruleset = run("nft", &["list", "ruleset"]);
    assert!(!ruleset.contains("7001 :"), "{ruleset}");
    assert!(ruleset.contains("7002 :"), "{ruleset}");
    manager.detach("flush", &two).await.unwrap();
    manager.remove("flush").await.unwrap();
    assert_eq!(snapshot(), before, "teardown left the host as it was");
}

/// Whether `argv` succeeds in `guest`.
fn succeeds(guest: &NamedNetns, argv: &[&str]) -> bool {
    guest.exec(argv).is_ok()
}

/// A Python program sending `text` in one UDP datagram to 127.0.0.1:`port`.
fn udp_send(text: &str, port: &str) -> String {
    format!(
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'{text}', ('127.0.0.1', {port}))"
    )
}

/// Routes 127.0.0.0/8 from `guest` out of `device` to `via`, as a hostile
/// guest or LAN neighbour would (its own loopback routes put aside).
fn route_loopback_out(guest: &NamedNetns, device: &str, via: &str) {
    guest
        .exec(&["ip", "link", "set", "lo", "down"])
        .expect("lo down");
    for local in ["127.0.0.1", "127.0.0.0/8"] {
        let _ = guest.exec(&["ip", "route", "del", "table", "local", "local", local]);
    }
    let setting = format!("echo 1 > /proc/sys/net/ipv4/conf/{device}/route_localnet");
    guest.exec(&["sh", "-c", &setting]).expect("route_localnet");
    guest
        .exec(&[
            "ip",
            "route",
            "add",
            "127.0.0.0/8",
            "via",
            via,
            "dev",
            device,
        ])
        .expect("loopback route");
}

#[tokio::test]
async fn guests_cannot_spoof_cross_networks_or_reach_loopback_and_lan_cannot_reach_loopback_ports()
{
    enter_new_network_namespace().unwrap();
    run("ip", &["link", "set", "lo", "up"]);
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    manager
        .create("one", Some("10.78.0.0/24".parse().unwrap()), None)
        .await
        .unwrap();
    manager
        .create("two", Some("10.79.0.0/24".parse().unwrap()), None)
        .await
        .unwrap();
    // A second state root on the same host, with its own network.
    let other_state = tempfile::tempdir().unwrap();
    let other_root = NetworkManager::new(other_state.path(), Netlink::connect().unwrap());
    let three = other_root
        .create("three", Some("10.80.0.0/24".parse().unwrap()), None)
        .await
        .unwrap();
    let guests = [
        NamedNetns::new().unwrap(),
        NamedNetns::new().unwrap(),
        NamedNetns::new().unwrap(),
        NamedNetns::new().unwrap(),
    ];
    let mut attachments = Vec::new();
    for (i, (guest, network)) in guests
        .iter()
        .zip(["one", "one", "two", "three"])
        .enumerate()
    {
        let manager = if network == "three" {
            &other_root
        } else {
            &manager
        };
        let ports: Vec<_> = if i == 0 {
            vec![
                "127.0.0.1:8082:80".parse().unwrap(),
                "127.0.0.1:8083:81/udp".parse().unwrap(),
            ]
        } else {
            vec![]
        };
        let file = guest.open().unwrap();
        let attachment = manager
            .attach(
                network,
                &format!("g{i}").parse().unwrap(),
                Endpoint::Veth {
                    namespace: file.as_fd(),
                },
                &ports,
            )
            .await
            .unwrap();
        configure(guest, &attachment);
        attachments.push(attachment);
    }
    let [a, b, c, d] = &guests;
    let a_ip = attachments[0].address.addr().to_string();
    let b_dev = attachments[1].guest_device.clone().unwrap();
    let ping = |from: &NamedNetns, extra: &[&str], to: &str| {
        let mut argv = vec!["busybox", "ping", "-c", "1", "-W", "2"];
        argv.extend_from_slice(extra);
        argv.push(to);
        succeeds(from, &argv)
    };

    let mut exposed = Vec::new();
    // Its own addresses pass; another source address or MAC does not.
    assert!(ping(b, &[], &a_ip), "b reaches a from its own address");
    b.exec(&["ip", "addr", "add", "10.78.0.99/24", "dev", &b_dev])
        .unwrap();
    if ping(b, &["-I", "10.78.0.99"], &a_ip) {
        exposed.push("a spoofed IPv4 source passed");
    }
    b.exec(&["ip", "addr", "del", "10.78.0.99/24", "dev", &b_dev])
        .unwrap();
    let own_mac = attachments[1].mac.to_string();
    b.exec(&["ip", "link", "set", &b_dev, "address", "02:00:00:00:00:99"])
        .unwrap();
    b.exec(&["ip", "neigh", "flush", "all"]).unwrap();
    if ping(b, &[], &a_ip) {
        exposed.push("a spoofed MAC passed");
    }
    b.exec(&["ip", "link", "set", &b_dev, "address", &own_mac])
        .unwrap();
    b.exec(&["ip", "neigh", "flush", "all"]).unwrap();

    // Networks are isolated from each other.
    if ping(c, &[], &a_ip) {
        exposed.push("network two reached network one");
    }
    // Another state root's guests pass this root's guard on their own
    // network, and reach none of this root's networks, nor it theirs.
    assert!(
        ping(d, &[], &three.gateway.to_string()),
        "a guest of the other root reaches its gateway"
    );
    if ping(d, &[], &a_ip) {
        exposed.push("another state root's network reached network one");
    }
    if ping(a, &[], &attachments[3].address.addr().to_string()) {
        exposed.push("network one reached another state root's network");
    }

    // A guest cannot reach the host's loopback services. UDP shows it in one
    // packet (a TCP answer from 127.0.0.1 could not leave by the bridge).
    let service = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    service
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let port = service.local_addr().unwrap().port().to_string();
    route_loopback_out(b, &b_dev, &attachments[1].gateway.to_string());
    let _ = b.exec(&["python3", "-c", &udp_send("from-a-guest", &port)]);
    let mut buf = [0u8; 64];
    if service.recv(&mut buf).is_ok() {
        exposed.push("a guest reached the host's 127.0.0.1");
    }

    // A LAN neighbour cannot reach a port published on 127.0.0.1, which the
    // host itself reaches.
    let script = state.path().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho hello from a\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut web = a
        .command("busybox")
        .args(["nc", "-ll", "-p", "80", "-e"])
        .arg(&script)
        .spawn()
        .unwrap();
    assert_eq!(read_from("127.0.0.1:8082"), "hello from a\n");
    web.kill().unwrap();
    web.wait().unwrap();
    let sink = a
        .command("python3")
        .args([
            "-c",
            "import socket\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind(('0.0.0.0', 81))\n\
             s.settimeout(6)\n\
             print(s.recv(64))",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lan = NamedNetns::new().unwrap();
    run(
        "ip",
        &[
            "link",
            "add",
            "czlan0",
            "type",
            "veth",
            "peer",
            "name",
            "czlan1",
            "netns",
            lan.name(),
        ],
    );
    run("ip", &["addr", "add", "192.168.79.1/24", "dev", "czlan0"]);
    run("ip", &["link", "set", "czlan0", "up"]);
    lan.exec(&["ip", "addr", "add", "192.168.79.2/24", "dev", "czlan1"])
        .unwrap();
    lan.exec(&["ip", "link", "set", "czlan1", "up"]).unwrap();
    assert!(ping(&lan, &[], "192.168.79.1"), "the LAN link works");
    route_loopback_out(&lan, "czlan1", "192.168.79.1");
    std::thread::sleep(Duration::from_millis(300));
    let _ = lan.exec(&["python3", "-c", &udp_send("from-the-lan", "8083")]);
    let got = sink.wait_with_output().unwrap();
    if String::from_utf8_lossy(&got.stdout).contains("from-the-lan") {
        exposed.push("a LAN neighbour reached a port published on 127.0.0.1");
    }
    assert!(exposed.is_empty(), "{exposed:?}");
}

#[tokio::test]
async fn publishing_a_port_a_host_program_holds_is_refused_and_changes_nothing() {
    enter_new_network_namespace().unwrap();
    run("ip", &["link", "set", "lo", "up"]);
    let state = tempfile::tempdir().unwrap();
    let manager = NetworkManager::new(state.path(), Netlink::connect().unwrap());
    let network = manager
        .create("busy", Some("10.76.0.0/24".parse().unwrap()), None)
        .await
        .unwrap();
    // A TCP server on loopback only, a UDP one on every address.
    let tcp = TcpListener::bind("127.0.0.1:8090").unwrap();
    let udp = UdpSocket::bind("0.0.0.0:8091").unwrap();
    let guest = NamedNetns::new().unwrap();
    let file = guest.open().unwrap();
    // A new bridge without ports loses its carrier a moment later.
    let start = Instant::now();
    while !run("ip", &["link", "show", &network.bridge]).contains("NO-CARRIER") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the bridge keeps its carrier"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let unchanged = snapshot();
    for (published, taken) in [
        ("8090:80", "0.0.0.0:8090/tcp"),
        ("127.0.0.1:8091:53/udp", "127.0.0.1:8091/udp"),
    ] {
        let err = manager
            .attach(
                "busy",
                &"web".parse().unwrap(),
                Endpoint::Veth {
                    namespace: file.as_fd(),
                },
                &["8089:80".parse().unwrap(), published.parse().unwrap()],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidPort(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(taken) && message.contains("address already in use"),
            "{message}"
        );
        assert_eq!(snapshot(), unchanged, "{published} changed the host");
        assert!(manager.ipam(&network).unwrap().leases().unwrap().is_empty());
    }

    // The host's programs keep their ports.
    let client = std::thread::spawn(|| TcpStream::connect("127.0.0.1:8090").unwrap());
    tcp.accept().unwrap();
    client.join().unwrap();
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"still mine", "127.0.0.1:8091")
        .unwrap();
    let mut buffer = [0; 16];
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (length, _) = udp.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"still mine");

    // A free port is still published.
    let attachment = manager
        .attach(
            "busy",
            &"web".parse().unwrap(),
            Endpoint::Veth {
                namespace: file.as_fd(),
            },
            &["8092:80".parse().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(attachment.ports.len(), 1);
    manager
        .detach("busy", &"web".parse().unwrap())
        .await
        .unwrap();
    manager.remove("busy").await.unwrap();
}

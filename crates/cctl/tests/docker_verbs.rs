//! Docker's top-level verbs on `cctl`, answering as Docker's do: `pull`,
//! `images`, `tag`, `rmi`, `info`, `version`, `port`, `top`, `restart`,
//! `wait` and `rename`; and names on a network (`--network-alias`).

mod support;

use containerization_testkit::{Fixture, fixture};
use support::World;

#[test]
fn dockers_verbs_work_on_cctl() {
    let world = World::new();
    // Image verbs are `cctl image …`.
    let other = world
        .registry
        .push(
            &fixture(Fixture::Busybox).expect("busybox"),
            "verbs/other:1",
        )
        .expect("push");
    let pulled = world.cctl_on_host(&["pull", &other]);
    assert_eq!(pulled.code, 0, "{pulled:?}");
    let images = world.cctl(&["images"]);
    assert!(images.stdout.contains("verbs/other"), "{images:?}");
    assert_eq!(world.cctl(&["tag", &other, "localhost/verbs:2"]).code, 0);
    assert!(world.cctl(&["images"]).stdout.contains("localhost/verbs"));
    let untagged = world.cctl(&["rmi", "localhost/verbs:2"]);
    assert_eq!(untagged.code, 0, "{untagged:?}");
    assert!(!world.cctl(&["images"]).stdout.contains("localhost/verbs"));
    assert_eq!(world.cctl(&["info"]).code, 0);
    let version = world.cctl(&["version"]);
    assert!(version.stdout.starts_with("cctl "), "{version:?}");
    assert!(version.stdout.contains("API 1.41"), "{version:?}");

    // Container verbs.
    world.detach("verbs", &["-p", "127.0.0.1:18093:80"], &["sleep", "600"]);
    let ports = world.cctl(&["port", "verbs"]);
    assert_eq!(ports.stdout, "80/tcp -> 127.0.0.1:18093\n", "{ports:?}");
    let one = world.cctl(&["port", "verbs", "80/tcp"]);
    assert_eq!(one.stdout, "127.0.0.1:18093\n", "{one:?}");
    let none = world.cctl(&["port", "verbs", "81"]);
    assert_ne!(none.code, 0, "{none:?}");
    assert!(none.stderr.contains("no public port '81/tcp'"), "{none:?}");
    let top = world.cctl(&["top", "verbs"]);
    assert!(top.stdout.starts_with("PID"), "{top:?}");
    assert!(top.stdout.contains("sleep 600"), "{top:?}");
    assert!(!top.stdout.contains("ps -o"), "{top:?}");
    let before = world.inspect("verbs")["State"]["StartedAt"].clone();
    let restarted = world.cctl(&["restart", "-t", "1", "verbs"]);
    assert_eq!(
        (restarted.code, restarted.stdout.trim()),
        (0, "verbs"),
        "{restarted:?}"
    );
    let after = world.inspect("verbs");
    assert_eq!(after["State"]["Running"], true, "{after}");
    assert_ne!(after["State"]["StartedAt"], before, "a new start");
    // `wait` ends with the container, printing its exit code.
    let waiter = world
        .command(&["wait", "verbs"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cctl wait");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(world.cctl(&["stop", "-t", "1", "verbs"]).code, 0);
    let waited = waiter.wait_with_output().expect("wait ends");
    assert_eq!(String::from_utf8_lossy(&waited.stdout), "137\n");
    // rename: the old name goes, a taken one is refused.
    assert_eq!(world.cctl(&["rename", "verbs", "renamed"]).code, 0);
    assert_eq!(world.inspect("renamed")["Name"], "renamed");
    assert_ne!(world.cctl(&["inspect", "verbs"]).code, 0);
    world.cctl(&[
        "create",
        "--name",
        "taken",
        "-l",
        "tier=db",
        &world.image,
        "true",
    ]);
    // `ls` and `image ls` take Docker's --format and --filter.
    let listed = world.cctl(&[
        "ls",
        "-a",
        "--format",
        "{{.Names}} {{.State}} {{.Label \"tier\"}}",
    ]);
    let mut rows: Vec<&str> = listed.stdout.lines().collect();
    rows.sort_unstable();
    assert_eq!(rows, ["renamed exited ", "taken created db"], "{listed:?}");
    let as_json = world.cctl(&["ls", "-a", "--filter", "name=taken", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(as_json.stdout.trim()).expect("a JSON line");
    assert_eq!(
        (row["Names"].as_str(), row["State"].as_str()),
        (Some("taken"), Some("created"))
    );
    assert_eq!(row["Labels"], "tier=db", "{row}");
    // Every label filter must match, as Docker's.
    let both = world.cctl(&[
        "ls",
        "-aq",
        "--filter",
        "label=tier=db",
        "--filter",
        "label=absent",
    ]);
    assert_eq!((both.code, both.stdout.as_str()), (0, ""), "{both:?}");
    let either = world.cctl(&[
        "ls",
        "-aq",
        "--filter",
        "name=taken",
        "--filter",
        "name=renamed",
    ]);
    assert_eq!(either.stdout.lines().count(), 2, "{either:?}");
    let table = world.cctl(&["ls", "-a", "--format", "table {{.Names}}\\t{{.Status}}"]);
    assert!(table.stdout.starts_with("NAMES     STATUS\n"), "{table:?}");
    let bad = world.cctl(&["ls", "--format", "{{.ID"]);
    assert_ne!(bad.code, 0, "{bad:?}");
    assert!(bad.stderr.contains("not closed"), "{bad:?}");
    let images = world.cctl(&[
        "images",
        "--filter",
        "reference=*/test/busybox",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.Platform}}",
    ]);
    assert_eq!(
        images.stdout,
        format!("{} linux/amd64\n", world.image),
        "{images:?}"
    );
    let table = world.cctl(&["images"]);
    let header = table.stdout.lines().next().unwrap_or_default().to_owned();
    for column in ["NAME", "IMAGE ID", "PLATFORM", "CREATED", "SIZE"] {
        assert!(header.contains(column), "{table:?}");
    }
    let unknown = world.cctl(&["images", "--filter", "colour=red"]);
    assert_ne!(unknown.code, 0, "{unknown:?}");
    assert!(
        unknown.stderr.contains("invalid filter 'colour'"),
        "{unknown:?}"
    );
    let refused = world.cctl(&["rename", "renamed", "taken"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("taken"), "{refused:?}");
    assert_eq!(world.cctl(&["rm", "renamed", "taken"]).code, 0);

    // attach: input to a container made with -i, its output, its exit
    // code; with a terminal, ctrl-p ctrl-q detaches and it runs on.
    world.detach("fed", &["-i"], &["sh", "-c", "cat; echo done; exit 4"]);
    let attached = world
        .command(&["attach", "fed"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cctl attach");
    {
        use std::io::Write;
        let mut input = attached.stdin.as_ref().expect("its stdin");
        input.write_all(b"through attach\n").expect("typed");
    }
    let attached = attached.wait_with_output().expect("attach ends");
    assert_eq!(
        (
            attached.status.code(),
            String::from_utf8_lossy(&attached.stdout).as_ref()
        ),
        (Some(4), "through attach\ndone\n"),
        "{attached:?}"
    );
    let stopped = world.cctl(&["attach", "fed"]);
    assert!(stopped.stderr.contains("stopped container"), "{stopped:?}");
    world.detach("shell", &["-it"], &["sh"]);
    let typer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/type_keys.py");
    let typed = |keys: &[&str]| -> String {
        let out = world
            .netns
            .command("python3")
            .arg(typer)
            .args(keys)
            .args(["--", env!("CARGO_BIN_EXE_cctl"), "attach", "shell"])
            .env("CZ_ROOT", world.root.path())
            .output()
            .expect("type_keys.py");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = typed(&["1:echo in-$((6*7))\\n", "1:\\x10\\x11"]);
    assert!(first.contains("in-42"), "{first}");
    assert!(
        first.contains("read escape sequence") && first.ends_with("exit=0\n"),
        "{first}"
    );
    assert_eq!(world.inspect("shell")["State"]["Running"], true);
    let second = typed(&["1:exit 3\\n"]);
    assert!(second.ends_with("exit=3\n"), "{second}");
    assert_eq!(world.cctl(&["rm", "fed", "shell"]).code, 0);

    // A container started later on the network finds one by its name and
    // its --network-alias.
    assert_eq!(world.cctl(&["network", "create", "names"]).code, 0);
    world.detach(
        "named",
        &["--network", "names", "--network-alias", "backend"],
        &[
            "sh",
            "-c",
            "echo by-name > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
        ],
    );
    let fetched = world.run(
        &["--network", "names"],
        &[
            "sh",
            "-c",
            "for i in $(seq 50); do wget -qO- http://named/index.html && \
             wget -qO- http://backend/index.html && exit 0; sleep 0.2; done; exit 1",
        ],
    );
    assert_eq!(
        (fetched.code, fetched.stdout.as_str()),
        (0, "by-name\nby-name\n"),
        "{fetched:?}"
    );
    // On a network a user made, the container started first finds one
    // started after it by name, and forgets it once it ends (its /etc/hosts
    // is written again), as Docker's DNS answers there.
    world.detach(
        "later",
        &["--network", "names"],
        &[
            "sh",
            "-c",
            "echo from-later > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
        ],
    );
    let back = world.cctl(&[
        "exec",
        "named",
        "sh",
        "-c",
        "for i in $(seq 50); do wget -qO- http://later/index.html && exit 0; sleep 0.2; done; exit 1",
    ]);
    assert_eq!(
        (back.code, back.stdout.as_str()),
        (0, "from-later\n"),
        "{back:?}"
    );
    assert_eq!(world.cctl(&["rm", "-f", "later"]).code, 0);
    let hosts = world.cctl(&["exec", "named", "cat", "/etc/hosts"]);
    assert!(!hosts.stdout.contains("later"), "{hosts:?}");
    // A container on two networks (--network twice) has a card on each and
    // finds the container on its second network by its alias there.
    assert_eq!(world.cctl(&["network", "create", "side"]).code, 0);
    let both = world.run(
        &["--network", "side", "--network", "names"],
        &[
            "sh",
            "-c",
            "for i in $(seq 50); do wget -qO- http://backend/index.html && break; sleep 0.2; done; \
             ls /sys/class/net | tr '\\n' ' '; ip route | grep -c default",
        ],
    );
    assert_eq!(
        (both.code, both.stdout.as_str()),
        (0, "by-name\neth0 eth1 lo 1\n"),
        "one default route, on the first network: {both:?}"
    );
    for refused in [
        vec!["--network", "names", "--network", "names"],
        vec!["--network", "none", "--network", "names"],
        vec!["--network", "names", "--network", "nowhere"],
    ] {
        let mut args = vec!["create"];
        args.extend(&refused);
        args.extend([world.image.as_str(), "true"]);
        let out = world.cctl(&args);
        assert_ne!(out.code, 0, "{refused:?}: {out:?}");
        assert!(
            ["named twice", "joins no other", "nowhere"]
                .iter()
                .any(|why| out.stderr.contains(why)),
            "{refused:?}: {out:?}"
        );
    }
    // `network connect` and `disconnect` of a container that is not running.
    let made = world.cctl(&[
        "create",
        "--name",
        "joiner",
        "--network",
        "side",
        &world.image,
    ]);
    assert_eq!(made.code, 0, "{made:?}");
    let connected = world.cctl(&["network", "connect", "--alias", "j", "names", "joiner"]);
    assert_eq!(connected.code, 0, "{connected:?}");
    let again = world.cctl(&["network", "connect", "names", "joiner"]);
    assert!(
        again.stderr.contains("already on network names"),
        "{again:?}"
    );
    let networks = |name: &str| -> Vec<String> {
        let shown = world.inspect(name)["NetworkSettings"]["Networks"].clone();
        let mut names: Vec<String> = shown
            .as_object()
            .expect("networks")
            .keys()
            .cloned()
            .collect();
        names.sort_unstable();
        names
    };
    assert_eq!(networks("joiner"), ["names", "side"]);
    assert_eq!(
        world.inspect("joiner")["NetworkSettings"]["Networks"]["names"]["Aliases"],
        serde_json::json!(["j"])
    );
    assert_eq!(
        world
            .cctl(&["network", "disconnect", "side", "joiner"])
            .code,
        0
    );
    assert_eq!(
        world.inspect("joiner")["HostConfig"]["NetworkMode"],
        serde_json::json!({ "network": "names" })
    );
    let absent = world.cctl(&["network", "disconnect", "side", "joiner"]);
    assert!(absent.stderr.contains("not attached"), "{absent:?}");
    let busy = world.cctl(&["network", "connect", "side", "named"]);
    assert!(
        busy.stderr.contains("hotplug"),
        "a running container: {busy:?}"
    );
    assert_eq!(world.cctl(&["rm", "joiner"]).code, 0);
    assert_eq!(world.cctl(&["network", "rm", "side"]).code, 0);
    assert_eq!(world.cctl(&["rm", "-f", "named"]).code, 0);
    assert_eq!(world.cctl(&["network", "rm", "names"]).code, 0);
}

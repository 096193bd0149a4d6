//! Faults a container's records survive, through the real `cctl` binary and
//! real state files: a network removed under a container, an owner PID that
//! now names an unrelated process, a truncated `state.json` or
//! `config.json`, an image removed under a container. None of these boots a
//! VM: `create` makes the records, the faults are injected into them.

mod support;

use support::World;

/// `cctl create --name NAME flags… IMAGE true`, asserting it worked; the id.
fn create(world: &World, name: &str, flags: &[&str]) -> String {
    let mut args = vec!["create", "--name", name];
    args.extend_from_slice(flags);
    args.push(&world.image);
    args.push("true");
    let ran = world.cctl(&args);
    assert_eq!(ran.code, 0, "create {name}: {ran:?}");
    ran.stdout.trim().to_owned()
}

#[test]
fn a_removed_network_blocks_only_its_own_container() {
    let world = World::new();
    assert_eq!(world.cctl(&["network", "create", "n1"]).code, 0);
    create(&world, "orphan", &["--network", "n1"]);
    create(&world, "bystander", &["--network", "none"]);

    let refused = world.cctl(&["network", "rm", "n1"]);
    assert_ne!(refused.code, 0, "n1 is in use: {refused:?}");
    assert!(
        refused.stderr.contains("orphan") && refused.stderr.contains("-f"),
        "the message names the container and the way out: {refused:?}"
    );
    let forced = world.cctl(&["network", "rm", "-f", "n1"]);
    assert_eq!(forced.code, 0, "{forced:?}");

    // Its network fails the start before a VM is needed: no vminitd either.
    let start: support::Ran = world
        .command(&["start", "orphan"])
        .env("CZ_VMINITD", "/bin/true")
        .output()
        .expect("cctl runs")
        .into();
    assert_eq!(start.code, 125, "{start:?}");
    assert!(start.stderr.contains("n1"), "{start:?}");

    let listed = world.cctl(&["ls", "-a"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(
        listed.stdout.contains("orphan") && listed.stdout.contains("bystander"),
        "{listed:?}"
    );
    create(&world, "newcomer", &["--network", "none"]);
    for name in ["orphan", "bystander"] {
        let removed = world.cctl(&["rm", name]);
        assert_eq!(removed.code, 0, "rm {name}: {removed:?}");
    }
    let forced = world.cctl(&["rm", "-f", "newcomer"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(world.container_folders().is_empty());
    assert_eq!(world.leases(), 0);
}

/// Rewrites container `id`'s `state.json` through `change`.
fn edit_state(world: &World, id: &str, change: impl FnOnce(&mut serde_json::Value)) {
    let path = world.containers_dir().join(id).join("state.json");
    containerization_testkit::edit_json(&path, change).expect("edit state.json");
}

#[test]
fn a_reused_owner_pid_is_not_trusted_nor_signalled() {
    let world = World::new();
    let mut stranger = containerization_testkit::Stranger::start().expect("a stranger");
    let pid = stranger.pid();
    // Two records claim the stranger as their running owner: one without a
    // start time (written before they were recorded, or forged), one whose
    // start time is another process's (the PID was reused).
    for (name, start) in [("nostart", None), ("reused", Some(1u64))] {
        let id = create(&world, name, &["--network", "none"]);
        edit_state(&world, &id, |state| {
            state["status"] = "running".into();
            state["owner_pid"] = pid.into();
            state["owner_start"] = start.into();
            state["started_ms"] = 1u64.into();
        });
    }

    let running = world.cctl(&["ls"]);
    assert_eq!(running.code, 0, "{running:?}");
    assert!(!running.stdout.contains("Up"), "{running:?}");
    assert!(!running.stdout.contains("nostart"), "{running:?}");
    let all = world.cctl(&["ls", "-a"]);
    assert!(all.stdout.contains("Exited (137)"), "{all:?}");

    let stopped = world.cctl(&["stop", "-t", "1", "nostart"]);
    assert_eq!(stopped.code, 0, "{stopped:?}");
    let removed = world.cctl(&["rm", "-f", "nostart", "reused"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert!(stranger.alive(), "the unrelated process was signalled");
}

/// Cuts the file `name` of container `id`'s folder to half its length.
fn truncate(world: &World, id: &str, name: &str) {
    let path = world.containers_dir().join(id).join(name);
    containerization_testkit::truncate_half(&path).expect("truncate");
}

#[test]
fn truncated_records_are_listed_dead_and_removed_with_what_they_held() {
    let world = World::new();
    assert_eq!(world.cctl(&["network", "create", "n1"]).code, 0);
    let config_cut = create(&world, "configcut", &["--network", "n1"]);
    let state_cut = create(&world, "statecut", &["--network", "n1"]);
    let healthy = create(&world, "healthy", &["--network", "none"]);
    // What a run would have held: a lease on n1 each, and a VM run folder.
    let inspected = world.cctl(&["network", "inspect", "n1"]);
    let network: serde_json::Value = serde_json::from_str(&inspected.stdout).expect("JSON");
    let subnet = network["network"]["subnet"].as_str().expect("subnet");
    let base = subnet.rsplit_once(".0/").expect("a /24").0;
    let leases = serde_json::json!([
        { "container": config_cut, "address": format!("{base}.10") },
        { "container": state_cut, "address": format!("{base}.11") },
    ]);
    let lease_file = world.root.path().join("network/leases-n1.json");
    std::fs::write(&lease_file, leases.to_string()).expect("leases");
    assert_eq!(world.leases(), 2);
    let run_dir = std::path::Path::new("/run/containerization/vm").join(&config_cut[..16]);
    std::fs::create_dir_all(&run_dir).expect("run folder");

    truncate(&world, &config_cut, "config.json");
    truncate(&world, &state_cut, "state.json");

    let listed = world.cctl(&["ls", "-a"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    let dead: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|l| l.contains("Dead"))
        .collect();
    assert_eq!(dead.len(), 2, "{listed:?}");
    assert!(
        dead.iter().any(|l| l.starts_with(&config_cut[..12])),
        "{listed:?}"
    );
    assert!(dead.iter().any(|l| l.ends_with("statecut")), "{listed:?}");
    assert!(listed.stdout.contains("healthy"), "{listed:?}");
    let quiet = world.cctl(&["ls", "-aq"]);
    assert_eq!(quiet.stdout.lines().count(), 3, "{quiet:?}");
    let running = world.cctl(&["ls"]);
    assert!(!running.stdout.contains("Dead"), "{running:?}");

    for name in [config_cut.as_str(), "statecut"] {
        let inspect = world.cctl(&["inspect", name]);
        assert_eq!(inspect.code, 0, "{inspect:?}");
        assert!(inspect.stdout.contains("\"dead\""), "{inspect:?}");
        let logs = world.cctl(&["logs", name]);
        assert_eq!(logs.code, 1, "{logs:?}");
        assert!(
            logs.stderr.contains("is dead") && logs.stderr.contains("cctl rm"),
            "the way out is named: {logs:?}"
        );
    }

    let removed = world.cctl(&["rm", &config_cut]);
    assert_eq!(removed.code, 0, "{removed:?}");
    let forced = world.cctl(&["rm", "-f", "statecut"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(world.container_folders(), [healthy]);
    assert_eq!(world.leases(), 0, "their leases were released");
    assert!(!run_dir.exists(), "the VM run folder went");
    assert_eq!(world.cctl(&["rm", "healthy"]).code, 0);
    assert_eq!(world.cctl(&["network", "rm", "n1"]).code, 0);
}

#[test]
fn image_rm_refuses_an_image_a_container_uses_unless_forced() {
    let world = World::new();
    let id = create(&world, "user", &["--network", "none"]);
    let refused = world.cctl_on_host(&["image", "rm", &world.image]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("in use by container") && refused.stderr.contains(&id),
        "{refused:?}"
    );
    let listed = world.cctl_on_host(&["image", "ls"]);
    assert!(
        listed.stdout.contains(&world.image),
        "still there: {listed:?}"
    );

    // One of two names of the image may go: the other keeps it.
    let alias = "localhost/alias:1";
    assert_eq!(
        world
            .cctl_on_host(&["image", "tag", &world.image, alias])
            .code,
        0
    );
    assert_eq!(world.cctl_on_host(&["image", "rm", alias]).code, 0);

    let forced = world.cctl_on_host(&["image", "rm", "-f", &world.image]);
    assert_eq!(forced.code, 0, "{forced:?}");
    let listed = world.cctl_on_host(&["image", "ls"]);
    assert!(!listed.stdout.contains(&world.image), "{listed:?}");
    let containers = world.cctl(&["ls", "-a"]);
    assert!(containers.stdout.contains("user"), "{containers:?}");
    assert_eq!(world.cctl(&["rm", "user"]).code, 0);
}

#[test]
fn container_records_holding_secrets_are_readable_by_their_owner_only() {
    use std::os::unix::fs::MetadataExt;
    let world = World::new();
    let id = create(
        &world,
        "secretive",
        &["--network", "none", "-e", "TOKEN=hunter2"],
    );
    let containers = world.root.path().join("containers");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .mode()
            & 0o777
    };
    assert_eq!(mode(&containers), 0o700, "containers/");
    assert_eq!(mode(&containers.join(&id)), 0o700, "containers/<id>/");
    for file in ["config.json", "state.json"] {
        assert_eq!(mode(&containers.join(&id).join(file)), 0o600, "{file}");
    }
}

#[test]
fn inspect_gives_dockers_hostname_and_rfc_3339_times() {
    let world = World::new();
    let id = create(&world, "named", &["--network", "none"]);
    let ran = world.cctl(&["inspect", "named"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let all: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON");
    let inspected = &all[0];
    assert_eq!(inspected["Config"]["Hostname"], id[..12], "{inspected}");
    let created = inspected["Created"].as_str().expect("a string");
    assert!(
        created.len() == 24 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert_eq!(inspected["State"]["StartedAt"], "0001-01-01T00:00:00Z");
}

#[test]
fn run_it_without_a_terminal_says_so_and_exits_1_as_docker() {
    let world = World::new();
    let mut args = vec!["run", "--rm", "-it", "--network", "none"];
    args.push(&world.image);
    args.push("true");
    let ran = world.cctl_with_input(&args, b"\n");
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stderr.contains("the input device is not a TTY"),
        "{ran:?}"
    );
    assert!(world.container_folders().is_empty(), "nothing was created");
}

#[test]
fn a_platform_mismatch_warns_and_a_missing_env_file_is_said_once() {
    let world = World::new();
    let created = world.cctl(&[
        "create",
        "--platform",
        "linux/arm64",
        "--network",
        "none",
        &world.image,
        "true",
    ]);
    assert_eq!(created.code, 0, "Docker runs what it has: {created:?}");
    assert!(
        created.stderr.contains(
            "the image's platform (linux/amd64) does not match the requested platform (linux/arm64"
        ),
        "{created:?}"
    );
    let missing = world.cctl(&["create", "--env-file", "/no/such/env", &world.image, "true"]);
    assert_eq!(missing.code, 125, "{missing:?}");
    assert_eq!(
        missing.stderr.matches("No such file or directory").count(),
        1,
        "the cause is said once: {missing:?}"
    );
    assert!(missing.stderr.contains("/no/such/env"), "{missing:?}");
}

//! What a detached container's monitor reports and how it ends: `stats` of a
//! busy container, and a monitor told to go (SIGTERM) recording the end and
//! freeing the lease itself, without waiting for another `cctl` command.
//! Real VMs (TCG here), as in `container.rs`.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::World;

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds fit")
}

/// Container `name`'s id and its state file, read as JSON.
fn state(world: &World, id: &str) -> serde_json::Value {
    let path = world.containers_dir().join(id).join("state.json");
    let text = std::fs::read_to_string(&path).expect("state.json");
    serde_json::from_str(&text).expect("state JSON")
}

/// The CPU column of `cctl stats --no-stream NAME`'s one row.
fn cpu_percent(world: &World, name: &str) -> f64 {
    let ran = world.cctl(&["stats", "--no-stream", name]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let row = ran
        .stdout
        .lines()
        .find(|line| line.contains(&format!(" {name} ")))
        .unwrap_or_else(|| panic!("no row for {name}: {ran:?}"));
    row.split_whitespace()
        .find_map(|field| field.strip_suffix('%'))
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no CPU % in {row:?}"))
}

#[test]
fn stats_shows_a_busy_loop_and_a_monitor_told_to_go_frees_its_container() {
    let world = World::new();
    world.detach("busy", &[], &["sh", "-c", "while :; do :; done"]);
    // One busy loop keeps one of the guest's CPUs busy: Docker shows about
    // 100% (one whole CPU). One sample alone showed 0.00%. The threshold is
    // low: TCG and a shared host steal time from the guest.
    let cpu = cpu_percent(&world, "busy");
    assert!(cpu > 20.0, "a busy loop uses {cpu}% CPU");
    let id = world.inspect("busy")["Id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let monitor = state(&world, &id)["owner_pid"]
        .as_u64()
        .expect("the monitor owns it");
    assert_eq!(world.leases(), 1, "it holds a lease");
    // SIGTERM to the monitor (a shutdown does that): it kills the container
    // and records the end on its way out. It used to die at once, its VM
    // with it, leaving the container "running" and its lease held until
    // some later `cctl` command noticed. No command runs here.
    let told = now_ms();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &monitor.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while world.leases() != 0 {
        assert!(
            Instant::now() < deadline,
            "30 s after SIGTERM its monitor still holds the lease: {}",
            state(&world, &id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let freed = now_ms();
    let end = state(&world, &id);
    assert_eq!(end["status"], "exited", "{end}");
    assert_eq!(end["exit_code"], 137, "killed: {end}");
    assert_eq!(end["owner_pid"], serde_json::Value::Null, "{end}");
    let finished = end["finished_ms"].as_u64().expect("an end time");
    assert!(
        (told..=freed).contains(&finished),
        "ended at {finished}, between SIGTERM at {told} and the lease's release at {freed}"
    );
}

//! A full disk under the state root, through the real `cctl` and a real VM:
//! the state root lives on a small ext4 disk that a container fills from inside,
//! then the host fills to the last byte. Writes fail; nothing hangs, no record
//! is damaged, and `rm -f` and `system prune` work on the full disk.

mod support;

use containerization_testkit::{SmallDisk, fill};
use support::World;

#[test]
fn a_full_disk_fails_writes_but_never_hangs_or_locks_the_user_out() {
    let disk = SmallDisk::mount(768 << 20).expect("a small disk");
    let world = World::new_in(disk.path());
    world.detach("filler", &["--network", "none"], &["sleep", "600"]);

    // The container fills the disk its root file system lives on (not with
    // zeros: those are unmapped, not stored).
    let filled = world.cctl_within(
        240,
        &[
            "exec",
            "filler",
            "sh",
            "-c",
            "yes 0123456789abcdef | head -c 2000000000 > /big && sync",
        ],
    );
    assert_ne!(
        filled.code, -1,
        "the container hung on the full disk: {filled:?}"
    );
    assert_ne!(filled.code, 0, "the write cannot have fitted: {filled:?}");

    // The container still answers, and every command on it ends.
    let listed = world.cctl_within(30, &["ls"]);
    assert!(
        listed.code == 0 && listed.stdout.contains("filler"),
        "{listed:?}"
    );
    let exec = world.cctl_within(60, &["exec", "filler", "true"]);
    assert_eq!(exec.code, 0, "{exec:?}");

    // The host's side of the disk fills to the last byte too.
    let filler = fill(disk.path()).expect("fill");
    let run = world.cctl_within(
        120,
        &["run", "--rm", "--network", "none", &world.image, "true"],
    );
    assert_ne!(run.code, -1, "run hung on a full disk: {run:?}");
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.to_lowercase().contains("no space left"),
        "the cause is named: {run:?}"
    );
    let listed = world.cctl_within(30, &["ls", "-a"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(
        !listed.stdout.contains("Dead"),
        "no record was damaged: {listed:?}"
    );

    let stopped = world.cctl_within(60, &["stop", "-t", "3", "filler"]);
    assert_eq!(stopped.code, 0, "{stopped:?}");
    let removed = world.cctl_within(60, &["rm", "-f", "filler"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    let pruned = world.cctl_within(60, &["system", "prune", "--force", "--all"]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(world.container_folders().is_empty());
    std::fs::remove_file(filler).expect("free the space");
}

//! A full disk under the state root, through the real `cctl` and a real VM:
//! the state root lives on a small ext4 disk that a container fills from
//! inside, then the host fills to the last byte. Writes fail; nothing hangs,
//! no record is damaged, and `rm -f` and `system prune` work on the full disk.

mod support;

use std::time::{Duration, Instant};

use containerization_testkit::{SmallDisk, fill};
use support::World;

/// Bytes free on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df's figure")
}

#[test]
fn a_full_disk_fails_writes_but_never_hangs_or_locks_the_user_out() {
    let disk = SmallDisk::mount(192 << 20).expect("a small disk");
    let world = World::new_in(disk.path());
    // VM templates (a few hundred MiB of saved RAM) live elsewhere: this is
    // about the container's own writes.
    let templates = tempfile::tempdir().expect("templates folder");
    std::fs::remove_file(world.root.path().join("templates")).expect("unlink shared templates");
    std::os::unix::fs::symlink(templates.path(), world.root.path().join("templates"))
        .expect("link templates");
    // The container fills the disk its root file system lives on (not with
    // zeros: those are unmapped, not stored), and keeps writing.
    world.detach(
        "filler",
        &["--network", "none"],
        &[
            "sh",
            "-c",
            "yes 0123456789abcdef | dd of=/big bs=64k; sleep 600",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while free_bytes(disk.path()) > 1 << 20 {
        assert!(
            Instant::now() < deadline,
            "the container never filled the disk"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(5));

    // The container still answers (QEMU's default paused the whole VM on
    // ENOSPC, and every command on it hung), and its writes that reach the
    // disk fail: the guest sees an I/O error.
    let listed = world.cctl_within(30, &["ls"]);
    assert!(
        listed.code == 0 && listed.stdout.contains("filler"),
        "{listed:?}"
    );
    let probe = world.cctl_within(
        60,
        &[
            "exec",
            "filler",
            "dd",
            "if=/dev/urandom",
            "of=/probe",
            "bs=64k",
            "count=64",
            "conv=fsync",
        ],
    );
    assert_ne!(probe.code, -1, "exec hung on the full disk: {probe:?}");
    assert_ne!(probe.code, 0, "a synced write cannot succeed: {probe:?}");

    // The host's side of the disk fills to the last byte too.
    let filler = fill(disk.path()).expect("fill");
    let run = world.cctl_within(
        120,
        &["run", "--rm", "--network", "none", &world.image, "true"],
    );
    assert_ne!(run.code, -1, "run hung on a full disk: {run:?}");
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("No space left on device"),
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
    let listed = world.cctl_within(30, &["ls", "-a"]);
    assert!(
        listed.stdout.contains("Exited"),
        "its end is recorded: {listed:?}"
    );
    let removed = world.cctl_within(60, &["rm", "-f", "filler"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    let pruned = world.cctl_within(60, &["system", "prune", "--force", "--all"]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(world.container_folders().is_empty());
    std::fs::remove_file(filler).expect("free the space");
}

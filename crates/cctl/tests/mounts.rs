//! Mounts a container asks for, in real VMs: tmpfs (`--tmpfs`, `--mount
//! type=tmpfs`) with Podman's options, and bad mount flags refused as
//! Docker refuses them.

mod support;

use support::World;

#[test]
fn tmpfs_mounts_have_their_size_mode_and_read_only_flag() {
    let world = World::new();
    let ran = world.run(
        &[
            "--tmpfs",
            "/run:size=16m",
            "--tmpfs",
            "/scratch",
            "--mount",
            "type=tmpfs,target=/m,tmpfs-size=1m,tmpfs-mode=1770",
            "--mount",
            "type=tmpfs,destination=/ro,ro",
        ],
        &[
            "sh",
            "-c",
            "grep -E ' /(run|scratch|m|ro) ' /proc/mounts | cut -d ' ' -f 2-4; \
             stat -c '%a %n' /m /scratch /run; df -k /run /m | tail -n 2 | tr -s ' ' | cut -d ' ' -f 2,6; \
             touch /ro/x; echo data > /scratch/f && cat /scratch/f",
        ],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    // As Podman shows them: rw,nosuid,nodev, mode 1777 unless given.
    for (target, wanted) in [
        ("/run", ["rw", "nosuid", "nodev", "size=16384k"].as_slice()),
        ("/scratch", &["rw", "nosuid", "nodev"]),
        ("/m", &["rw", "nosuid", "nodev", "size=1024k", "mode=1770"]),
        ("/ro", &["ro", "nosuid", "nodev"]),
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{target} tmpfs ")))
            .unwrap_or_else(|| panic!("no tmpfs at {target}: {ran:?}"));
        let options: Vec<&str> = line.rsplit(' ').next().unwrap().split(',').collect();
        for option in wanted {
            assert!(
                options.contains(option),
                "{target}: {option} missing in {line}"
            );
        }
    }
    for line in [
        "1770 /m",
        "1777 /scratch",
        "1777 /run",
        "16384 /run",
        "1024 /m",
        "data",
    ] {
        assert!(lines.contains(&line), "{line:?} missing: {ran:?}");
    }
    assert!(ran.stderr.contains("Read-only file system"), "{ran:?}");
}

#[test]
fn bad_mount_flags_exit_125_naming_the_problem() {
    let world = World::new();
    for (flags, named) in [
        (["--tmpfs", "relative"].as_slice(), "absolute"),
        (&["--tmpfs", "/x:size=lots"], "lots"),
        (
            &["--tmpfs", "/a", "--mount", "type=tmpfs,target=/a"],
            "duplicate mount point: /a",
        ),
        (&["--mount", "type=bind,source=/tmp,target=/x"], "type=bind"),
        (&["--mount", "type=tmpfs"], "target="),
    ] {
        let ran = world.run(flags, &["true"]);
        assert_eq!(ran.code, 125, "{flags:?}: {ran:?}");
        assert!(ran.stderr.contains(named), "{flags:?}: {ran:?}");
    }
    assert!(
        world.container_folders().is_empty(),
        "a refused mount left a container"
    );
}

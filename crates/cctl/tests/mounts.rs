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
        (&["-v", "/tmp:/x"], "host paths"),
        (&["-v", "a:/x", "-v", "b:/x"], "duplicate mount point: /x"),
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

#[test]
fn a_named_volume_keeps_its_data_and_takes_one_writer_at_a_time() {
    let world = World::new();
    // Written in one container, read in the next after the first is gone.
    let wrote = world.run(
        &["-v", "data:/data"],
        &[
            "sh",
            "-c",
            "echo kept > /data/f && mkdir /data/d && stat -c '%a %u' /data",
        ],
    );
    assert_eq!(
        (wrote.code, wrote.stdout.as_str()),
        (0, "755 0\n"),
        "{wrote:?}"
    );
    let read = world.run(
        &["--mount", "type=volume,source=data,target=/mnt/v,readonly"],
        &["sh", "-c", "cat /mnt/v/f; ls /mnt/v; touch /mnt/v/x"],
    );
    assert_eq!(read.stdout, "kept\nd\nf\nlost+found\n", "{read:?}");
    assert!(read.stderr.contains("Read-only file system"), "{read:?}");

    // ext4 is no cluster file system: a second writer is refused while the
    // first runs, and so is removing the volume.
    world.detach("holder", &["-v", "data:/data"], &["sleep", "300"]);
    let second = world.run(&["-v", "data:/data"], &["true"]);
    assert_eq!(second.code, 125, "{second:?}");
    assert!(
        second.stderr.contains("volume data is in use"),
        "{second:?}"
    );
    let rm = world.cctl(&["volume", "rm", "data"]);
    assert_ne!(rm.code, 0, "{rm:?}");
    assert!(rm.stderr.contains("in use by container"), "{rm:?}");
    let inspect = world.cctl(&["volume", "inspect", "data"]);
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).expect("JSON");
    assert_eq!(json[0]["Name"], "data", "{inspect:?}");
    assert_eq!(json[0]["Driver"], "local", "{inspect:?}");
    assert_eq!(
        json[0]["UsedBy"].as_array().map(Vec::len),
        Some(1),
        "{inspect:?}"
    );
    assert_eq!(world.cctl(&["rm", "-f", "holder"]).code, 0);

    // ls, create, prune (which removes what no container uses), rm.
    assert_eq!(world.cctl(&["volume", "create", "spare"]).code, 0);
    let ls = world.cctl(&["volume", "ls"]);
    assert!(
        ls.stdout.contains("local      data\nlocal      spare\n"),
        "{ls:?}"
    );
    let pruned = world.cctl(&["volume", "prune", "-f"]);
    assert_eq!(
        (pruned.code, pruned.stdout.as_str()),
        (0, "data\nspare\n"),
        "{pruned:?}"
    );
    let ls = world.cctl(&["volume", "ls"]);
    assert_eq!(ls.stdout.lines().count(), 1, "only the header: {ls:?}");
    // Docker's `volume create` fails with 1, as its other non-run commands.
    let bad = world.cctl(&["volume", "create", "a/b"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("not a valid volume name"), "{bad:?}");
    assert!(world.container_folders().is_empty());
}

#[test]
fn anonymous_volumes_go_with_rm_and_rm_v_only() {
    let world = World::new();
    let volumes = |world: &World| -> Vec<String> {
        let ls = world.cctl(&["volume", "ls"]);
        ls.stdout
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
            .collect()
    };
    // `--rm` takes its anonymous volume along.
    let ran = world.run(
        &["-v", "/cache"],
        &["sh", "-c", "echo x > /cache/f && cat /cache/f"],
    );
    assert_eq!((ran.code, ran.stdout.as_str()), (0, "x\n"), "{ran:?}");
    assert!(volumes(&world).is_empty(), "--rm left its anonymous volume");
    // Without it, `rm` keeps the volume (named like an id) and `rm -v` does not.
    for name in ["keep", "drop"] {
        let ran = world.cctl(&["run", "--name", name, "-v", "/cache", &world.image, "true"]);
        assert_eq!(ran.code, 0, "{ran:?}");
    }
    assert_eq!(world.cctl(&["rm", "keep"]).code, 0);
    assert_eq!(world.cctl(&["rm", "-v", "drop"]).code, 0);
    let left = volumes(&world);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].len(), 64, "named like an id: {left:?}");
    assert_eq!(world.cctl(&["volume", "prune", "-f"]).code, 0);
    assert!(volumes(&world).is_empty());
}

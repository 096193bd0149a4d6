//! Mounts a container asks for, in real VMs: tmpfs (`--tmpfs`, `--mount
//! type=tmpfs`) with Podman's options, host folders and files (`-v
//! HOST:CTR`, `--mount type=bind`), named and anonymous volumes, and bad
//! mount flags refused as Docker refuses them.

mod support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::World;

/// The pids of 9p share helpers whose command line mentions `needle`.
fn share_helpers_with(needle: &str) -> Vec<u32> {
    support::processes_with("/usr/lib/qemu/virtfs-proxy-helper", needle)
}

/// Waits up to 5 s for no share helper of `needle` to be left.
fn assert_no_share_helper(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !share_helpers_with(needle).is_empty() {
        assert!(Instant::now() < deadline, "a 9p helper outlived its VM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Mounts of this host's namespace under `dir`.
fn host_mounts_under(dir: &Path) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let dir = dir.to_string_lossy().into_owned();
    mounts
        .lines()
        .filter(|line| line.split(' ').nth(4).is_some_and(|m| m.starts_with(&dir)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn host_folders_and_files_are_shared_both_ways_as_docker_binds_them() {
    let world = World::new();
    let host = tempfile::tempdir().expect("host folder");
    let dir = host.path().join("a folder");
    let nested = host.path().join("nested");
    let read_only = host.path().join("ro");
    let made = host.path().join("made/by/run");
    for folder in [&dir, &nested, &read_only] {
        std::fs::create_dir_all(folder).unwrap();
    }
    std::fs::create_dir(dir.join("sub dir")).unwrap();
    std::fs::write(dir.join("sub dir/héllo wörld.txt"), "from the host\n").unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("etc-link")).unwrap();
    std::fs::write(nested.join("inner"), "nested\n").unwrap();
    let file = host.path().join("app.conf");
    std::fs::write(&file, "setting=1\n").unwrap();
    let v = |source: &Path, target: &str| format!("{}:{target}", source.display());
    let ran = world.run(
        &[
            "--hostname",
            "guest-side",
            "-v",
            &v(&dir, "/data"),
            "-v",
            &v(&nested, "/data/nested"),
            "-v",
            &format!("{}:/etc/app.conf:ro", file.display()),
            "--mount",
            &format!(
                "type=bind,source={},target=/ro,readonly",
                read_only.display()
            ),
            "-v",
            &v(&made, "/made"),
        ],
        &[
            "sh",
            "-c",
            "cat '/data/sub dir/héllo wörld.txt' /data/nested/inner /etc/app.conf; \
             cat /data/etc-link/hostname; \
             echo written > /data/out && mkdir /data/newdir && echo n > /data/nested/n; \
             touch /made/here; \
             touch /ro/x 2>&1; echo more >> /etc/app.conf 2>&1; \
             su nobody -s /bin/sh -c 'touch /data/by-nobody' 2>&1; \
             ls /ro /etc | grep -c app.conf",
        ],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    let out = &ran.stdout;
    assert!(
        out.starts_with("from the host\nnested\nsetting=1\n"),
        "{ran:?}"
    );
    // `/data/etc-link -> /etc` resolves in the container: its hostname.
    assert!(out.contains("\nguest-side\n"), "{ran:?}");
    let said = format!("{out}{}", ran.stderr);
    for refused in [
        "touch: /ro/x: Read-only file system",
        "can't create /etc/app.conf: Read-only file system",
        "touch: /data/by-nobody: Permission denied",
    ] {
        assert!(said.contains(refused), "{refused:?} missing: {ran:?}");
    }
    assert!(out.ends_with("\n1\n"), "{ran:?}");
    // What the container's root made is root's on the host, as in Docker.
    let written = dir.join("out");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "written\n");
    let meta = std::fs::metadata(&written).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert!(dir.join("newdir").is_dir());
    assert_eq!(std::fs::read_to_string(nested.join("n")).unwrap(), "n\n");
    assert!(
        made.join("here").is_file(),
        "-v makes a missing host folder"
    );
    assert_eq!(std::fs::read_dir(&read_only).unwrap().count(), 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "setting=1\n");
    assert!(!dir.join("by-nobody").exists());
    assert!(host_mounts_under(world.root.path()).is_empty());
    assert!(host_mounts_under(Path::new("/run/containerization")).is_empty());
}

#[test]
fn a_template_restore_binds_each_runs_own_folder_read_only_on_the_host() {
    let world = World::new();
    let host = tempfile::tempdir().expect("host folder");
    let (one, two) = (host.path().join("one"), host.path().join("two"));
    for (dir, name) in [(&one, "one"), (&two, "two")] {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("which"), name).unwrap();
    }
    // The first run builds the template with one 9p device, the second is
    // restored from it with another folder behind the device.
    for (dir, name) in [(&one, "one"), (&two, "two")] {
        let ran = world.run(
            &["-v", &format!("{}:/data:ro", dir.display())],
            &["cat", "/data/which"],
        );
        assert_eq!((ran.code, ran.stdout.as_str()), (0, name), "{ran:?}");
    }
    // Read-only is the host's doing too: the helper's export is a
    // read-only mount in its own namespace, so even a QEMU that asked
    // could not write.
    world.detach(
        "holder",
        &["-v", &format!("{}:/data:ro", one.display())],
        &["sleep", "300"],
    );
    let id = world.inspect("holder")["Id"].as_str().unwrap().to_owned();
    // Its run folder is named by the id's first 16 characters.
    let helpers = share_helpers_with(&id[..16]);
    assert_eq!(helpers.len(), 1, "one helper serves the VM's shares");
    // A helper holds a descriptor for each file in use (virtiofsd, the
    // same code's other helper, for each file the guest looked up): its
    // limit is the kernel's most when the owner may raise it
    // (CAP_SYS_RESOURCE, which this machine's root lacks), else the
    // owner's hard limit, soft and hard.
    let files = |pid: &str| {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .unwrap()
            .to_owned();
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        (words[3].clone(), words[4].clone())
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let capabilities = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    let expected = match capabilities & (1 << 24) != 0 {
        true => std::fs::read_to_string("/proc/sys/fs/nr_open")
            .unwrap()
            .trim()
            .to_owned(),
        false => files("self").1,
    };
    assert_eq!(files(&helpers[0].to_string()), (expected.clone(), expected));
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", helpers[0])).unwrap();
    let export = mountinfo
        .lines()
        // The helper has chrooted into its export: share 0 is `/0`.
        .find(|line| line.split(' ').nth(4) == Some("/0"))
        .unwrap_or_else(|| panic!("no export in the helper's namespace: {mountinfo}"));
    let options: Vec<&str> = export.split(' ').nth(5).unwrap().split(',').collect();
    for option in ["ro", "nosuid", "nodev"] {
        assert!(options.contains(&option), "{option} missing: {export}");
    }
    assert!(
        host_mounts_under(Path::new("/run/containerization")).is_empty(),
        "the export is mounted only in the helper's namespace"
    );
    let inspect = world.inspect("holder");
    let mounts = inspect["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{inspect}");
    assert_eq!(mounts[0]["Type"], "bind");
    assert_eq!(mounts[0]["Source"], one.to_string_lossy().as_ref());
    assert_eq!(mounts[0]["Destination"], "/data");
    assert_eq!(mounts[0]["RW"], false);
    assert_eq!(world.cctl(&["rm", "-f", "holder"]).code, 0);
    assert_no_share_helper(&id[..16]);

    // SIGKILL of a foreground `cctl run` takes its helpers with its VM.
    let mut child = world
        .command(&[
            "run",
            "--name",
            "victim",
            "-v",
            &format!("{}:/data", two.display()),
            &world.image,
            "sleep",
            "300",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cctl run");
    let id = world.id_once_running("victim");
    assert_eq!(share_helpers_with(&id[..16]).len(), 1);
    child.kill().expect("SIGKILL cctl run");
    let _ = child.wait();
    assert_no_share_helper(&id[..16]);
    assert!(
        support::qemu_with(&id[..16]).is_empty() || {
            std::thread::sleep(Duration::from_secs(5));
            support::qemu_with(&id[..16]).is_empty()
        }
    );
    assert_eq!(world.cctl(&["rm", "-f", "victim"]).code, 0);

    // The virtio-fs opt-in: a cold boot (it does not migrate), the same
    // view, each host file system its own device in the guest.
    let out = world
        .command(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/data", one.display()),
            "-v",
            &format!("{}:/two:ro", two.display()),
            &world.image,
            "sh",
            "-c",
            "cat /data/which /two/which; echo vf > /data/vf; touch /two/x; \
             grep -c ' virtiofs ' /proc/mounts",
        ])
        .env("CZ_SHARES", "virtiofs")
        .output()
        .expect("cctl run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "onetwo2\n", "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    let meta = std::fs::metadata(one.join("vf")).unwrap();
    assert_eq!((meta.uid(), meta.len()), (0, 3));
}

/// The guest keeps a shared folder's names for a second (the 9p patch in
/// `kernel/patches`), so deep trees do not cost a walk per component; what
/// the host changes must still show: contents, sizes and new names at once,
/// an open always finds the host's file of that name, renames and removals
/// within the second.
#[test]
fn a_running_container_sees_the_hosts_changes_in_a_shared_folder() {
    let world = World::new();
    let host = tempfile::tempdir().expect("host folder");
    let dir = host.path();
    let deep = dir.join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("f"), "one\n").unwrap();
    world.detach(
        "watcher",
        &["-v", &format!("{}:/data", dir.display())],
        &["sleep", "300"],
    );
    let exec = |script: &str| {
        let ran = world.cctl(&["exec", "watcher", "sh", "-c", script]);
        assert_eq!(ran.code, 0, "{script}: {ran:?}");
        ran.stdout
    };
    let f = "/data/a/b/c/f";
    assert_eq!(exec(&format!("cat {f}; stat -c %s {f}")), "one\n4\n");
    std::fs::write(deep.join("f"), "a longer second text\n").unwrap();
    assert_eq!(
        exec(&format!("cat {f}; stat -c %s {f}")),
        "a longer second text\n21\n"
    );
    // An append in the container lands after what the host appended.
    std::fs::OpenOptions::new()
        .append(true)
        .open(deep.join("f"))
        .unwrap()
        .write_all(b"host\n")
        .unwrap();
    exec(&format!("echo guest >> {f}"));
    assert_eq!(
        std::fs::read_to_string(deep.join("f")).unwrap(),
        "a longer second text\nhost\nguest\n"
    );
    // A name the host makes shows at once; a name the host removes can be
    // made again by the container at once.
    std::fs::write(deep.join("new"), "new\n").unwrap();
    assert_eq!(exec("cat /data/a/b/c/new"), "new\n");
    std::fs::remove_file(deep.join("new")).unwrap();
    exec("echo again > /data/a/b/c/new");
    assert_eq!(
        std::fs::read_to_string(deep.join("new")).unwrap(),
        "again\n"
    );
    // An editor's save: a new file renamed over the old one.
    std::fs::write(dir.join("a/tmp"), "saved\n").unwrap();
    std::fs::rename(dir.join("a/tmp"), deep.join("f")).unwrap();
    assert_eq!(exec(&format!("cat {f}")), "saved\n");
    // Renamed and removed folders: gone from the container within a second.
    std::fs::rename(dir.join("a/b"), dir.join("a/moved")).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        exec("ls /data/a; [ -e /data/a/b/c/f ] && echo stale; cat /data/a/moved/c/f"),
        "moved\nsaved\n"
    );
    std::fs::remove_dir_all(dir.join("a/moved")).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        exec("ls -A /data/a; [ -e /data/a/moved/c ] || echo gone"),
        "gone\n"
    );
    assert_eq!(world.cctl(&["rm", "-f", "watcher"]).code, 0);
}

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
    let too_many_volumes: Vec<String> = (0..257)
        .flat_map(|i| ["-v".to_owned(), format!("v{i}:/v{i}")])
        .collect();
    let too_many: Vec<&str> = too_many_volumes.iter().map(String::as_str).collect();
    for (flags, named) in [
        (["--tmpfs", "relative"].as_slice(), "absolute"),
        (&["--tmpfs", "/x:size=lots"], "lots"),
        (
            &["--tmpfs", "/a", "--mount", "type=tmpfs,target=/a"],
            "duplicate mount point: /a",
        ),
        (
            &["--mount", "type=bind,source=/nonexistent/cz,target=/x"],
            "bind source path does not exist: /nonexistent/cz",
        ),
        (&["--mount", "type=bind,source=/tmp,target=rel"], "absolute"),
        (
            &["-v", "/tmp:/x", "-v", "/var:/x"],
            "duplicate mount point: /x",
        ),
        (
            too_many.as_slice(),
            "257 volumes asked for; a container can have at most 256",
        ),
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
    // Volumes are disks on one SCSI controller, so a container is not held
    // to microvm's few virtio slots: six here.
    let read = world.run(
        &[
            "--mount",
            "type=volume,source=data,target=/mnt/v,readonly",
            "-v",
            "v1:/v1",
            "-v",
            "v2:/v2",
            "-v",
            "v3:/v3",
            "-v",
            "v4:/v4",
            "-v",
            "v5:/v5:ro",
        ],
        &[
            "sh",
            "-c",
            "cat /mnt/v/f; ls /mnt/v; touch /mnt/v/x; \
             for i in 1 2 3 4; do echo $i > /v$i/n; done; cat /v4/n; \
             grep -c ' /v[1-5] ext4 ' /proc/mounts",
        ],
    );
    assert_eq!(read.stdout, "kept\nd\nf\nlost+found\n4\n5\n", "{read:?}");
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
        (0, "data\nspare\nv1\nv2\nv3\nv4\nv5\n"),
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

/// A VM killed while it writes a volume leaves its journal to replay, which
/// a read-only mount cannot do (the disk is read-only on the host too): the
/// read-only user is refused with what to do, and one read-write mount
/// repairs it.
#[test]
fn a_volume_a_killed_vm_left_unclean_is_refused_read_only_until_mounted_read_write() {
    let world = World::new();
    world.detach(
        "writer",
        &["-v", "scratch:/data"],
        &[
            "sh",
            "-c",
            "while true; do echo x >> /data/f; sleep 0.05; done",
        ],
    );
    let id = world.id_once_running("writer");
    std::thread::sleep(Duration::from_secs(2));
    let qemus = support::qemu_with(&id[..16]);
    assert!(!qemus.is_empty(), "the writer's QEMU");
    for pid in qemus {
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while world.inspect("writer")["State"]["Running"] == true {
        assert!(
            Instant::now() < deadline,
            "the killed VM's container still runs"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = world.run(&["-v", "scratch:/data:ro"], &["true"]);
    assert_eq!(refused.code, 125, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("left unclean by a VM that did not stop cleanly")
            && refused.stderr.contains("mount it read-write once"),
        "{refused:?}"
    );
    assert_eq!(world.run(&["-v", "scratch:/data"], &["true"]).code, 0);
    let read = world.run(&["-v", "scratch:/data:ro"], &["ls", "/data"]);
    assert_eq!(read.code, 0, "{read:?}");
    assert!(read.stdout.contains("lost+found"), "{read:?}");
    assert_eq!(world.cctl(&["rm", "-f", "writer"]).code, 0);
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

#[test]
fn a_new_volume_starts_with_the_image_folder_it_covers() {
    let world = World::new();
    let listing = "ls -la --full-time /bin | sed 1d | grep -v lost+found | \
                   awk '{print $1, $3, $4, $5, $6, $7, $9, $10, $11}'";
    let plain = world.run(&[], &["sh", "-c", listing]);
    assert_eq!(plain.code, 0, "{plain:?}");
    assert!(plain.stdout.lines().count() > 10, "{plain:?}");
    // Mounted over /bin, the new volume holds the image's /bin (its shell
    // runs from it), with the same modes, owners, sizes, times and links.
    let seeded = world.run(&["-v", "seeded:/bin"], &["sh", "-c", listing]);
    assert_eq!(seeded.code, 0, "{seeded:?}");
    let without_dots = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.ends_with(" .") && !l.ends_with(" .."))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(without_dots(&seeded.stdout), without_dots(&plain.stdout));
    // A volume that holds something is not filled again.
    let changed = world.run(
        &["-v", "seeded:/mnt"],
        &["sh", "-c", "rm /mnt/ls && echo mine > /mnt/note"],
    );
    assert_eq!(changed.code, 0, "{changed:?}");
    let again = world.run(
        &["-v", "seeded:/bin"],
        &[
            "sh",
            "-c",
            "test -e /bin/ls && echo refilled; cat /bin/note",
        ],
    );
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (0, "mine\n"),
        "{again:?}"
    );
    assert_eq!(world.cctl(&["volume", "rm", "seeded"]).code, 0);
}

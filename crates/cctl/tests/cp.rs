//! `cctl cp` in real VMs, against GNU tar as the reference: a tree with
//! modes, owners, links, odd names and a 100 MiB file copied into running
//! and stopped containers and back out; tar streams both ways; volumes and
//! host paths; containers that plant symlinks to escape; Docker's rules for
//! where a copy lands, its errors and exit codes.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use support::World;

/// Runs a shell line on the host, asserting it succeeds; its output.
fn sh(line: &str) -> String {
    let out = Command::new("sh").args(["-c", line]).output().expect("sh");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// GNU tar's listing of `dir`'s contents: modes, owners (numeric), sizes,
/// times to the second and link targets, sorted by name.
fn listing(dir: &Path, owners: bool) -> String {
    let owner = if owners {
        "--numeric-owner"
    } else {
        "--owner=0 --group=0 --numeric-owner"
    };
    sh(&format!(
        "tar -C '{}' --sort=name {owner} -cf - . | tar --full-time --numeric-owner -tvf -",
        dir.display()
    ))
}

/// A tree with what a copy must keep: modes (0750, 0600, a setgid
/// folder), owners, a symlink, a hard link, a name with spaces and
/// non-ASCII letters, and a 100 MiB file.
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("private")).expect("tree");
    std::fs::create_dir_all(dir.join("shared")).expect("tree");
    std::fs::write(dir.join("private/secret"), "s3cret\n").expect("tree");
    std::fs::write(dir.join("shared/héllo wörld.txt"), "hello\n").expect("tree");
    std::fs::write(dir.join("run.sh"), "#!/bin/sh\necho hi\n").expect("tree");
    sh(&format!(
        "cd '{}' && chmod 0750 private run.sh && chmod 0600 private/secret && chmod 2775 shared \
         && chown 1000:1000 private/secret && chown 1234:4321 shared && chown 0:42 run.sh \
         && ln -s 'shared/héllo wörld.txt' link && ln run.sh hard \
         && head -c 104857600 /dev/urandom > big.bin && touch -d '2021-02-03 04:05:06' big.bin link -h",
        dir.display()
    ));
}

fn sha256(path: &Path) -> String {
    sh(&format!("sha256sum < '{}'", path.display()))
}

#[test]
fn trees_round_trip_through_running_and_stopped_containers() {
    let world = World::new();
    let host = tempfile::tempdir().unwrap();
    let tree = host.path().join("tree");
    make_tree(&tree);
    world.detach("live", &["--network", "none"], &["sleep", "3600"]);

    // Into a running container with -a and back out with -a: everything kept.
    let started = std::time::Instant::now();
    let ran = world.cctl(&["cp", "-a", tree.to_str().unwrap(), "live:/dst"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let ls = world.cctl(&[
        "exec",
        "live",
        "ls",
        "-ln",
        "/dst/private/secret",
        "/dst/run.sh",
    ]);
    assert!(
        ls.stdout.contains(" 1000 ") && ls.stdout.contains(" 42 "),
        "{ls:?}"
    );
    let out = host.path().join("out-live");
    let ran = world.cctl(&["cp", "-a", "live:/dst", out.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{ran:?}");
    eprintln!("running round trip: {:?}", started.elapsed());
    assert_eq!(listing(&tree, true), listing(&out, true));
    assert_eq!(sha256(&tree.join("big.bin")), sha256(&out.join("big.bin")));
    assert_eq!(std::fs::metadata(out.join("hard")).unwrap().nlink(), 2);

    // Without -a, files land owned by root in the container.
    let ran = world.cctl(&["cp", tree.join("private").to_str().unwrap(), "live:/plain"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let ls = world.cctl(&[
        "exec",
        "live",
        "stat",
        "-c",
        "%u:%g %a",
        "/plain/secret",
        "/plain",
    ]);
    assert_eq!(ls.stdout, "0:0 600\n0:0 750\n", "{ls:?}");

    // A stopped (created) container: in, out, and kept for its start.
    let ran = world.cctl(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        &world.image,
        "sha256sum",
        "/dst/big.bin",
    ]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let started = std::time::Instant::now();
    let ran = world.cctl(&["cp", "-a", tree.to_str().unwrap(), "idle:/dst"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let out = host.path().join("out-idle");
    let ran = world.cctl(&["cp", "-a", "idle:/dst", out.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{ran:?}");
    eprintln!("stopped round trip: {:?}", started.elapsed());
    assert_eq!(listing(&tree, true), listing(&out, true));
    assert_eq!(sha256(&tree.join("big.bin")), sha256(&out.join("big.bin")));
    assert_eq!(world.inspect("idle")["State"]["Status"], "created");

    // While a copy holds it, a start and a removal are refused.
    let mut copy = world
        .command(&["cp", tree.to_str().unwrap(), "idle:/again"])
        .spawn()
        .unwrap();
    let state = world
        .containers_dir()
        .join(world.inspect("idle")["Id"].as_str().unwrap())
        .join("state.json");
    let copying = || {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v["copying"] == true)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !copying() {
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never claimed idle: {:?} {:?}",
            std::fs::read_to_string(&state),
            copy.try_wait()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let start = world.cctl(&["start", "idle"]);
    assert_ne!(start.code, 0, "{start:?}");
    assert!(start.stderr.contains("copy"), "{start:?}");
    let rm = world.cctl(&["rm", "idle"]);
    assert_eq!(rm.code, 1, "{rm:?}");
    assert!(rm.stderr.contains("copy"), "{rm:?}");
    assert!(copy.wait().unwrap().success());
    assert!(!copying(), "the copy let go of idle");

    let ran = world.cctl(&["start", "idle"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let wait = world.cctl(&["wait", "idle"]);
    let _ = wait;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while world.inspect("idle")["State"]["Status"] != "exited" {
        assert!(std::time::Instant::now() < deadline, "idle never ended");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let logs = world.cctl(&["logs", "idle"]);
    let expected = sha256(&tree.join("big.bin"));
    assert_eq!(
        logs.stdout.split_whitespace().next(),
        expected.split_whitespace().next(),
        "{logs:?}"
    );
}

/// Waits until `path` exists in running container `name`.
fn wait_for(world: &World, name: &str, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while world.cctl(&["exec", name, "test", "-e", path]).code != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never appeared in {name}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Asserts `cctl args…` fails with exit code 1 and says `needle`.
fn assert_refused(world: &World, args: &[&str], needle: &str) {
    let ran = world.cctl(args);
    assert_eq!(ran.code, 1, "{args:?}: {ran:?}");
    assert!(
        ran.stderr.contains(needle),
        "{args:?} should say {needle:?}: {ran:?}"
    );
}

#[test]
fn destinations_streams_mounts_and_hostile_symlinks_follow_dockers_rules() {
    let world = World::new();
    let host = tempfile::tempdir().unwrap();
    let shared = host.path().join("shared");
    let sentinel = host.path().join("sentinel");
    let d = host.path().join("out");
    for dir in [&shared, &sentinel, &d] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let setup = format!(
        "ln -s / /evil && ln -s ../../.. /climb && mkdir -p /trap/dir /srcdir/sub && \
         ln -s {} /trap/out && ln -s /etc /trap/link && echo a > /srcdir/a && \
         echo b > /srcdir/sub/b && echo f > /file && sleep 3600",
        sentinel.display()
    );
    let v = format!("{}:/hostp", shared.display());
    world.detach(
        "box",
        &[
            "--network",
            "none",
            "--hostname",
            "inside-name",
            "-v",
            "cpvol:/vol",
            "-v",
            &v,
        ],
        &["sh", "-c", &setup],
    );
    wait_for(&world, "box", "/file");
    let at = |name: &str| d.join(name).display().to_string();
    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();

    // Out of the container, Docker's destination rules.
    assert_eq!(world.cctl(&["cp", "box:/file", &at("f1")]).code, 0);
    assert_eq!(read("f1"), "f\n", "file onto a missing path");
    std::fs::write(d.join("f1"), "old, longer content\n").unwrap();
    assert_eq!(world.cctl(&["cp", "box:/file", &at("f1")]).code, 0);
    assert_eq!(read("f1"), "f\n", "file onto a file replaces it");
    assert_eq!(
        world
            .cctl(&["cp", "box:/file", &format!("{}/", d.display())])
            .code,
        0
    );
    assert_eq!(read("file"), "f\n", "file into a folder");
    assert_refused(
        &world,
        &["cp", "box:/file", &format!("{}/", at("nodir"))],
        "destination directory does not exist",
    );
    assert_eq!(world.cctl(&["cp", "box:/srcdir", &at("d1")]).code, 0);
    assert_eq!(read("d1/sub/b"), "b\n", "folder onto a missing path");
    assert_eq!(world.cctl(&["cp", "box:/srcdir", &at("d1")]).code, 0);
    assert_eq!(read("d1/srcdir/a"), "a\n", "folder into a folder");
    std::fs::create_dir(d.join("d2")).unwrap();
    assert_eq!(world.cctl(&["cp", "box:/srcdir/.", &at("d2")]).code, 0);
    assert_eq!(read("d2/a"), "a\n", "a folder's contents with /.");
    assert_refused(
        &world,
        &["cp", "box:/srcdir", &at("f1")],
        "cannot copy a directory to a file",
    );

    // Into the container, the same rules.
    let hostfile = host.path().join("hostfile");
    std::fs::write(&hostfile, "from the host\n").unwrap();
    let hostdir = host.path().join("hostdir");
    std::fs::create_dir_all(hostdir.join("inner")).unwrap();
    std::fs::write(hostdir.join("inner/x"), "x\n").unwrap();
    let (hf, hd) = (hostfile.to_str().unwrap(), hostdir.to_str().unwrap());
    let cat = |path: &str| world.cctl(&["exec", "box", "cat", path]).stdout;
    assert_eq!(world.cctl(&["cp", hf, "box:/in1"]).code, 0);
    assert_eq!(cat("/in1"), "from the host\n");
    assert_eq!(world.cctl(&["cp", hd, "box:/tmp"]).code, 0);
    assert_eq!(cat("/tmp/hostdir/inner/x"), "x\n");
    assert_eq!(
        world.cctl(&["cp", &format!("{hd}/."), "box:/srcdir"]).code,
        0
    );
    assert_eq!(cat("/srcdir/inner/x"), "x\n");
    assert_refused(
        &world,
        &["cp", hd, "box:/file"],
        "cannot copy a directory to a file",
    );
    assert_refused(
        &world,
        &["cp", hf, "box:/nodir/"],
        "destination directory does not exist",
    );

    // Volumes and host paths are the container's view.
    assert_eq!(world.cctl(&["cp", hf, "box:/vol/in-volume"]).code, 0);
    let mounted = world.cctl(&[
        "exec",
        "box",
        "sh",
        "-c",
        "grep ' /vol ' /proc/mounts && cat /vol/in-volume",
    ]);
    assert!(mounted.stdout.contains("from the host"), "{mounted:?}");
    assert_eq!(world.cctl(&["cp", hf, "box:/hostp/in-host"]).code, 0);
    assert_eq!(
        std::fs::read_to_string(shared.join("in-host")).unwrap(),
        "from the host\n"
    );

    // Tar streams both ways, against GNU tar.
    assert_eq!(world.cctl(&["exec", "box", "mkdir", "/fromtar"]).code, 0);
    let tarball = Command::new("tar")
        .arg("-C")
        .arg(&hostdir)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    let ran = world.cctl_with_input(&["cp", "-", "box:/fromtar"], &tarball.stdout);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(cat("/fromtar/inner/x"), "x\n");
    let out = world.command(&["cp", "box:/srcdir", "-"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(host.path().join("out.tar"), &out.stdout).unwrap();
    let listed = sh(&format!(
        "tar -tf '{}'",
        host.path().join("out.tar").display()
    ));
    assert!(
        listed
            .lines()
            .any(|l| l.trim_end_matches('/') == "srcdir/sub/b"),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.trim_end_matches('/') == "srcdir/inner/x"),
        "{listed}"
    );

    // Hostile symlinks: resolved in the container's root, never the guest's
    // or the host's.
    assert_eq!(
        world
            .cctl(&["cp", "box:/evil/etc/hostname", &at("hn")])
            .code,
        0
    );
    assert_eq!(read("hn"), "inside-name\n");
    assert_eq!(
        world
            .cctl(&["cp", "box:/climb/etc/hostname", &at("hn2")])
            .code,
        0
    );
    assert_eq!(read("hn2"), "inside-name\n");
    assert_eq!(world.cctl(&["cp", "box:/trap", &at("trap")]).code, 0);
    assert_eq!(std::fs::read_link(d.join("trap/out")).unwrap(), sentinel);
    assert_eq!(
        std::fs::read_link(d.join("trap/link")).unwrap(),
        Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_dir(&sentinel).unwrap().count(),
        0,
        "nothing written through a link"
    );
    assert_eq!(
        world.cctl(&["cp", "-L", "box:/trap/link", &at("etc")]).code,
        0
    );
    assert_eq!(
        read("etc/hostname"),
        "inside-name\n",
        "-L follows the source link inside"
    );
    assert_eq!(
        world.cctl(&["cp", hf, "box:/evil/tmp/through-link"]).code,
        0
    );
    assert_eq!(cat("/tmp/through-link"), "from the host\n");

    // Errors, with Docker's exit code 1.
    assert_refused(&world, &["cp", "nosuch:/x", &at("x")], "no such container");
    assert_refused(
        &world,
        &["cp", "box:/nope", &at("x")],
        "Could not find the file /nope in container box",
    );
    assert_refused(
        &world,
        &["cp", "/no/such/host/path", "box:/tmp"],
        "no such file or directory",
    );
    assert_refused(
        &world,
        &["cp", hf, &at("x")],
        "must specify at least one container",
    );
    assert_refused(
        &world,
        &["cp", "box:/file", "box:/file2"],
        "one side must be a host path",
    );

    // A stopped read-only container: read, never written.
    let ran = world.cctl(&[
        "create",
        "--name",
        "ro",
        "--read-only",
        "--network",
        "none",
        &world.image,
        "true",
    ]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(world.cctl(&["cp", "ro:/etc/passwd", &at("passwd")]).code, 0);
    assert!(read("passwd").starts_with("root:"));
    assert_refused(&world, &["cp", hf, "ro:/in-ro"], "Read-only file system");
}

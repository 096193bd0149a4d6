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

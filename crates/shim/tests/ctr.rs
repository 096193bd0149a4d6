//! containerd-shim-cz-v2 driven by a real containerd (Debian's 1.6, task
//! API v2) through `ctr`, as a user of containerd runs containers: each
//! task in a VM, its exit code, output, TTY, execs, metrics, kill and
//! delete; and a shim killed outright.

mod common;

use std::process::Command;

use common::{RUNTIME, World, text};

#[test]
fn ctr_runs_each_task_in_a_vm_with_its_output_exit_code_tty_execs_and_metrics() {
    let world = World::new();
    let hi = world.run("hi", &["echo", "hi"]);
    assert!(hi.status.success(), "{}", text(&hi.stderr));
    assert_eq!(text(&hi.stdout), "hi\n");
    let code = world.run("code", &["sh", "-c", "exit 3"]);
    assert_eq!(code.status.code(), Some(3), "{}", text(&code.stderr));
    // A kernel of its own.
    let uname = world.run("uname", &["uname", "-r"]);
    let host = common::host_kernel();
    assert!(uname.status.success());
    assert_ne!(
        text(&uname.stdout),
        host,
        "the task ran on the host's kernel"
    );
    // Three tasks of one image: its snapshots became one base, built
    // once and kept beside their key while they are there.
    let bases = world.snapshot_bases();
    assert_eq!(bases.len(), 1, "{bases:?}");
    // A terminal, resized to ctr's (30 rows, 100 columns).
    let tty = Command::new("script")
        .args([
            "-qec",
            &format!(
                "stty rows 30 cols 100; ctr -a {} run -t --rm --runtime {RUNTIME} {} tty \
                 sh -c 'tty; for i in $(seq 100); do [ \"$(stty size)\" = \"30 100\" ] && break; \
                 sleep 0.1; done; stty size'",
                world.containerd.socket().display(),
                world.image
            ),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script runs");
    let shown = text(&tty.stdout);
    assert!(shown.contains("/dev/pts/0"), "{shown:?}");
    assert!(shown.contains("30 100"), "{shown:?}");

    // The OOM killer: containerd hears of it (TaskOOM), and the exit is
    // 137.
    let mut events = world
        .containerd
        .ctr(&["events"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ctr events");
    let hog = world.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--memory-limit",
        "67108864",
        &world.image,
        "hog",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=300M",
        "count=1",
    ]);
    assert_eq!(hog.status.code(), Some(137), "{}", text(&hog.stderr));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = events.kill();
    let heard = events.wait_with_output().expect("ctr events ends");
    let heard = text(&heard.stdout);
    assert!(
        heard
            .lines()
            .any(|l| l.contains("/tasks/oom") && l.contains("hog")),
        "{heard}"
    );

    // A detached task: exec, metrics, kill, delete.
    let started = world.ctr(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        &world.image,
        "long",
        "sleep",
        "600",
    ]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    world.within(60, "the task runs", || {
        world.task_status("long").as_deref() == Some("RUNNING")
    });
    let exec = world.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "long",
        "sh",
        "-c",
        "echo exec-ok; ps -o args; exit 4",
    ]);
    assert_eq!(exec.status.code(), Some(4), "{}", text(&exec.stderr));
    let out = text(&exec.stdout);
    assert!(out.starts_with("exec-ok\n"), "{out:?}");
    assert!(
        out.contains("sleep 600"),
        "the exec joined the task: {out:?}"
    );
    let metrics = world.ctr(&["task", "metrics", "long"]);
    let shown = text(&metrics.stdout);
    assert!(metrics.status.success(), "{}", text(&metrics.stderr));
    assert!(shown.contains("pids.current"), "{shown}");
    assert!(shown.contains("memory.usage"), "{shown}");
    let refused = world.ctr(&["task", "delete", "long"]);
    assert!(!refused.status.success(), "a running task is not deleted");
    let killed = world.ctr(&["task", "kill", "-s", "KILL", "long"]);
    assert!(killed.status.success(), "{}", text(&killed.stderr));
    world.within(30, "the task stops", || {
        world.task_status("long").as_deref() == Some("STOPPED")
    });
    let deleted = world.ctr(&["task", "delete", "long"]);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(world.ctr(&["container", "rm", "long"]).status.success());
    world.assert_clean();

    // The base outlives its containers while containerd keeps the
    // snapshots, and goes with them.
    let root = containerization::StateRoot::new(world.root.path());
    containerization::rootfs::collect_unused(&root, true).expect("collection");
    assert_eq!(world.snapshot_bases().len(), 1, "kept for the image");
    let removed = world.ctr(&["image", "rm", "--sync", &world.image]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let collection = containerization::rootfs::collect_unused(&root, true)
        .expect("collection")
        .expect("it waits");
    assert_eq!(collection.removed.len(), 1, "{collection:?}");
    assert!(world.snapshot_bases().is_empty());
}

#[test]
fn sigkill_of_the_shim_leaves_no_vm_and_ctr_is_told_the_truth() {
    let world = World::new();
    let started = world.ctr(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        &world.image,
        "doomed",
        "sleep",
        "600",
    ]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    world.within(60, "the task runs", || {
        world.task_status("doomed").as_deref() == Some("RUNNING")
    });
    assert_eq!(world.vms(), 1, "one VM for the task");
    let shims = world.containerd.shims();
    assert_eq!(shims.len(), 1, "{shims:?}");
    let pid = rustix::process::Pid::from_raw(i32::try_from(shims[0]).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL the shim");
    world.within(15, "the VM goes with its shim", || world.vms() == 0);
    world.within(30, "ctr stops saying it runs", || {
        world.task_status("doomed").as_deref() != Some("RUNNING")
    });
    let _ = world.ctr(&["task", "delete", "doomed"]);
    assert!(world.ctr(&["container", "rm", "doomed"]).status.success());
    world.assert_clean();
}

#[test]
fn tasks_naming_one_sandbox_share_its_shim_and_pod_vm_and_localhost() {
    let world = World::new();
    let sandbox = "io.kubernetes.cri.sandbox-id=sandbox-1";
    let server = world.ctr(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        "--annotation",
        sandbox,
        &world.image,
        "server",
        "sh",
        "-c",
        "echo served > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
    ]);
    assert!(server.status.success(), "{}", text(&server.stderr));
    world.within(60, "the server runs", || {
        world.task_status("server").as_deref() == Some("RUNNING")
    });
    let client = world.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--annotation",
        sandbox,
        &world.image,
        "client",
        "sh",
        "-c",
        "for i in $(seq 50); do wget -qO- http://localhost:8080/index.html && exit 0; \
         sleep 0.2; done; exit 1",
    ]);
    assert!(client.status.success(), "{}", text(&client.stderr));
    assert_eq!(text(&client.stdout), "served\n");
    assert_eq!(
        world.containerd.shims().len(),
        1,
        "one shim for the sandbox"
    );
    assert_eq!(world.entries("pods").len(), 1, "one pod");
    assert_eq!(world.vms(), 1, "one VM");
    assert!(
        world
            .ctr(&["task", "kill", "-s", "KILL", "server"])
            .status
            .success()
    );
    world.within(30, "the server stops", || {
        world.task_status("server").as_deref() == Some("STOPPED")
    });
    assert!(world.ctr(&["task", "delete", "server"]).status.success());
    assert!(world.ctr(&["container", "rm", "server"]).status.success());
    world.assert_clean();
}

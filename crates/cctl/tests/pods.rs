//! Pods in real VMs: several containers in one VM, sharing its address,
//! `localhost`, hostname and volumes, each with its own root file system,
//! process table and cgroup; containers added to and removed from a running
//! pod (their disks attached to and detached from its VM); templates kept;
//! an owner killed outright; and bad input refused with what to do.

mod support;

use std::time::{Duration, Instant};

use support::{Ran, World, qemu_with};

/// `cctl pod create --name NAME flags…`, asserting it runs; its id.
fn create_pod(world: &World, name: &str, flags: &[&str]) -> String {
    let mut args = vec!["pod", "create", "--name", name];
    args.extend_from_slice(flags);
    let ran = world.cctl(&args);
    assert_eq!(ran.code, 0, "pod create: {ran:?}");
    let id = ran.stdout.trim().to_owned();
    assert_eq!(id.len(), 64, "an id is printed: {ran:?}");
    id
}

/// `cctl pod inspect NAME` as JSON.
fn inspect_pod(world: &World, name: &str) -> serde_json::Value {
    let ran = world.cctl(&["pod", "inspect", name]);
    assert_eq!(ran.code, 0, "pod inspect {name}: {ran:?}");
    let all: serde_json::Value = serde_json::from_str(&ran.stdout).expect("inspect JSON");
    all[0].clone()
}

/// The block devices the guest has, as a container of the pod sees them
/// (`/sys/block` is the VM's): its SCSI disks.
fn guest_disks(world: &World, container: &str) -> Vec<String> {
    let ran = world.cctl(&["exec", container, "ls", "/sys/block"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    ran.stdout
        .split_whitespace()
        .filter(|d| d.starts_with("sd"))
        .map(str::to_owned)
        .collect()
}

/// The container disks QEMU `pid` holds open (descriptors on files in
/// the world's containers folder).
fn open_container_files(world: &World, pid: u32) -> Vec<String> {
    let containers = world.containers_dir();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("QEMU's descriptors")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.starts_with(&containers))
        .map(|target| target.display().to_string())
        .collect()
}

fn assert_refused(ran: &Ran, words: &str) {
    assert_eq!(ran.code, 125, "{ran:?}");
    assert!(ran.stderr.contains(words), "wanted {words:?}: {ran:?}");
}

#[test]
fn containers_of_a_pod_share_localhost_and_volumes_and_come_and_go_while_it_runs() {
    let world = World::new();
    let pod_id = create_pod(&world, "web", &[]);
    let qemu = qemu_with(&pod_id[..14]);
    assert_eq!(qemu.len(), 1, "one VM for the pod: {qemu:?}");
    let pod = inspect_pod(&world, "web");
    assert_eq!(pod["State"], "running", "{pod}");
    let address = pod["IPAddress"].as_str().expect("an address").to_owned();

    // A server and its data in one container …
    world.detach(
        "server",
        &[
            "--pod",
            "web",
            "-v",
            "shared:/data",
            "--mount",
            "type=tmpfs,source=scratch,target=/scratch,tmpfs-size=8m",
        ],
        &[
            "sh",
            "-c",
            "echo from-server > /data/greeting; echo served > /tmp/index.html; \
             echo in-memory > /scratch/note; echo mine > /marker; \
             exec httpd -f -p 8080 -h /tmp",
        ],
    );
    world.id_once_running("server");
    world.detach(
        "sidecar",
        &["--pod", "web", "-v", "shared:/data", "--memory", "64m"],
        &["sleep", "600"],
    );
    world.id_once_running("sidecar");
    // … a client in another: the same localhost and address, the same
    // volume and hostname, its own root file system and processes.
    let client = world.run(
        &[
            "--pod",
            "web",
            "-v",
            "shared:/data",
            "--mount",
            "type=tmpfs,source=scratch,target=/mem",
        ],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://localhost:8080/index.html \
             && break; sleep 0.5; done; cat /data/greeting; hostname; \
             ip -4 -o addr show eth0 | grep -o 'inet [0-9.]*'; \
             test -e /marker && echo shares-root || echo own-root; ls /proc > /tmp/procs; grep -c '^[0-9]' /tmp/procs; \
             cat /mem/note; df -k /mem | awk 'NR == 2 {print $2}'",
        ],
    );
    assert_eq!(client.code, 0, "{client:?}");
    let lines: Vec<&str> = client.stdout.lines().collect();
    assert_eq!(lines[0], "served", "{client:?}");
    assert_eq!(lines[1], "from-server", "{client:?}");
    assert_eq!(lines[2], "web", "the pod's hostname: {client:?}");
    assert_eq!(lines[3], format!("inet {address}"), "{client:?}");
    assert_eq!(lines[4], "own-root", "{client:?}");
    // sh and ls (its output to a file, so no reader races it): none of
    // the other containers' processes.
    assert_eq!(lines[5], "2", "its own process table: {client:?}");
    // The pod's tmpfs, with the size its first user gave it.
    assert_eq!(lines[6], "in-memory", "{client:?}");
    assert_eq!(lines[7], "8192", "{client:?}");

    // exec into each.
    let marker = world.cctl(&["exec", "server", "cat", "/marker"]);
    assert_eq!(marker.stdout, "mine\n", "{marker:?}");
    let listed = world.cctl(&["exec", "sidecar", "ps", "-o", "args"]);
    assert!(listed.stdout.contains("sleep 600"), "{listed:?}");
    assert!(!listed.stdout.contains("httpd"), "{listed:?}");
    // Each has a cgroup of its own, with its own limits.
    let memory_max = |name: &str| {
        let ran = world.cctl(&["exec", name, "cat", "/sys/fs/cgroup/memory.max"]);
        assert_eq!(ran.code, 0, "{ran:?}");
        ran.stdout.trim().to_owned()
    };
    assert_eq!(memory_max("sidecar"), (64u64 << 20).to_string());
    assert_eq!(memory_max("server"), "max");
    let ls = world.cctl(&["ls"]);
    assert!(ls.stdout.contains(" POD "), "{ls:?}");
    let server_row = ls
        .stdout
        .lines()
        .find(|l| l.ends_with(" server"))
        .expect("a row");
    assert!(server_row.contains(" web "), "{server_row}");
    // Two root disks and the volume.
    assert_eq!(guest_disks(&world, "sidecar").len(), 3);

    // Removing one leaves the pod and the other running; its disk goes.
    assert_eq!(world.cctl(&["rm", "-f", "server"]).code, 0);
    assert_eq!(inspect_pod(&world, "web")["State"], "running");
    assert_eq!(world.inspect("sidecar")["State"]["Running"], true);
    assert_eq!(guest_disks(&world, "sidecar").len(), 2, "its disk went");
    let greeting = world.cctl(&["exec", "sidecar", "cat", "/data/greeting"]);
    assert_eq!(greeting.stdout, "from-server\n", "{greeting:?}");

    // Twenty containers added and removed in a row: no disk left in the
    // guest, no container file open in QEMU but the sidecar's.
    for n in 0..20 {
        let ran = world.run(&["--pod", "web"], &["true"]);
        assert_eq!(ran.code, 0, "run {n}: {ran:?}");
    }
    assert_eq!(guest_disks(&world, "sidecar").len(), 2);
    let sidecar = world.inspect("sidecar")["Id"]
        .as_str()
        .expect("id")
        .to_owned();
    let open = open_container_files(&world, qemu[0]);
    assert!(
        open.iter().all(|path| path.contains(&sidecar)),
        "QEMU holds files of removed containers: {open:?}"
    );

    // Bad input.
    assert_refused(
        &world.cctl(&[
            "run",
            "-d",
            "--name",
            "sidecar",
            "--pod",
            "web",
            &world.image,
        ]),
        "already in use",
    );
    assert_refused(
        &world.run(&["--pod", "web", "--network", "none"], &["true"]),
        "share its network",
    );
    assert_refused(
        &world.run(&["--pod", "web", "-p", "8080:80"], &["true"]),
        "published",
    );
    let host = tempfile::tempdir().expect("host folder");
    let bind = format!("{}:/host", host.path().display());
    assert_refused(
        &world.run(&["--pod", "web", "-v", &bind], &["true"]),
        "named volume",
    );
    assert_refused(
        &world.run(&["--pod", "nope"], &["true"]),
        "no such pod: nope",
    );
    assert_refused(
        &world.run(
            &["--mount", "type=tmpfs,source=scratch,target=/s"],
            &["true"],
        ),
        "shared by the containers of a pod",
    );
    // More disks than the pod VM's SCSI controller has targets.
    let too_many: Vec<String> = (0..257)
        .flat_map(|i| ["-v".to_owned(), format!("v{i}:/v{i}")])
        .chain(["--pod".to_owned(), "web".to_owned()])
        .collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    assert_refused(
        &world.run(&too_many, &["true"]),
        "257 volumes asked for; a container can have at most 256",
    );
    let named = world.cctl(&["pod", "create", "--name", "web"]);
    assert_ne!(named.code, 0);
    assert!(named.stderr.contains("already in use"), "{named:?}");
    let running = world.cctl(&["pod", "rm", "web"]);
    assert_ne!(running.code, 0);
    assert!(running.stderr.contains("stop it first"), "{running:?}");

    // A stopped pod takes no container until it starts again.
    let stopped = world.cctl(&["pod", "stop", "-t", "1", "web"]);
    assert_eq!(stopped.code, 0, "{stopped:?}");
    assert!(qemu_with(&pod_id[..14]).is_empty(), "its VM stopped");
    assert_eq!(world.inspect("sidecar")["State"]["Running"], false);
    assert_refused(
        &world.run(&["--pod", "web"], &["true"]),
        "start it with `cctl pod start web`",
    );
    assert_eq!(world.cctl(&["pod", "start", "web"]).code, 0);
    assert_eq!(world.cctl(&["start", "sidecar"]).code, 0);
    let data = world.cctl(&["exec", "sidecar", "cat", "/data/greeting"]);
    assert_eq!(
        data.stdout, "from-server\n",
        "the volume kept its data: {data:?}"
    );

    // Removing the pod removes its containers.
    let removed = world.cctl(&["pod", "rm", "-f", "web"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert!(world.container_folders().is_empty());
    assert!(world.cctl(&["pod", "ls", "-q"]).stdout.is_empty());
    assert!(qemu_with(&pod_id[..14]).is_empty());
    assert_eq!(world.leases(), 0);
    world.assert_taps_idle();
}

#[test]
fn a_pod_restored_from_a_template_gives_each_container_its_own_disk_and_keeps_the_template() {
    let world = World::new();
    containerization_testkit::own_templates(world.root.path()).expect("own templates");
    create_pod(&world, "first", &["--network", "none"]);
    let templates = world.root.path().join("templates");
    let template_files = || {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for entry in std::fs::read_dir(&templates).expect("templates").flatten() {
            let state = entry.path().join("state");
            if state.is_file() {
                let bytes = std::fs::read(&state).expect("template state");
                files.push((entry.path().display().to_string(), bytes));
            }
        }
        files.sort();
        files
    };
    let before = template_files();
    assert_eq!(before.len(), 1, "the pod's VM was saved as a template");
    // A second pod comes from it.
    create_pod(&world, "second", &["--network", "none"]);
    assert_eq!(template_files().len(), 1, "one template, reused");
    let write = world.run(
        &["--pod", "second", "--name", "writer"],
        &["sh", "-c", "echo written > /written; cat /written"],
    );
    assert_eq!(write.stdout, "written\n", "{write:?}");
    world.detach(
        "keeper",
        &["--pod", "second"],
        &["sh", "-c", "echo kept > /kept; sleep 600"],
    );
    world.id_once_running("keeper");
    let other = world.run(
        &["--pod", "second"],
        &[
            "sh",
            "-c",
            "ls /written /kept 2>&1 | grep -c 'No such file'",
        ],
    );
    assert_eq!(other.stdout, "2\n", "its own disk: {other:?}");
    let kept = world.cctl(&["exec", "keeper", "cat", "/kept"]);
    assert_eq!(kept.stdout, "kept\n");
    assert_eq!(template_files(), before, "the template is untouched");
}

#[test]
fn sigkill_of_a_pods_owner_leaves_no_vm_lease_or_running_container() {
    let world = World::new();
    let pod_id = create_pod(&world, "doomed", &[]);
    world.detach("inside", &["--pod", "doomed"], &["sleep", "600"]);
    world.id_once_running("inside");
    let owner = inspect_pod(&world, "doomed")["OwnerPid"]
        .as_u64()
        .expect("an owner");
    assert_eq!(world.leases(), 1, "the pod holds one address");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(owner).unwrap()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .expect("SIGKILL the owner");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !qemu_with(&pod_id[..14]).is_empty() {
        assert!(Instant::now() < deadline, "QEMU outlived the pod's owner");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pod = inspect_pod(&world, "doomed");
    assert_eq!(pod["State"], "stopped", "{pod}");
    assert!(
        pod["Error"].as_str().unwrap_or_default().contains("owner"),
        "{pod}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while world.inspect("inside")["State"]["Running"] == true {
        assert!(Instant::now() < deadline, "its container still runs");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(world.leases(), 0, "the pod's address went back");
    world.assert_taps_idle();
    // A stopped pod still holds its network, as a stopped container does.
    let network = world.cctl(&["network", "rm", "default"]);
    assert_ne!(network.code, 0);
    assert!(network.stderr.contains("doomed"), "{network:?}");
    assert_eq!(world.cctl(&["pod", "rm", "doomed"]).code, 0);
    assert!(world.container_folders().is_empty());
}

//! `cctl run` and the container lifecycle, end to end: real VMs (TCG here),
//! the busybox fixture pulled from a loopback registry, networking in a
//! namespace of each test's own. Exit codes are Docker's.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{World, qemu_with};

#[test]
fn exit_codes_are_the_containers_or_dockers() {
    let world = World::new();
    let echo = world.run(&[], &["echo", "hello", "from", "a", "VM"]);
    assert_eq!(
        (echo.code, echo.stdout.as_str()),
        (0, "hello from a VM\n"),
        "{echo:?}"
    );
    let three = world.run(&[], &["sh", "-c", "exit 3"]);
    assert_eq!(three.code, 3, "{three:?}");
    let missing = world.run(&[], &["no-such-program"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    assert!(missing.stderr.contains("no-such-program"), "{missing:?}");
    let not_executable = world.run(&[], &["/etc/passwd"]);
    assert_eq!(not_executable.code, 126, "{not_executable:?}");
    // `cctl run --rm IMAGE yes | head -1` ends: the reader's going resets
    // the container's stream, and its writes fail. `yes` is its namespace's
    // init, whose default-action SIGPIPE the kernel drops, so it dies of the
    // write error instead: busybox's `yes` exits 1, as under Docker (141
    // would need a writer that is not the init).
    let yes = until_the_reader_leaves(&world, &["yes"]);
    assert_eq!(yes.code, 1, "{yes:?}");
    // A slow writer too, whose stream sits idle when the reader goes (the
    // host saw the close before any write failed, and only half-closed the
    // stream: the writer went on forever). Its `echo` fails, ending the loop.
    let slow = until_the_reader_leaves(&world, &["sh", "-c", "while echo y; do sleep 1; done"]);
    assert!(slow.stderr.contains("Broken pipe"), "{slow:?}");
    assert!(world.container_folders().is_empty(), "--rm left state");
    assert_eq!(world.leases(), 0, "each run released its lease");
}

/// `cctl run --rm IMAGE args… | head -1`: reads one line, closes the reader
/// and waits for the run to end (a hang detector, not a timing check).
fn until_the_reader_leaves(world: &World, args: &[&str]) -> support::Ran {
    use std::io::{BufRead, BufReader, Read};
    let mut command = vec!["run", "--rm", &world.image];
    command.extend_from_slice(args);
    let mut child = world
        .command(&command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cctl runs");
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    stdout.read_line(&mut first).expect("a first line");
    assert_eq!(first, "y\n");
    drop(stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cctl") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cctl run … {args:?} ran on for 60 s after its reader closed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    support::Ran {
        code: status.code().unwrap_or(-1),
        stdout: first,
        stderr,
    }
}

#[test]
fn env_workdir_user_and_entrypoint_are_honoured() {
    let world = World::new();
    let env_file = world.root.path().join("env");
    std::fs::write(&env_file, "# a comment\nB=from-file\n\nC=also\n").unwrap();
    let ran = world.run(
        &[
            "-e",
            "A=one",
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "C=flag-wins",
            "-w",
            "/tmp/work",
            "-u",
            "nobody",
            "--hostname",
            "box1",
        ],
        &[
            "sh",
            "-c",
            "echo $A $B $C; pwd; id -u; hostname; cat /etc/hostname",
        ],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(
        ran.stdout,
        "one from-file flag-wins\n/tmp/work\n65534\nbox1\nbox1\n"
    );
    let dns = world.run(
        &["--dns", "192.0.2.53", "--network", "none"],
        &[
            "sh",
            "-c",
            "grep nameserver /etc/resolv.conf; grep -c localhost /etc/hosts; \
             grep -c ip6- /etc/hosts; ls /sys/class/net",
        ],
    );
    // Docker's /etc/hosts: the two localhost lines and four IPv6 names; and
    // without a network, only `lo` (no `sit0` tunnel device).
    assert_eq!(dns.stdout, "nameserver 192.0.2.53\n2\n5\nlo\n", "{dns:?}");
    let entry = world.run(&["--entrypoint", "echo"], &["replaced"]);
    assert_eq!(
        (entry.code, entry.stdout.as_str()),
        (0, "replaced\n"),
        "{entry:?}"
    );
}

#[test]
fn stdin_round_trips_and_a_tty_is_a_tty() {
    let world = World::new();
    let piped = world.cctl_with_input(&["run", "--rm", "-i", &world.image, "cat"], b"data\n");
    assert_eq!(
        (piped.code, piped.stdout.as_str()),
        (0, "data\n"),
        "{piped:?}"
    );
    // A pseudo-terminal drives `cctl run -t` and `cctl exec -t` through
    // script(1). The terminal is opened in the container's own devpts, so
    // the container can name it and its /dev/pts lists it (Podman:
    // `/dev/pts/0`); an exec's is in the same devpts as the container's.
    world.detach("shell", &["-t"], &["sh"]);
    let cctl = env!("CARGO_BIN_EXE_cctl");
    let probe =
        "test -t 0 && test -t 1 && echo is-a-tty; echo name=$(tty); echo pts=$(ls /dev/pts)";
    let inner = format!(
        "{cctl} run --rm -t {image} sh -c 'echo run:; {probe}; stty size'; \
         {cctl} exec -t shell sh -c 'echo exec:; {probe}'",
        image = world.image
    );
    let out = world
        .in_terminal(&inner)
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .output()
        .expect("script runs");
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (run, exec) = stdout.split_once("exec:").expect("both ran");
    assert!(run.contains("is-a-tty"), "{stdout}");
    assert!(
        run.contains("name=/dev/pts/0\npts=0 ptmx\n"),
        "run -t: {stdout}"
    );
    // The container's first process has /dev/pts/0; the exec gets the next.
    assert!(exec.contains("is-a-tty"), "{stdout}");
    assert!(
        exec.contains("name=/dev/pts/1\npts=0 1 ptmx\n"),
        "exec -t: {stdout}"
    );
    let rm = world.cctl(&["rm", "-f", "shell"]);
    assert_eq!(rm.code, 0, "{rm:?}");
}

#[test]
fn a_terminal_passes_its_size_resizes_and_ctrl_c() {
    let world = World::new();
    // tests/support/drive_tty.py: a pseudo-terminal of 30x100 runs `cctl
    // run FLAGS`, is resized to 40x120 once the container is ready, then
    // types Ctrl-C. The container's shell traps SIGWINCH (prints its size)
    // and SIGINT (says got-int, exits 130).
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/drive_tty.py");
    // -it: the keys go to the container's terminal, whose line discipline
    // makes Ctrl-C a SIGINT; -t: cctl's terminal stays cooked and cctl
    // forwards the SIGINT it gets.
    for flags in ["-it", "-t"] {
        let out = world
            .netns
            .command("python3")
            .args([driver, env!("CARGO_BIN_EXE_cctl"), &world.image, flags])
            .env("CZ_ROOT", world.root.path())
            .stdin(Stdio::null())
            .output()
            .expect("python3 runs the terminal driver");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{flags}: {shown} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            shown.contains("30 100"),
            "{flags}: the starting size: {shown}"
        );
        assert!(
            shown.contains("40 120"),
            "{flags}: the size after SIGWINCH: {shown}"
        );
        assert!(
            shown.contains("got-int"),
            "{flags}: SIGINT reached the shell: {shown}"
        );
        assert!(shown.trim_end().ends_with("exit=130"), "{flags}: {shown}");
    }
    assert!(world.container_folders().is_empty(), "--rm left state");
}

#[test]
fn containers_reach_each_other_the_host_and_published_ports() {
    let world = World::new();
    world.detach("a", &[], &["sleep", "300"]);
    world.detach(
        "b",
        &["-p", "18080:80"],
        &[
            "sh",
            "-c",
            "while true; do echo hello from b | nc -l -p 80; done",
        ],
    );
    let a = world.inspect("a")["NetworkSettings"]["IPAddress"]
        .as_str()
        .expect("a has an address")
        .to_owned();
    let b = world.inspect("b")["NetworkSettings"]["IPAddress"]
        .as_str()
        .expect("b has an address")
        .to_owned();
    assert_ne!(a, b);
    let ping = world.cctl(&["exec", "a", "ping", "-c", "1", "-W", "5", &b]);
    assert_eq!(ping.code, 0, "a pings b: {ping:?}");
    // The gateway is the bridge's address in the namespace; a TCP server there.
    let network = world.cctl(&["network", "inspect", "default"]);
    let bridge: serde_json::Value = serde_json::from_str(&network.stdout).expect("network JSON");
    let bridge = bridge["network"]["bridge"]
        .as_str()
        .expect("a bridge")
        .to_owned();
    let gateway = world
        .netns
        .exec(&["ip", "-4", "-o", "addr", "show", &bridge])
        .expect("bridge address");
    let gateway = gateway
        .split_whitespace()
        .nth(3)
        .and_then(|cidr| cidr.split('/').next())
        .expect("gateway address")
        .to_owned();
    let script = format!(
        "import socket\ns = socket.socket()\ns.bind(('{gateway}', 17000))\ns.listen(1)\n\
         print('ready', flush=True)\nc, _ = s.accept()\nc.sendall(b'hello from the host\\n')\nc.close()\n"
    );
    let mut server = world
        .netns
        .command("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("server");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().expect("server stdout")),
        &mut ready,
    )
    .expect("server ready");
    assert_eq!(ready, "ready\n");
    let reach = world.cctl(&["exec", "a", "nc", &gateway, "17000"]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(reach.stdout, "hello from the host\n", "{reach:?}");
    // The published port, from the host side.
    let mut answer = String::new();
    for _ in 0..50 {
        let got = world
            .netns
            .exec(&["busybox", "nc", "-w", "2", &gateway, "18080"])
            .unwrap_or_default();
        if !got.is_empty() {
            answer = got;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(answer, "hello from b\n");
    // A port already published is refused with 125.
    let again = world.run(&["-p", "18080:81"], &["true"]);
    assert_eq!(again.code, 125, "{again:?}");
    assert!(again.stderr.contains("18080"), "{again:?}");
    for name in ["a", "b"] {
        let rm = world.cctl(&["rm", "-f", name]);
        assert_eq!(rm.code, 0, "{rm:?}");
    }
    assert!(world.container_folders().is_empty());
    assert_eq!(world.leases(), 0, "rm -f released the leases");
}

#[test]
fn writes_stay_in_their_container_and_read_only_refuses_them() {
    let world = World::new();
    world.detach("writer", &[], &["sh", "-c", "echo mine > /data; sleep 300"]);
    let base_dir = world.root.path().join("rootfs");
    let hash_bases = || {
        let mut sums = Vec::new();
        for entry in std::fs::read_dir(&base_dir)
            .expect("rootfs cache")
            .flatten()
        {
            if entry.path().extension().is_some_and(|e| e == "ext4") {
                let out = std::process::Command::new("sha256sum")
                    .arg(entry.path())
                    .output()
                    .expect("sha256sum");
                sums.push(String::from_utf8_lossy(&out.stdout).into_owned());
            }
        }
        sums
    };
    let before = hash_bases();
    assert!(!before.is_empty(), "a base image is cached");
    let mut seen = String::new();
    for _ in 0..50 {
        seen = world.cctl(&["exec", "writer", "cat", "/data"]).stdout;
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen, "mine\n");
    let other = world.run(&[], &["cat", "/data"]);
    assert_ne!(other.code, 0, "another container sees no /data: {other:?}");
    let ro = world.run(&["--read-only"], &["touch", "/x"]);
    assert_ne!(ro.code, 0, "{ro:?}");
    assert!(ro.stderr.contains("Read-only file system"), "{ro:?}");
    let ro_read = world.run(&["--read-only"], &["cat", "/etc/passwd"]);
    assert_eq!(ro_read.code, 0, "{ro_read:?}");
    assert_eq!(world.cctl(&["rm", "-f", "writer"]).code, 0);
    assert_eq!(hash_bases(), before, "the base never changes");
}

#[test]
fn detached_containers_log_exec_stop_and_remove() {
    let world = World::new();
    world.detach(
        "d",
        &[],
        &[
            "sh",
            "-c",
            "echo started; echo oops >&2; sleep 1; echo later; trap 'echo bye; exit 0' TERM; \
          while true; do sleep 1; done",
        ],
    );
    // The two streams are copied apart: wait until both have arrived.
    let mut logs = world.cctl(&["logs", "d"]);
    for _ in 0..50 {
        if logs.stdout.contains("later") && logs.stderr.contains("oops") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        logs = world.cctl(&["logs", "d"]);
    }
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("started\nlater\n", "oops\n")
    );
    let last = world.cctl(&["logs", "--tail", "1", "d"]);
    assert_eq!(
        (last.stdout.as_str(), last.stderr.as_str()),
        ("later\n", ""),
        "{last:?}"
    );
    let ls = world.cctl(&["ls"]);
    assert!(
        ls.stdout.contains(" d\n") && ls.stdout.contains("Up "),
        "{ls:?}"
    );
    let exec = world.cctl(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "d",
        "sh",
        "-c",
        "echo $X; pwd",
    ]);
    assert_eq!(
        (exec.code, exec.stdout.as_str()),
        (0, "1\n/tmp\n"),
        "{exec:?}"
    );
    let failing = world.cctl(&["exec", "d", "sh", "-c", "exit 7"]);
    assert_eq!(failing.code, 7);
    let stats = world.cctl(&["stats", "--no-stream", "d"]);
    assert_eq!(stats.code, 0, "{stats:?}");
    assert!(stats.stdout.contains(" d "), "{stats:?}");
    let stop = world.cctl(&["stop", "d"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    let state = world.inspect("d");
    assert_eq!(state["State"]["Status"], "exited", "{state}");
    assert_eq!(state["State"]["ExitCode"], 0, "the trap ran: {state}");
    assert!(world.cctl(&["logs", "d"]).stdout.ends_with("bye\n"));
    let ls_all = world.cctl(&["ls", "-a"]);
    assert!(ls_all.stdout.contains("Exited (0)"), "{ls_all:?}");
    assert!(!world.cctl(&["ls"]).stdout.contains(" d\n"));
    // Started again, it runs again; removed, it is gone with its lease.
    assert_eq!(world.cctl(&["start", "d"]).code, 0);
    assert!(world.cctl(&["ls"]).stdout.contains(" d\n"));
    assert_ne!(
        world.cctl(&["rm", "d"]).code,
        0,
        "a running container needs -f"
    );
    assert_eq!(world.cctl(&["rm", "-f", "d"]).code, 0);
    assert!(world.container_folders().is_empty());
    assert_eq!(world.leases(), 0);
    world.assert_taps_idle();
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds fit")
}

#[test]
fn sigkill_of_a_foreground_run_takes_its_vm_and_dates_its_end() {
    let world = World::new();
    let mut child = world
        .command(&["run", "--name", "victim", &world.image, "sleep", "300"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cctl run");
    let id = world.id_once_running("victim");
    let short = &id[..16];
    assert!(!qemu_with(short).is_empty(), "its QEMU runs");
    // `ip netns exec` executes cctl in its own process: this is cctl.
    let killed = now_ms();
    child.kill().expect("SIGKILL cctl run");
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !qemu_with(short).is_empty() {
        assert!(Instant::now() < deadline, "QEMU outlived cctl run");
        std::thread::sleep(Duration::from_millis(100));
    }
    // No command runs for a while; the next one notices the dead owner. The
    // container ended when its owner (and its VM) died, not when noticed.
    std::thread::sleep(Duration::from_secs(4));
    let state = world.inspect("victim");
    assert_eq!(state["State"]["Running"], false, "{state}");
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(world.containers_dir().join(&id).join("state.json"))
            .expect("state.json"),
    )
    .expect("state JSON");
    let finished = recorded["finished_ms"].as_u64().expect("an end time");
    assert!(
        finished.abs_diff(killed) <= 2000,
        "ended at {finished}; its owner was killed at {killed}"
    );
    assert_eq!(world.cctl(&["rm", "victim"]).code, 0);
    assert_eq!(world.leases(), 0);
}

#[test]
fn five_containers_start_at_once() {
    let world = World::new();
    let children: Vec<_> = (0..5)
        .map(|n| {
            world
                .command(&[
                    "run",
                    "--rm",
                    &world.image,
                    "echo",
                    &format!("container {n}"),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cctl run")
        })
        .collect();
    for (n, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("cctl ends");
        assert!(
            out.status.success(),
            "{n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("container {n}\n")
        );
    }
    assert!(world.container_folders().is_empty());
    assert_eq!(world.leases(), 0);
    world.assert_taps_idle();
}

#[test]
fn an_oom_kill_exits_137_and_inspect_says_so() {
    let world = World::new();
    let ran = world.cctl(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "64m",
        &world.image,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        // One allocation larger than the 256 MiB VMs once were: the guest
        // kernel's overcommit heuristic refused it ("dd: out of memory",
        // exit 1); Docker's host lets it reach the cgroup limit.
        "bs=300M",
        "count=1",
    ]);
    assert_eq!(ran.code, 137, "{ran:?}");
    let state = world.inspect("hog");
    assert_eq!(state["State"]["OOMKilled"], true, "{state}");
    assert_eq!(state["State"]["ExitCode"], 137, "{state}");
    assert_eq!(world.cctl(&["rm", "hog"]).code, 0);
}

/// `MemTotal` of the host, in bytes.
fn host_memory_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .expect("MemTotal in /proc/meminfo")
        * 1024
}

#[test]
fn a_container_sees_every_cpu_has_room_and_dockers_limits() {
    let world = World::new();
    // One VM: CPUs, the highest CPU number the kernel supports, the process
    // and open-file limits, then one 400 MiB buffer (busybox `dd` allocates
    // its block at once and fills it).
    let ran = world.run(
        &[],
        &[
            "sh",
            "-c",
            "nproc; cat /sys/devices/system/cpu/kernel_max; ulimit -u; ulimit -n; \
             dd if=/dev/zero of=/dev/null bs=400M count=1 2>&1 && echo allocated",
        ],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let host_cpus = std::thread::available_parallelism().unwrap().get();
    let kernel_cpus = lines[1].parse::<usize>().unwrap() + 1;
    assert_eq!(
        lines[0],
        host_cpus.min(kernel_cpus).to_string(),
        "every host CPU, as Docker shows: {ran:?}"
    );
    assert_eq!(lines[2], "unlimited", "Docker's RLIMIT_NPROC: {ran:?}");
    assert_eq!(lines[3], "1048576", "Docker's RLIMIT_NOFILE: {ran:?}");
    assert_eq!(lines.last(), Some(&"allocated"), "{ran:?}");
}

#[test]
fn bad_input_exits_125_with_a_clear_error() {
    let world = World::new();
    let unknown = world.cctl(&["run", "--rm", "--pull", "never", "nosuch/image:1", "true"]);
    assert_eq!(unknown.code, 125, "{unknown:?}");
    assert!(unknown.stderr.contains("nosuch/image"), "{unknown:?}");
    let missing = world.cctl_on_host(&[
        "run",
        "--rm",
        "--network",
        "none",
        &format!("{}/nosuch/image:1", world.registry.host()),
        "true",
    ]);
    assert_eq!(missing.code, 125, "{missing:?}");
    let network = world.run(&["--network", "nonet"], &["true"]);
    assert_eq!(network.code, 125, "{network:?}");
    assert!(network.stderr.contains("nonet"), "{network:?}");
    let memory = world.run(&["--memory", "1k"], &["true"]);
    assert_eq!(memory.code, 125, "{memory:?}");
    assert!(memory.stderr.contains("memory"), "{memory:?}");
    // More than the host has: its VM could not boot (Docker accepts it).
    let host_gib = host_memory_bytes() >> 30;
    let beyond = format!("{}g", host_gib + 2);
    let huge = world.run(&["--memory", &beyond], &["true"]);
    assert_eq!(huge.code, 125, "{huge:?}");
    assert!(
        huge.stderr.contains(&format!("this host has {host_gib}.")),
        "names the host's memory: {huge:?}"
    );
    let nothing = world.cctl(&["logs", "nosuch"]);
    assert_eq!(
        nothing.code, 1,
        "Docker's code outside run, create and exec"
    );
    assert!(
        nothing.stderr.contains("no such container: nosuch"),
        "{nothing:?}"
    );
    assert!(
        world.container_folders().is_empty(),
        "nothing made on refusal"
    );
}

#[test]
fn space_freed_in_the_guest_returns_to_the_host() {
    let world = World::new();
    world.detach("filler", &[], &["sleep", "300"]);
    let id = world.inspect("filler")["Id"].as_str().unwrap().to_owned();
    let disk = world.containers_dir().join(&id).join("disk");
    let allocated_mib = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&disk).unwrap().blocks() * 512 / (1 << 20)
    };
    let empty = allocated_mib();
    let fill = world.cctl(&[
        "exec",
        "filler",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/big bs=1M count=64 2>/dev/null && sync",
    ]);
    assert_eq!(fill.code, 0, "{fill:?}");
    let full = allocated_mib();
    assert!(full >= empty + 60, "64 MiB written: {empty} -> {full} MiB");
    let free = world.cctl(&["exec", "filler", "sh", "-c", "rm /big && sync"]);
    assert_eq!(free.code, 0, "{free:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while allocated_mib() > empty + 16 {
        assert!(
            Instant::now() < deadline,
            "the disk kept its space: {empty} -> {full} -> {} MiB",
            allocated_mib()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(world.cctl(&["rm", "-f", "filler"]).code, 0);
}

#[test]
fn containers_restored_from_a_template_get_their_own_randomness_clock_and_mac() {
    let world = World::new();
    containerization_testkit::own_templates(world.root.path()).expect("own templates");
    let probe = [
        "sh",
        "-c",
        "cat /proc/sys/kernel/random/uuid; date +%s; cat /sys/class/net/eth0/address",
    ];
    let lines = |ran: &support::Ran| -> Vec<String> {
        assert_eq!(ran.code, 0, "{ran:?}");
        ran.stdout.lines().map(str::to_owned).collect()
    };
    // The first run builds the template; both runs are restored from it.
    let first = lines(&world.run(&[], &probe));
    let second = lines(&world.run(&[], &probe));
    let templates: Vec<_> = std::fs::read_dir(world.root.path().join("templates"))
        .expect("a templates folder")
        .flatten()
        .filter(|e| e.path().join("state").is_file())
        .collect();
    assert_eq!(templates.len(), 1, "one template, reused");
    assert_ne!(first[0], second[0], "the random generator was reseeded");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for run in [&first, &second] {
        let guest: u64 = run[1].parse().expect("date +%s");
        assert!(now.abs_diff(guest) < 120, "guest clock {guest}, host {now}");
    }
    assert_ne!(first[2], second[2], "each container has its own MAC");
    // With templates off, a container boots as before.
    let booted = world
        .command(&["run", "--rm", &world.image, "echo", "booted"])
        .env("CZ_VM_TEMPLATES", "0")
        .output()
        .expect("cctl runs");
    assert_eq!(String::from_utf8_lossy(&booted.stdout), "booted\n");
}

//! The container launcher, end to end on this host: vminitd runs as an
//! ordinary process on a unix socket, and each test's containers run on the
//! busybox fixture unpacked by umoci, with new namespaces, `pivot_root`,
//! capabilities, seccomp and the rest applied by the launcher.

mod support;

use std::time::Duration;

use containerization_agent::AgentError;
use containerization_agent::proto::v1::{
    CreateProcessRequest, ExecSpec, create_process_request::Isolation,
};
use serde_json::json;
use support::{HostAgent, busybox_rootfs, container_request, create, run_request, spec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An agent and a fresh busybox rootfs.
async fn setup() -> (HostAgent, std::path::PathBuf) {
    let agent = HostAgent::start().await;
    let rootfs = busybox_rootfs(agent.dir.path());
    (agent, rootfs)
}

/// Runs `script` with `sh -c` in a new container made from `spec`.
async fn sh(
    agent: &HostAgent,
    rootfs: &std::path::Path,
    id: &str,
    mut spec: serde_json::Value,
    script: &str,
) -> support::Outcome {
    spec["process"]["args"] = json!(["sh", "-c", script]);
    run_request(agent, container_request(id, &spec, rootfs), b"").await
}

/// Reads `stream` until `needle` shows (10 s at most); returns what came.
async fn read_until(stream: &mut tokio::net::UnixStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "waited for {needle:?}; got {:?}",
                    String::from_utf8_lossy(&seen)
                )
            })
            .expect("read");
        assert!(
            n > 0,
            "stream ended before {needle:?}: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn echo_exit_codes_and_separate_streams() {
    let (agent, rootfs) = setup().await;
    let out = sh(&agent, &rootfs, "echo", spec(&[]), "echo out; echo err >&2").await;
    assert_eq!(
        (out.out().as_str(), out.err().as_str(), out.code),
        ("out\n", "err\n", Some(0))
    );
    let out = sh(&agent, &rootfs, "three", spec(&[]), "exit 3").await;
    assert_eq!(out.code, Some(3));
    // The container sees its own root, hostname and PID namespace.
    let out = sh(
        &agent,
        &rootfs,
        "view",
        spec(&[]),
        "hostname; echo $$; ls /",
    )
    .await;
    let text = out.out();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["box", "1"], "{text}");
    assert!(
        lines.contains(&"linuxrc"),
        "not the busybox root: {lines:?}"
    );
}

#[tokio::test]
async fn env_cwd_and_user_are_honoured() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["process"]["env"] = json!(["GREETING=hi", "PATH=/bin:/sbin"]);
    s["process"]["cwd"] = json!("/work/made");
    s["process"]["user"] = json!({"uid": 0, "gid": 0, "username": "nobody"});
    let out = sh(
        &agent,
        &rootfs,
        "who",
        s,
        "echo $GREETING; pwd; id -u; id -g; echo $HOME",
    )
    .await;
    assert_eq!(
        out.out(),
        "hi\n/work/made\n65534\n65534\n/nonexistent\n",
        "{}",
        out.err()
    );
    let mut s = spec(&[]);
    s["process"]["user"] = json!({"uid": 1234, "gid": 4321, "additionalGids": [77]});
    let out = sh(&agent, &rootfs, "numeric", s, "id -u; id -g; id -G").await;
    assert_eq!(out.out(), "1234\n4321\n4321 77\n", "{}", out.err());
}

#[tokio::test]
async fn sysctls_umask_and_a_read_only_root() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    s["process"]["user"]["umask"] = json!(0o077);
    s["root"]["readonly"] = json!(true);
    let out = sh(
        &agent,
        &rootfs,
        "settings",
        s,
        "cat /proc/sys/net/ipv4/ip_forward; umask; touch /x 2>/dev/null || echo ro; \
         touch /dev/shm/x && echo shm-writable",
    )
    .await;
    assert_eq!(out.out(), "1\n0077\nro\nshm-writable\n", "{}", out.err());
}

#[tokio::test]
async fn stdin_goes_through_cat() {
    let (agent, rootfs) = setup().await;
    let request = container_request("cat", &spec(&["cat"]), &rootfs);
    let out = run_request(&agent, request, b"piped through").await;
    assert_eq!(
        (out.stdout.as_slice(), out.code),
        (&b"piped through"[..], Some(0))
    );
}

#[tokio::test]
async fn one_gibibyte_of_stdout_arrives_intact() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["process"]["args"] = json!(["sh", "-c", "yes abcdefg | head -c 1073741824"]);
    let mut io = create(&agent, container_request("big", &s, &rootfs), false).await;
    agent.client.start_process("big").await.unwrap();
    drop(io.stdin);
    // Every byte is checked against the pattern "abcdefg\n", by offset.
    let pattern: Vec<u8> = b"abcdefg\n"
        .iter()
        .copied()
        .cycle()
        .take((1 << 16) + 8)
        .collect();
    let mut buf = vec![0u8; 1 << 16];
    let mut total: usize = 0;
    loop {
        let n = io.stdout.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        let at = total % 8;
        assert!(
            buf[..n] == pattern[at..at + n],
            "corrupt data near byte {total}"
        );
        total += n;
    }
    assert_eq!(total, 1 << 30);
    let status = agent.client.wait_process("big").await.unwrap();
    assert_eq!(status.exit_code, Some(0));
}

#[tokio::test]
async fn sigkill_and_chosen_signals_are_delivered() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["process"]["args"] = json!(["sleep", "100"]);
    let _io = create(&agent, container_request("sleeper", &s, &rootfs), false).await;
    agent.client.start_process("sleeper").await.unwrap();
    agent.client.kill_process("sleeper", 9).await.unwrap();
    let status = agent.client.wait_process("sleeper").await.unwrap();
    // A shell reports this as 137 (128 + 9).
    assert_eq!((status.exit_code, status.signal), (None, Some(9)));

    s["process"]["args"] = json!([
        "sh",
        "-c",
        "trap 'echo got USR1; exit 7' USR1; echo ready; while true; do sleep 0.1; done"
    ]);
    let mut io = create(&agent, container_request("trapper", &s, &rootfs), false).await;
    agent.client.start_process("trapper").await.unwrap();
    read_until(&mut io.stdout, "ready").await;
    agent.client.kill_process("trapper", 10).await.unwrap();
    let rest = read_until(&mut io.stdout, "got USR1").await;
    assert!(rest.contains("got USR1"));
    let status = agent.client.wait_process("trapper").await.unwrap();
    assert_eq!(status.exit_code, Some(7));
}

#[tokio::test]
async fn terminal_is_a_tty_and_resizes() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["process"]["terminal"] = json!(true);
    s["process"]["args"] = json!([
        "sh",
        "-c",
        "test -t 0 && echo tty; echo name=$(tty); ls -1 /dev/pts; stty size; read line; stty size"
    ]);
    let mut io = create(&agent, container_request("tty", &s, &rootfs), true).await;
    agent.client.start_process("tty").await.unwrap();
    let mut seen = read_until(&mut io.stdout, "24 80").await;
    agent.client.resize_process("tty", 40, 100).await.unwrap();
    io.stdin.write_all(b"go\n").await.unwrap();
    let mut rest = Vec::new();
    io.stdout.read_to_end(&mut rest).await.unwrap();
    seen.push_str(&String::from_utf8_lossy(&rest));
    assert!(seen.contains("tty\r\n"), "{seen:?}");
    // The terminal is in the container's own devpts: it can name it, and
    // its /dev/pts lists it (it held only ptmx when vminitd's devpts had it).
    assert!(seen.contains("name=/dev/pts/0\r\n"), "{seen:?}");
    assert!(seen.contains("\r\n0\r\nptmx\r\n"), "{seen:?}");
    assert!(seen.contains("40 100"), "{seen:?}");
    let status = agent.client.wait_process("tty").await.unwrap();
    assert_eq!(status.exit_code, Some(0));
}

#[tokio::test]
async fn exec_joins_the_running_containers_namespaces() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["process"]["args"] = json!([
        "sh",
        "-c",
        "echo here > /tmp/marker; echo ready; exec sleep 1000"
    ]);
    let mut io = create(&agent, container_request("box", &s, &rootfs), false).await;
    agent.client.start_process("box").await.unwrap();
    read_until(&mut io.stdout, "ready").await;
    let process = json!({
        "args": ["sh", "-c", "cat /tmp/marker; tr '\\0' ' ' < /proc/1/cmdline; echo; hostname"],
        "cwd": "/tmp",
        "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"]
    });
    let request = CreateProcessRequest {
        id: "exec".into(),
        isolation: Some(Isolation::Exec(ExecSpec {
            container_id: "box".into(),
            oci_process: serde_json::to_vec(&process).unwrap(),
        })),
        ..Default::default()
    };
    let out = run_request(&agent, request, b"").await;
    assert_eq!(out.out(), "here\nsleep 1000 \nbox\n", "{}", out.err());
    assert_eq!(out.code, Some(0));
    // An exec with a terminal gets one as its controlling terminal.
    let process = json!({
        "args": ["sh", "-c", "test -t 0 && echo tty; echo $$; tty; ls -1 /dev/pts"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "terminal": true
    });
    let request = CreateProcessRequest {
        id: "exec-tty".into(),
        isolation: Some(Isolation::Exec(ExecSpec {
            container_id: "box".into(),
            oci_process: serde_json::to_vec(&process).unwrap(),
        })),
        ..Default::default()
    };
    let mut io = create(&agent, request, true).await;
    agent.client.start_process("exec-tty").await.unwrap();
    let mut text = Vec::new();
    io.stdout.read_to_end(&mut text).await.unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("tty\r\n"), "{text:?}");
    // Not PID 1: that is the container's own process.
    assert!(!text.contains("\n1\r"), "{text:?}");
    // Its terminal is in the container's devpts (the container has none).
    assert!(text.contains("\n/dev/pts/0\r\n0\r\nptmx\r\n"), "{text:?}");
    let status = agent.client.wait_process("exec-tty").await.unwrap();
    assert_eq!(status.exit_code, Some(0));
    agent.client.kill_process("box", 9).await.unwrap();
    agent.client.wait_process("box").await.unwrap();
}

#[tokio::test]
async fn masked_paths_capabilities_and_no_new_privs() {
    let (agent, rootfs) = setup().await;
    let out = sh(
        &agent,
        &rootfs,
        "masked",
        spec(&[]),
        "wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
         echo x > /proc/sys/kernel/domainname 2>/dev/null || echo ro",
    )
    .await;
    assert_eq!(out.out(), "0\n0\n0\nro\n", "{}", out.err());
    // Without the masks the same files have content: the mask hid it.
    let mut s = spec(&[]);
    s["linux"]["maskedPaths"] = json!([]);
    s["linux"]["readonlyPaths"] = json!([]);
    let out = sh(
        &agent,
        &rootfs,
        "unmasked",
        s,
        "[ $(wc -c < /proc/timer_list) -gt 0 ] && echo full",
    )
    .await;
    assert_eq!(out.out(), "full\n", "{}", out.err());

    let out = sh(
        &agent,
        &rootfs,
        "noadmin",
        spec(&[]),
        "ip link add v0 type veth peer name v1",
    )
    .await;
    assert_ne!(
        out.code,
        Some(0),
        "ip link add worked without CAP_NET_ADMIN"
    );
    assert!(out.err().contains("not permitted"), "{}", out.err());
    // The same with CAP_NET_ADMIN works, in the container's own network.
    let mut s = spec(&[]);
    let caps = json!(["CAP_NET_ADMIN"]);
    s["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
    let out = sh(
        &agent,
        &rootfs,
        "admin",
        s,
        "ip link add v0 type veth peer name v1",
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.err());

    let out = sh(
        &agent,
        &rootfs,
        "nnp",
        spec(&[]),
        "grep NoNewPrivs /proc/self/status",
    )
    .await;
    assert_eq!(out.out(), "NoNewPrivs:\t1\n");
    let mut s = spec(&[]);
    s["process"]["noNewPrivileges"] = json!(false);
    let out = sh(
        &agent,
        &rootfs,
        "privs",
        s,
        "grep NoNewPrivs /proc/self/status",
    )
    .await;
    assert_eq!(out.out(), "NoNewPrivs:\t0\n");
}

#[tokio::test]
async fn seccomp_blocks_a_denied_call_unless_disabled() {
    let (agent, rootfs) = setup().await;
    // Creating a user namespace needs no capability, but the default profile
    // denies unshare(2) to containers without CAP_SYS_ADMIN.
    let out = sh(&agent, &rootfs, "denied", spec(&[]), "unshare -U true").await;
    assert_ne!(
        out.code,
        Some(0),
        "unshare worked under the default profile"
    );
    assert!(out.err().contains("not permitted"), "{}", out.err());
    let mut s = spec(&[]);
    s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW"});
    let out = sh(&agent, &rootfs, "allowed", s, "unshare -U true").await;
    assert_eq!(out.code, Some(0), "{}", out.err());
}

#[tokio::test]
async fn rlimits_are_applied() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]);
    let out = sh(&agent, &rootfs, "limits", s, "ulimit -n; ulimit -Hn").await;
    assert_eq!(out.out(), "512\n1024\n", "{}", out.err());
}

#[tokio::test]
async fn a_hundred_containers_at_once_leave_no_zombies() {
    let (agent, rootfs) = setup().await;
    let agent = std::sync::Arc::new(agent);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let agent = std::sync::Arc::clone(&agent);
        let rootfs = rootfs.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("c{i}");
            let mut s = spec(&[]);
            s["process"]["args"] = json!(["sh", "-c", format!("exit {}", i % 7)]);
            let client = &agent.client;
            client
                .create_process(container_request(&id, &s, &rootfs))
                .await
                .unwrap();
            client.start_process(&id).await.unwrap();
            let status = client.wait_process(&id).await.unwrap();
            assert_eq!(status.exit_code, Some(i % 7));
            client.delete_process(&id).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Launchers and container processes are all reaped.
    let mut children = agent.children();
    for _ in 0..50 {
        if children.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        children = agent.children();
    }
    assert_eq!(children, "", "children left");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["process"]["args"] = json!(5);
    let err = agent
        .client
        .create_process(container_request("bad", &s, &rootfs))
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("process.args"), "{err}");

    let missing = rootfs.join("nope");
    let err = agent
        .client
        .create_process(container_request("norootfs", &spec(&["true"]), &missing))
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no such directory"), "{err}");

    let _io = create(
        &agent,
        container_request("nope", &spec(&["/bin/nope"]), &rootfs),
        false,
    )
    .await;
    let err = agent.client.start_process("nope").await.unwrap_err();
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("exec /bin/nope: no such file or directory"),
        "{err}"
    );
    let err = agent.client.start_process("nope").await.unwrap_err();
    assert!(err.to_string().contains("already started"), "{err}");

    let _io = create(
        &agent,
        container_request("twice", &spec(&["sleep", "100"]), &rootfs),
        false,
    )
    .await;
    agent.client.start_process("twice").await.unwrap();
    let err = agent.client.start_process("twice").await.unwrap_err();
    assert!(err.to_string().contains("already started"), "{err}");
    agent.client.kill_process("twice", 9).await.unwrap();
    agent.client.wait_process("twice").await.unwrap();
}

#[tokio::test]
async fn statistics_come_from_the_containers_cgroup() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["process"]["args"] = json!([
        "sh",
        "-c",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ready; sleep 100"
    ]);
    let mut io = create(&agent, container_request("busy", &s, &rootfs), false).await;
    agent.client.start_process("busy").await.unwrap();
    read_until(&mut io.stdout, "ready").await;
    let stats = agent.client.container_statistics("busy").await.unwrap();
    assert!(stats.available, "{stats:?}");
    assert!(stats.cpu_usage_usec > 0, "{stats:?}");
    agent.client.kill_process("busy", 9).await.unwrap();
    agent.client.wait_process("busy").await.unwrap();
    let err = agent
        .client
        .container_statistics("nobody")
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn the_specs_seccomp_profile_is_enforced() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&[]);
    s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    ]});
    let out = sh(
        &agent,
        &rootfs,
        "nomkdir",
        s,
        "mkdir /tmp/x; echo $?; touch /tmp/y && echo touched",
    )
    .await;
    assert!(out.err().contains("not implemented"), "{}", out.err());
    assert_eq!(out.out(), "1\ntouched\n", "{}", out.err());
}

#[tokio::test]
async fn an_unsupported_seccomp_profile_is_refused_at_create() {
    let (agent, rootfs) = setup().await;
    let mut s = spec(&["true"]);
    s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}
    ]});
    let err = agent
        .client
        .create_process(container_request("sc", &s, &rootfs))
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("linux.seccomp"), "{err}");
}

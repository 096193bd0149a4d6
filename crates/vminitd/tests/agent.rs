//! The agent's protocol, end to end: vminitd runs on this host as an ordinary
//! process serving a unix socket, and the real client drives it.
//!
//! These tests run plain host programs (`sh`, `cat`) without container
//! isolation; `container.rs` tests the launcher.

mod support;

use std::time::Duration;

use containerization_agent::AgentError;
use containerization_agent::proto::v1::CreateProcessRequest;
use support::{HostAgent, streams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `args` with `input` on stdin; returns (stdout, stderr, exit code, signal).
async fn run(
    agent: &HostAgent,
    id: &str,
    args: &[&str],
    env: &[&str],
    input: &[u8],
) -> (Vec<u8>, Vec<u8>, Option<i32>, Option<i32>) {
    let s = streams(agent, id, false);
    let request = CreateProcessRequest {
        id: id.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env.iter().map(|a| a.to_string()).collect(),
        cwd: String::new(),
        stdio: Some(s.stdio),
        isolation: None,
    };
    let client = agent.client.clone();
    let create = tokio::spawn(async move { client.create_process(request).await });
    let (mut stdin, _) = s.stdin.accept().await.expect("stdin dialled");
    let (mut stdout, _) = s.stdout.accept().await.expect("stdout dialled");
    let (mut stderr, _) = s.stderr.accept().await.expect("stderr dialled");
    create.await.expect("join").expect("create_process");
    agent.client.start_process(id).await.expect("start_process");
    stdin.write_all(input).await.expect("write stdin");
    stdin.shutdown().await.expect("close stdin");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    a.expect("read stdout");
    b.expect("read stderr");
    let status = agent.client.wait_process(id).await.expect("wait_process");
    agent
        .client
        .delete_process(id)
        .await
        .expect("delete_process");
    (out, err, status.exit_code, status.signal)
}

#[tokio::test]
async fn version_reports_the_host_kernel_when_not_pid1() {
    let agent = HostAgent::start().await;
    let version = agent.client.version().await.unwrap();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(version.release, release.trim());
    assert!(!version.pid1);
}

#[tokio::test]
async fn output_exit_codes_env_and_stdin() {
    let agent = HostAgent::start().await;
    let (out, err, code, _) = run(
        &agent,
        "echo",
        &["sh", "-c", "echo out; echo err >&2"],
        &[],
        b"",
    )
    .await;
    assert_eq!(
        (out.as_slice(), err.as_slice(), code),
        (&b"out\n"[..], &b"err\n"[..], Some(0))
    );
    let (_, _, code, _) = run(&agent, "three", &["sh", "-c", "exit 3"], &[], b"").await;
    assert_eq!(code, Some(3));
    let (out, _, _, _) = run(
        &agent,
        "env",
        &["sh", "-c", "echo $GREETING"],
        &["GREETING=hi"],
        b"",
    )
    .await;
    assert_eq!(out, b"hi\n");
    let (out, _, code, _) = run(&agent, "cat", &["cat"], &[], b"piped through").await;
    assert_eq!((out.as_slice(), code), (&b"piped through"[..], Some(0)));
}

#[tokio::test]
async fn large_output_arrives_intact() {
    let agent = HostAgent::start().await;
    // 64 MiB of a known pattern, counted and checked on arrival.
    let (out, _, code, _) = run(
        &agent,
        "big",
        &["sh", "-c", "head -c 67108864 /dev/zero | tr '\\0' 'x'"],
        &[],
        b"",
    )
    .await;
    assert_eq!(code, Some(0));
    assert_eq!(out.len(), 64 << 20);
    assert!(out.iter().all(|b| *b == b'x'));
}

#[tokio::test]
async fn kill_reports_the_signal() {
    let agent = HostAgent::start().await;
    let s = streams(&agent, "sleeper", false);
    let request = CreateProcessRequest {
        id: "sleeper".into(),
        args: vec!["sleep".into(), "100".into()],
        stdio: Some(s.stdio),
        ..Default::default()
    };
    let client = agent.client.clone();
    let create = tokio::spawn(async move { client.create_process(request).await });
    let _io = (
        s.stdin.accept().await.unwrap(),
        s.stdout.accept().await.unwrap(),
        s.stderr.accept().await.unwrap(),
    );
    create.await.unwrap().unwrap();
    agent.client.start_process("sleeper").await.unwrap();
    let err = agent.client.start_process("sleeper").await.unwrap_err();
    assert!(err.to_string().contains("already started"), "{err}");
    agent.client.kill_process("sleeper", 9).await.unwrap();
    let status = agent.client.wait_process("sleeper").await.unwrap();
    assert_eq!((status.exit_code, status.signal), (None, Some(9)));
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let agent = HostAgent::start().await;
    let request = CreateProcessRequest {
        id: "nope".into(),
        args: vec!["/bin/nope".into()],
        ..Default::default()
    };
    agent.client.create_process(request).await.unwrap();
    let err = agent.client.start_process("nope").await.unwrap_err();
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("exec /bin/nope: no such file or directory"),
        "{err}"
    );
    let empty = CreateProcessRequest {
        id: "empty".into(),
        ..Default::default()
    };
    let err = agent.client.create_process(empty).await.unwrap_err();
    assert!(err.to_string().contains("args is empty"), "{err}");
}

#[tokio::test]
async fn terminal_is_a_tty_and_resizes() {
    let agent = HostAgent::start().await;
    let s = streams(&agent, "tty", true);
    let request = CreateProcessRequest {
        id: "tty".into(),
        args: vec![
            "sh".into(),
            "-c".into(),
            "test -t 0 && echo tty; stty size; read line; stty size".into(),
        ],
        stdio: Some(s.stdio),
        ..Default::default()
    };
    let client = agent.client.clone();
    let create = tokio::spawn(async move { client.create_process(request).await });
    let (mut stdin, _) = s.stdin.accept().await.unwrap();
    let (mut stdout, _) = s.stdout.accept().await.unwrap();
    create.await.unwrap().unwrap();
    agent.client.start_process("tty").await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("24 80") {
        let n = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no terminal output: {:?}", String::from_utf8_lossy(&seen)))
            .unwrap();
        assert!(
            n > 0,
            "terminal closed early: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    agent.client.resize_process("tty", 40, 100).await.unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    stdout.read_to_end(&mut seen).await.unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("tty\r\n"), "{text:?}");
    assert!(text.contains("40 100"), "{text:?}");
    let status = agent.client.wait_process("tty").await.unwrap();
    assert_eq!(status.exit_code, Some(0));
}

#[tokio::test]
async fn many_processes_at_once_leave_no_zombies() {
    let agent = HostAgent::start().await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let client = agent.client.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("p{i}");
            let request = CreateProcessRequest {
                id: id.clone(),
                args: vec!["sh".into(), "-c".into(), format!("exit {}", i % 7)],
                ..Default::default()
            };
            client.create_process(request).await.unwrap();
            client.start_process(&id).await.unwrap();
            let status = client.wait_process(&id).await.unwrap();
            assert_eq!(status.exit_code, Some(i % 7));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let children = std::fs::read_to_string(format!(
        "/proc/{}/task/{}/children",
        agent.child.id(),
        agent.child.id()
    ))
    .unwrap();
    assert_eq!(children.trim(), "", "children left: {children}");
}

#[tokio::test]
async fn shutdown_ends_the_agent() {
    let mut agent = HostAgent::start().await;
    agent.client.shutdown().await.unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = agent.child.wait();
        (status, agent)
    })
    .await
    .unwrap()
    .0
    .unwrap();
    assert!(status.success(), "{status}");
}

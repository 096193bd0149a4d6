//! Copy in and out (tar streams over their own socket), and the DNS and
//! hosts files, through the agent on this host. The archives are made and
//! read by GNU tar and Python's tarfile, not by this project.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use containerization_agent::AgentError;
use containerization_agent::proto::v1::{
    ConfigureDnsRequest, ConfigureHostsRequest, CopyInRequest, CopyOutRequest, HostsEntry,
};
use support::{HostAgent, endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// A small tree: nested files, an executable, a symlink.
fn make_tree(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("a/b")).expect("test set-up");
    std::fs::write(root.join("a/b/hello.txt"), "hello\n").expect("test set-up");
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").expect("test set-up");
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750))
        .expect("test set-up");
    std::os::unix::fs::symlink("a/b/hello.txt", root.join("link")).expect("test set-up");
}

fn assert_same_tree(expected: &std::path::Path, got: &std::path::Path) {
    assert_eq!(
        std::fs::read_to_string(got.join("a/b/hello.txt")).expect("test set-up"),
        "hello\n"
    );
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .expect("test set-up")
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(&got.join("run.sh")), mode(&expected.join("run.sh")));
    assert_eq!(
        std::fs::read_link(got.join("link")).expect("test set-up"),
        std::path::Path::new("a/b/hello.txt")
    );
}

/// Serves `archive` on a socket the agent dials, and runs `copy_in`.
async fn copy_in(
    agent: &HostAgent,
    archive: Vec<u8>,
    destination: &std::path::Path,
) -> Result<u64, AgentError> {
    let socket = agent.path("copy-in.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("test set-up");
    let serve = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("test set-up");
        // The agent may stop reading early when it refuses an entry.
        let _ = stream.write_all(&archive).await;
        let _ = stream.shutdown().await;
    });
    let result = agent
        .client
        .copy_in(CopyInRequest {
            source: endpoint(&socket),
            destination: destination.display().to_string(),
            ..Default::default()
        })
        .await;
    serve.await.expect("test set-up");
    result
}

#[tokio::test]
async fn copy_in_unpacks_what_gnu_tar_made() {
    let agent = HostAgent::start().await;
    let source = agent.path("source");
    make_tree(&source);
    let archive = Command::new("tar")
        .arg("-C")
        .arg(&source)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(archive.status.success());
    let destination = agent.path("unpacked/here");
    let entries = copy_in(&agent, archive.stdout, &destination).await.unwrap();
    assert!(entries >= 6, "{entries} entries");
    assert_same_tree(&source, &destination);
}

#[tokio::test]
async fn copy_in_refuses_entries_that_climb_out() {
    let agent = HostAgent::start().await;
    let archive = agent.path("evil.tar");
    let script = format!(
        "import io, tarfile\n\
         t = tarfile.open('{}', 'w')\n\
         data = b'escaped'\n\
         info = tarfile.TarInfo('../escaped.txt'); info.size = len(data)\n\
         t.addfile(info, io.BytesIO(data)); t.close()\n",
        archive.display()
    );
    assert!(
        Command::new("python3")
            .args(["-c", &script])
            .status()
            .unwrap()
            .success()
    );
    let destination = agent.path("jail");
    let err = copy_in(&agent, std::fs::read(&archive).unwrap(), &destination)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("outside"), "{err}");
    assert!(!agent.path("escaped.txt").exists(), "the entry escaped");
}

#[tokio::test]
async fn copy_out_is_read_by_gnu_tar() {
    let agent = HostAgent::start().await;
    let source = agent.path("tree");
    make_tree(&source);
    let socket = agent.path("copy-out.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let receive = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut archive = Vec::new();
        stream.read_to_end(&mut archive).await.unwrap();
        archive
    });
    let bytes = agent
        .client
        .copy_out(CopyOutRequest {
            source: source.display().to_string(),
            destination: endpoint(&socket),
            ..Default::default()
        })
        .await
        .unwrap();
    let archive = receive.await.unwrap();
    assert_eq!(bytes, archive.len() as u64);
    let out = agent.path("extracted");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(agent.path("out.tar"), &archive).unwrap();
    let status = Command::new("tar")
        .arg("-C")
        .arg(&out)
        .arg("-xf")
        .arg(agent.path("out.tar"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_same_tree(&source, &out.join("tree"));

    let err = agent
        .client
        .copy_out(CopyOutRequest {
            source: agent.path("missing").display().to_string(),
            destination: endpoint(&socket),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn dns_and_hosts_files_are_written_under_a_root() {
    let agent = HostAgent::start().await;
    let root = agent.path("rootfs");
    agent
        .client
        .configure_dns(ConfigureDnsRequest {
            root: root.display().to_string(),
            nameservers: vec!["10.0.2.3".into()],
            search_domains: vec!["example.test".into()],
            options: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap(),
        "nameserver 10.0.2.3\nsearch example.test\n"
    );
    agent
        .client
        .configure_hosts(ConfigureHostsRequest {
            root: root.display().to_string(),
            localhost: true,
            entries: vec![HostsEntry {
                ip: "10.0.2.15".into(),
                hostnames: vec!["box".into()],
            }],
        })
        .await
        .unwrap();
    let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.ends_with("10.0.2.15\tbox\n"), "{hosts}");
    let err = agent
        .client
        .configure_dns(ConfigureDnsRequest {
            root: root.display().to_string(),
            nameservers: vec!["not-an-ip".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("nameservers"), "{err}");
}

//! `cctl image`, `cctl login` and `cctl logout` against a real registry:
//! the whole round trip, errors a user can act on, and a pull killed with
//! SIGKILL then run again.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use containerization_testkit::{Fixture, Registry, fixture};

fn cctl(root: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args(args)
        .env("CZ_ROOT", root)
        .env("DOCKER_CONFIG", root.join("no-docker"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cctl runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("cctl ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn login_pull_ls_inspect_tag_push_save_load_rm_logout() {
    let registry = Registry::basic_auth().expect("registry");
    let reference = registry
        .push(
            &fixture(Fixture::Busybox).expect("fixture"),
            "demo/busybox:1",
        )
        .expect("push");
    let host = registry.host();
    let root = tempfile::tempdir().expect("temp dir");
    let root = root.path();

    let (ok, _, stderr) = cctl(
        root,
        &["login", &host, "-u", "tester", "--password-stdin"],
        Some("wrong\n"),
    );
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "unauthorized: login to {host} failed: wrong user name or password"
        )),
        "{stderr}"
    );
    let password = format!("{}\n", Registry::test_credentials().password);
    let (ok, stdout, stderr) = cctl(
        root,
        &["login", &host, "-u", "tester", "--password-stdin"],
        Some(&password),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Login succeeded"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root.join("credentials.json"))
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let (ok, stdout, stderr) = cctl(root, &["image", "pull", &reference], None);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with(&format!("{reference} sha256:")),
        "{stdout}"
    );
    assert!(stderr.contains("done"), "plain progress lines: {stderr}");

    let (ok, stdout, _) = cctl(root, &["image", "ls", "--format", "json"], None);
    assert!(ok);
    // One object a line, in Docker's field names.
    let first: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["Name"], reference.as_str());
    assert_eq!(first["Platform"], "linux/amd64");

    let (ok, stdout, _) = cctl(root, &["image", "inspect", &reference], None);
    assert!(ok);
    let inspect: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(inspect["config"]["os"], "linux");

    let copy = format!("{host}/copies/busybox:2");
    let (ok, _, stderr) = cctl(root, &["image", "tag", &reference, &copy], None);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = cctl(root, &["image", "push", &copy], None);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with(&copy));
    assert_eq!(registry.tags("copies/busybox").expect("tags"), ["2"]);

    let archive = root.join("images.tar");
    let (ok, _, stderr) = cctl(
        root,
        &[
            "image",
            "save",
            &reference,
            "-o",
            archive.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(ok, "{stderr}");
    let other = tempfile::tempdir().expect("temp dir");
    let (ok, stdout, stderr) = cctl(
        other.path(),
        &["image", "load", "-i", archive.to_str().expect("utf-8")],
        None,
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("loaded {reference}")), "{stdout}");

    let (ok, stdout, stderr) = cctl(root, &["image", "rm", &reference, &copy], None);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("removed 3 blobs"), "{stdout}");

    let (ok, _, _) = cctl(root, &["logout", &host], None);
    assert!(ok);
    let (ok, _, stderr) = cctl(root, &["image", "pull", &reference], None);
    assert!(!ok);
    assert!(stderr.contains("run cctl login first"), "{stderr}");
}

#[test]
fn unknown_tags_and_missing_platforms_are_named() {
    let registry = Registry::anonymous().expect("registry");
    let reference = registry
        .push(
            &fixture(Fixture::MultiPlatform).expect("fixture"),
            "demo/busybox:1",
        )
        .expect("push");
    let root = tempfile::tempdir().expect("temp dir");
    let host = registry.host();
    let (ok, _, stderr) = cctl(
        root.path(),
        &["image", "pull", &format!("{host}/demo/busybox:nope")],
        None,
    );
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "manifest unknown: no tag 'nope' in {host}/demo/busybox"
        )),
        "{stderr}"
    );
    let (ok, _, stderr) = cctl(
        root.path(),
        &["image", "pull", "--platform", "linux/s390x", &reference],
        None,
    );
    assert!(!ok);
    assert!(
        stderr.contains("no linux/s390x image in this index; it has linux/amd64, linux/arm64"),
        "{stderr}"
    );
}

/// Forwards connections to `upstream`, sending answers back slowly.
fn slow_proxy(upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let mut buf = [0u8; 16 << 10];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
    });
    port
}

#[test]
fn a_pull_killed_midway_is_finished_by_the_next_pull() {
    let registry = Registry::anonymous().expect("registry");
    registry
        .push(
            &fixture(Fixture::Busybox).expect("fixture"),
            "demo/busybox:1",
        )
        .expect("push");
    let port = slow_proxy(registry.port());
    let reference = format!("127.0.0.1:{port}/demo/busybox:1");
    let root = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args(["image", "pull", &reference])
        .env("CZ_ROOT", root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cctl runs");
    // Wait until some of the layer is in the ingest folder, then SIGKILL.
    let ingest = root.path().join("ingest");
    let started = std::time::Instant::now();
    loop {
        let partial = std::fs::read_dir(&ingest)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().starts_with("sha256-")
                    && e.metadata().is_ok_and(|m| m.len() > 100_000)
            });
        if partial || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let (ok, stdout, _) = cctl(root.path(), &["image", "ls", "--format", "json"], None);
    assert!(ok);
    assert_eq!(stdout.trim(), "", "nothing named after the kill");
    let (ok, _, stderr) = cctl(root.path(), &["image", "pull", &reference], None);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("resuming"),
        "the second pull resumed the partial layer: {stderr}"
    );
    let target = root.path().join("rootfs");
    let (ok, _, stderr) = cctl(
        root.path(),
        &[
            "image",
            "pull",
            &reference,
            "--unpack",
            target.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(ok, "{stderr}");
    assert!(target.join("bin/busybox").is_file());
}

#[test]
fn credentials_come_from_a_docker_credential_helper() {
    let registry = Registry::basic_auth().expect("registry");
    let reference = registry
        .push(
            &fixture(Fixture::Busybox).expect("fixture"),
            "demo/busybox:1",
        )
        .expect("push");
    let root = tempfile::tempdir().expect("temp dir");
    let bin = root.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-cztest");
    let credentials = Registry::test_credentials();
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = {} ] || exit 1\necho '{{\"Username\":\"{}\",\"Secret\":\"{}\"}}'\n",
            registry.host(),
            credentials.username,
            credentials.password
        ),
    )
    .expect("write helper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let docker = root.path().join("docker");
    std::fs::create_dir(&docker).expect("mkdir");
    std::fs::write(docker.join("config.json"), r#"{"credsStore": "cztest"}"#).expect("config");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args(["image", "pull", &reference])
        .env("CZ_ROOT", root.path())
        .env("DOCKER_CONFIG", &docker)
        .env("PATH", path)
        .output()
        .expect("cctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_docker_save_archive_loads() {
    let image = fixture(Fixture::Busybox).expect("fixture");
    let root = tempfile::tempdir().expect("temp dir");
    let archive = root.path().join("docker.tar");
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(image.oci_reference())
        .arg(format!(
            "docker-archive:{}:example.com/saved/busybox:7",
            archive.display()
        ))
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, stdout, stderr) = cctl(
        root.path(),
        &["image", "load", "-i", archive.to_str().expect("utf-8")],
        None,
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("loaded example.com/saved/busybox:7"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = cctl(
        root.path(),
        &["image", "inspect", "example.com/saved/busybox:7"],
        None,
    );
    assert!(ok, "{stderr}");
    let inspect: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        inspect["manifest"]["layers"].as_array().map(Vec::len),
        Some(1)
    );
}

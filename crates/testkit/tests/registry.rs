//! The test registry is a real registry: skopeo pushes to each variant, the tag
//! list reads back over HTTP, authentication and TLS are enforced, and the
//! process dies with its owner.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use containerization_testkit::{Fixture, Registry, fixture};

fn push_busybox_and_read_tags(registry: &Registry) {
    let image = fixture(Fixture::Busybox).expect("busybox fixture");
    registry
        .push(&image, "fixtures/busybox:v1")
        .expect("push v1");
    let reference = registry
        .push(&image, "fixtures/busybox:latest")
        .expect("push latest");
    assert_eq!(
        reference,
        format!("{}/fixtures/busybox:latest", registry.host())
    );
    let tags = registry.tags("fixtures/busybox").expect("tag list");
    assert_eq!(tags, ["latest", "v1"]);
}

#[test]
fn skopeo_pushes_busybox_to_an_anonymous_registry() {
    let registry = Registry::anonymous().unwrap();
    assert!(registry.base_url().starts_with("http://127.0.0.1:"));
    push_busybox_and_read_tags(&registry);
}

#[test]
fn skopeo_pushes_busybox_to_a_basic_auth_registry() {
    let registry = Registry::basic_auth().unwrap();
    push_busybox_and_read_tags(&registry);
}

#[test]
fn skopeo_pushes_busybox_to_a_tls_registry() {
    let registry = Registry::tls().unwrap();
    assert!(registry.base_url().starts_with("https://127.0.0.1:"));
    push_busybox_and_read_tags(&registry);
}

fn skopeo_list_tags(registry: &Registry, options: &[String]) -> std::process::Output {
    Command::new("skopeo")
        .args(["--insecure-policy", "list-tags"])
        .args(options)
        .arg(format!("docker://{}/fixtures/busybox", registry.host()))
        .output()
        .expect("skopeo runs")
}

#[test]
fn basic_auth_registry_refuses_a_wrong_password() {
    let registry = Registry::basic_auth().unwrap();
    let image = fixture(Fixture::Busybox).unwrap();
    registry.push(&image, "fixtures/busybox:v1").unwrap();

    let wrong = skopeo_list_tags(
        &registry,
        &["--tls-verify=false".into(), "--creds=tester:wrong".into()],
    );
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("unauthorized") || stderr.contains("401"),
        "{stderr}"
    );

    let right = skopeo_list_tags(&registry, &registry.skopeo_args(""));
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert!(String::from_utf8_lossy(&right.stdout).contains("\"v1\""));
}

#[test]
fn tls_registry_is_untrusted_without_its_ca() {
    let registry = Registry::tls().unwrap();
    let without_ca = skopeo_list_tags(&registry, &["--tls-verify=true".into()]);
    assert!(!without_ca.status.success());
    let stderr = String::from_utf8_lossy(&without_ca.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");

    let ca = registry.ca().expect("a TLS registry has a CA");
    assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let with_ca = skopeo_list_tags(
        &registry,
        &[
            "--tls-verify=true".into(),
            format!("--cert-dir={}", ca.dir().display()),
        ],
    );
    // The repository does not exist yet: the TLS handshake worked and the
    // registry answered with its own error.
    let stderr = String::from_utf8_lossy(&with_ca.stderr);
    assert!(!stderr.contains("certificate"), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
}

#[test]
fn skopeo_pushes_the_multi_platform_index() {
    let registry = Registry::anonymous().unwrap();
    let image = fixture(Fixture::MultiPlatform).unwrap();
    registry.push(&image, "fixtures/multi:1").unwrap();
    let (status, body) = registry
        .get_with_headers(
            "v2/fixtures/multi/manifests/1",
            &[("Accept", "application/vnd.oci.image.index.v1+json")],
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let index: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let architectures: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(architectures, ["amd64", "arm64"]);
}

/// Whether a process is gone (or a zombie nobody has reaped yet).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

fn wait_dead(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if is_dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    is_dead(pid)
}

#[test]
fn registry_is_stopped_on_drop() {
    let registry = Registry::anonymous().unwrap();
    let pid = registry.pid();
    let storage = registry.storage_dir().to_path_buf();
    assert!(!is_dead(pid));
    drop(registry);
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "registry {pid} outlived its handle"
    );
    assert!(
        !storage.exists(),
        "storage folder {} was left behind",
        storage.display()
    );
}

#[test]
fn registry_is_stopped_when_a_test_panics() {
    let pid = std::sync::Mutex::new(0);
    let outcome = std::panic::catch_unwind(|| {
        let registry = Registry::anonymous().unwrap();
        *pid.lock().unwrap() = registry.pid();
        panic!("a failing test");
    });
    assert!(outcome.is_err());
    let pid = *pid.lock().unwrap();
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "registry {pid} outlived a panic"
    );
}

#[test]
fn registry_dies_when_its_test_binary_is_killed() {
    // The holder dies without cleaning up; its registry's folder goes here.
    let scratch = tempfile::tempdir().unwrap();
    let mut holder = Command::new(env!("CARGO_BIN_EXE_hold-registry"))
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let registry_pid: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid line: {line:?}"));
    assert!(!is_dead(registry_pid));

    holder.kill().unwrap(); // SIGKILL: no destructor runs in the holder
    holder.wait().unwrap();
    assert!(
        wait_dead(registry_pid, Duration::from_secs(5)),
        "registry {registry_pid} outlived its SIGKILLed owner"
    );
}

#[test]
fn skopeo_pushes_busybox_to_a_token_auth_registry() {
    let registry = Registry::token_auth().unwrap();
    push_busybox_and_read_tags(&registry);
    assert!(registry.token_issuer().unwrap().tokens_issued() > 0);
}

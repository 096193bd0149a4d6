//! `cctl network` end to end, inside a network namespace made for the test
//! (`unshare --net`), so the host's network is never touched.

use std::process::Command;

/// Runs `cctl ARGS` in the network namespace of `unshare`'d shell `script`.
fn in_netns(root: &std::path::Path, script: &str) -> (bool, String, String) {
    let out = Command::new("unshare")
        .args(["--net", "sh", "-ec", script])
        .env("CZ_ROOT", root)
        .env("CCTL", env!("CARGO_BIN_EXE_cctl"))
        .output()
        .expect("unshare runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn network_create_ls_inspect_rm() {
    let root = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = in_netns(
        root.path(),
        r#"
        "$CCTL" network create web --subnet 10.90.0.0/24
        "$CCTL" network create auto
        "$CCTL" network ls
        ip -br addr show cz-web
        "$CCTL" network inspect web
        "$CCTL" network rm web auto
        "$CCTL" network ls
        ! ip link show cz-web 2>/dev/null
        "#,
    );
    assert!(ok, "{stderr}\n{stdout}");
    assert!(
        stdout.contains("web            cz-web           10.90.0.0/24       10.90.0.1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("auto           cz-auto          172.18.0.0/24      172.18.0.1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("10.90.0.1/24"),
        "ip shows the gateway address: {stdout}"
    );
    assert!(stdout.contains(r#""bridge": "cz-web""#), "{stdout}");
}

#[test]
fn network_errors_are_clear_and_exit_non_zero() {
    let root = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = in_netns(
        root.path(),
        r#""$CCTL" network create x --subnet 10.0.0.0/33"#,
    );
    assert!(!ok);
    assert!(stderr.contains("10.0.0.0/33"), "{stderr}");
    let (ok, _, stderr) = in_netns(root.path(), r#""$CCTL" network rm nosuch"#);
    assert!(!ok);
    assert!(stderr.contains("no network named \"nosuch\""), "{stderr}");
}

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
        bridge=$("$CCTL" network inspect web | sed -n 's/.*"bridge": "\(.*\)".*/\1/p')
        echo "bridge=$bridge"
        ip -br addr show "$bridge"
        "$CCTL" network inspect web
        "$CCTL" network rm web auto
        "$CCTL" network ls
        ! ip link show "$bridge" 2>/dev/null
        "#,
    );
    assert!(ok, "{stderr}\n{stdout}");
    // A state root other than the system root names its bridges after itself.
    let bridge = stdout
        .lines()
        .find_map(|l| l.strip_prefix("bridge="))
        .expect("the bridge's name")
        .to_owned();
    assert!(bridge.starts_with("czb") && bridge.len() == 15, "{bridge}");
    assert!(
        stdout.contains(&format!(
            "web            {bridge:<16} 10.90.0.0/24       10.90.0.1"
        )),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("auto ") && l.contains("172.18.0.0/24      172.18.0.1")),
        "{stdout}"
    );
    assert!(
        stdout.contains("10.90.0.1/24"),
        "ip shows the gateway address: {stdout}"
    );
    assert!(
        stdout.contains(&format!(r#""bridge": "{bridge}""#)),
        "{stdout}"
    );
}

/// Two state roots on one host (a test root beside the demo's, a second
/// user's) each have their own bridges, taps and nftables tables: making and
/// removing a network in one leaves the other's NAT and bridge in place.
#[test]
fn two_state_roots_keep_their_networks_apart() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let script = format!(
        r#"
        A={a}; B={b}
        CZ_ROOT=$A "$CCTL" network create default
        CZ_ROOT=$B "$CCTL" network create default
        CZ_ROOT=$A "$CCTL" network ls
        CZ_ROOT=$B "$CCTL" network ls
        nft list tables
        CZ_ROOT=$B "$CCTL" network rm default
        echo after
        nft list ruleset
        ip -br link show type bridge
        CZ_ROOT=$A "$CCTL" network rm default
        "#,
        a = a.path().display(),
        b = b.path().display()
    );
    let (ok, stdout, stderr) = in_netns(a.path(), &script);
    assert!(ok, "{stderr}\n{stdout}");
    let bridges: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("default "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(bridges.len(), 2, "{stdout}");
    assert_ne!(bridges[0], bridges[1], "{stdout}");
    let (before, after) = stdout.split_once("\nafter\n").expect("after");
    let tables = before
        .lines()
        .filter(|l| l.starts_with("table inet containerization"))
        .count();
    assert_eq!(tables, 2, "one table per root: {stdout}");
    assert!(
        after.contains("masquerade") && after.contains(bridges[0]),
        "root B's removal kept root A's NAT: {after}"
    );
    assert!(!after.contains(bridges[1]), "{after}");
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

//! `cctl` reports what this machine offers.

use std::process::Command;

fn cctl(root: Option<&std::path::Path>, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cctl"));
    command.args(args);
    if let Some(root) = root {
        command.env("CZ_ROOT", root);
    }
    let out = command.output().expect("cctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kernel_ls_lists_the_kernel_setup_installed() {
    let root = containerization_testkit::state_root();
    let (ok, stdout, stderr) = cctl(Some(&root), &["kernel", "ls"]);
    assert!(ok, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("debian-cloud-"))
        .unwrap_or_else(|| panic!("no debian-cloud kernel listed:\n{stdout}"));
    assert!(line.contains("bzImage") && line.contains("-cloud-amd64") && line.ends_with("yes"));
}

#[test]
fn a_reader_that_goes_away_ends_cctl_quietly() {
    // `cctl kernel ls | true`: the reader has gone before cctl writes.
    let root = containerization_testkit::state_root();
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args(["kernel", "ls"])
        .env("CZ_ROOT", &root)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("cctl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

#[test]
fn kernel_ls_in_an_empty_root_says_how_to_get_a_kernel() {
    let root = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = cctl(Some(root.path()), &["kernel", "ls"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("no kernels") && stdout.contains("scripts/setup"),
        "{stdout}"
    );
}

#[test]
fn system_info_names_the_root_kernels_and_programs() {
    let root = containerization_testkit::state_root();
    let (ok, stdout, stderr) = cctl(Some(&root), &["system", "info"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("state root:          {}", root.display())));
    assert!(
        stdout.contains("kernel:              debian-cloud-"),
        "{stdout}"
    );
    let vsock = root.join("tools/bin/vhost-device-vsock");
    assert!(stdout.contains(&vsock.display().to_string()), "{stdout}");
    assert!(
        !stdout.contains("missing"),
        "setup installed every program:\n{stdout}"
    );
}

#[test]
fn a_broken_kernel_entry_is_an_error_that_names_it() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("kernels/broken")).unwrap();
    let (ok, _, stderr) = cctl(Some(root.path()), &["kernel", "ls"]);
    assert!(!ok);
    assert!(
        stderr.contains("kernels/broken") && stderr.contains("no kernel image"),
        "{stderr}"
    );
}

/// `cctl args…` with an empty state root: its exit code and standard error.
fn code_of(args: &[&str]) -> (i32, String) {
    let root = tempfile::tempdir().expect("state root");
    let out = Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args(args)
        .env("CZ_ROOT", root.path())
        .output()
        .expect("cctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_125_as_dockers_and_help_exits_0() {
    let cases: [(&[&str], &str); 8] = [
        (&["run", "--bogus", "busybox"], "--bogus"),
        (&["create", "-p", "99999:80", "busybox"], "99999"),
        (&["run", "-p", "0", "busybox"], "\"0\""),
        (&["run", "--memory", "-5m", "busybox"], "-5m"),
        (&["run", "--memory=-5m", "busybox"], "positive"),
        (&["run", "--cpus", "-1", "busybox"], "above 0"),
        (&["create", "--cpus", "100000", "busybox"], "this host has"),
        (&["image", "rm", "--bogus"], "--bogus"),
    ];
    for (args, says) in cases {
        let (code, stderr) = code_of(args);
        assert_eq!(code, 125, "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should name {says}: {stderr}"
        );
    }
    for args in [&["--help"][..], &["--version"], &["run", "--help"]] {
        assert_eq!(code_of(args).0, 0, "{args:?}");
    }
}

//! `cctl vm boot`, `cctl system check` and the kernel catalogue commands.

use std::process::Command;

fn cctl(root: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args(args)
        .env("CZ_ROOT", root)
        .output()
        .expect("cctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn vm_boot_times_the_agent_and_prints_the_guest_uname() {
    let root = containerization_testkit::state_root();
    let (ok, stdout, stderr) = cctl(&root, &["vm", "boot"]);
    assert!(ok, "{stderr}");
    check_boot_output(&stdout);
}

fn check_boot_output(stdout: &str) {
    assert!(stdout.contains("agent ready after"), "{stdout}");
    let guest = stdout
        .lines()
        .find(|l| l.starts_with("guest: Linux "))
        .unwrap_or_else(|| panic!("no guest uname line:\n{stdout}"));
    assert!(guest.ends_with("x86_64"), "{guest}");
    assert!(stdout.contains("stopped (Graceful)"), "{stdout}");
}

#[test]
fn system_check_names_the_accelerator_transport_and_kernel() {
    let root = containerization_testkit::state_root();
    let (ok, stdout, stderr) = cctl(&root, &["system", "check"]);
    assert!(ok, "{stderr}");
    for field in ["accelerator:", "transport:", "kernel:", "vminitd:"] {
        assert!(stdout.contains(field), "{field} missing:\n{stdout}");
    }
    assert!(
        stdout.contains("serial"),
        "the default transport:\n{stdout}"
    );
    let empty = tempfile::tempdir().expect("root");
    let (ok, _, stderr) = cctl(empty.path(), &["system", "check"]);
    assert!(!ok, "an empty state root cannot run VMs");
    assert!(stderr.contains("VMs cannot run here yet"), "{stderr}");
}

#[test]
fn kernel_add_default_and_rm() {
    let source = containerization_testkit::state_root().join("kernels");
    let debian = std::fs::read_dir(&source)
        .expect("catalogue")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("debian-cloud-"))
        })
        .expect("scripts/setup installs the Debian cloud kernel");
    let release = std::fs::read_to_string(debian.join("release")).expect("release");
    let root = tempfile::tempdir().expect("root");
    let image = debian.join("vmlinuz");
    let image = image.to_str().expect("utf-8 path");
    let (ok, stdout, stderr) = cctl(root.path(), &["kernel", "add", "stock", image]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(release.trim()),
        "release read from the image:\n{stdout}"
    );
    let (ok, _, stderr) = cctl(root.path(), &["kernel", "add", "stock", image]);
    assert!(!ok && stderr.contains("already in"), "{stderr}");
    let (ok, _, stderr) = cctl(root.path(), &["kernel", "add", "bad", "/etc/hostname"]);
    assert!(!ok && stderr.contains("is not a kernel image"), "{stderr}");
    let (ok, _, _) = cctl(root.path(), &["kernel", "add", "second", image]);
    assert!(ok);
    let (ok, _, stderr) = cctl(root.path(), &["kernel", "default", "second"]);
    assert!(ok, "{stderr}");
    let (_, stdout, _) = cctl(root.path(), &["kernel", "default"]);
    assert!(stdout.starts_with("second (set with"), "{stdout}");
    let (ok, _, stderr) = cctl(root.path(), &["kernel", "rm", "second"]);
    assert!(ok, "{stderr}");
    let (_, stdout, _) = cctl(root.path(), &["kernel", "ls"]);
    assert!(
        stdout.contains("stock") && !stdout.contains("second"),
        "{stdout}"
    );
    let (ok, _, stderr) = cctl(root.path(), &["kernel", "rm", "second"]);
    assert!(
        !ok && stderr.contains("no kernel named \"second\""),
        "{stderr}"
    );
}

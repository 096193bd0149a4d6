//! The realistic root file system is a working minimal Debian.

use std::process::Command;

use containerization_testkit::debian_rootfs;

#[test]
fn debian_rootfs_is_a_working_minimal_debian() {
    let root = debian_rootfs().unwrap();
    assert!(root.join("etc/debian_version").is_file());
    let out = Command::new("chroot")
        .arg(&root)
        .args(["dpkg-query", "-W", "-f=${Package}\n"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packages = String::from_utf8(out.stdout).unwrap();
    for essential in ["apt", "bash", "coreutils", "dpkg"] {
        assert!(
            packages.lines().any(|p| p == essential),
            "{essential} is installed"
        );
    }
    // A second call finds the cached tree instead of rebuilding it.
    assert_eq!(debian_rootfs().unwrap(), root);
}

//! vminitd as PID 1 in a real VM: the guest files a container cannot reach
//! (vminitd leaves the initramfs at boot, containers are pivoted into their
//! roots),
//! and the guest network configured through the agent.
//!
//! Each test boots Debian's cloud kernel with the static musl vminitd (see
//! `support::vm`); without one, or without root for the tap, it prints a loud
//! SKIPPED line naming what is missing.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use containerization_agent::proto::v1::{
    ConfigureInterfaceRequest, CreateProcessRequest, InterfaceSelector,
};
use serde_json::json;
use support::vm::{GUEST_ROOTFS, GuestVm};
use support::{busybox_rootfs, container_request, spec};

/// A classic chroot escape: chroot into a subfolder while the working
/// folder stays outside, climb with `..`, chroot there, list `/`.
const ESCAPE_C: &str = r#"
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("/escape-jail", 0755);
    if (chroot("/escape-jail") != 0) { perror("chroot /escape-jail"); return 2; }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 2; }
    DIR *root = opendir("/");
    if (!root) { perror("opendir /"); return 2; }
    struct dirent *entry;
    while ((entry = readdir(root))) {
        if (entry->d_name[0] != '.') printf("%s\n", entry->d_name);
    }
    return 0;
}
"#;

/// The escape a privileged container (CAP_SYS_ADMIN) has: detach its own
/// root, then join its own mount namespace again, which sets the root to
/// the namespace's root mount (what lies under every pivoted root), and list
/// `/`. Under a chroot (no pivot_root) that is the guest's initramfs.
const UNMOUNT_ROOT_C: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
int main(void) {
    int ns = open("/proc/self/ns/mnt", O_RDONLY);
    if (ns < 0) { perror("open /proc/self/ns/mnt"); return 2; }
    if (umount2("/", MNT_DETACH) != 0) { perror("umount2 /"); return 2; }
    if (setns(ns, CLONE_NEWNS) != 0) { perror("setns"); return 2; }
    DIR *root = opendir("/");
    if (!root) { perror("opendir /"); return 2; }
    struct dirent *entry;
    while ((entry = readdir(root))) {
        if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) printf("%s\n", entry->d_name);
    }
    return 0;
}
"#;

/// Builds the C program `source`, statically linked, as `dir/name`.
fn build_program(dir: &Path, name: &str, source: &str) -> Result<std::path::PathBuf, String> {
    let source_path = dir.join(format!("{name}.c"));
    std::fs::write(&source_path, source).map_err(|e| e.to_string())?;
    let source = source_path;
    let binary = dir.join(name);
    let output = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .map_err(|e| format!("gcc is needed to build the escape program: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "gcc -static failed (is libc6-dev installed?): {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(binary)
}

#[tokio::test]
async fn escapes_from_a_container_do_not_reach_the_guests_files() {
    let test = "escapes_from_a_container_do_not_reach_the_guests_files";
    let dir = tempfile::tempdir().expect("dir");
    let programs = build_program(dir.path(), "escape", ESCAPE_C).and_then(|escape| {
        build_program(dir.path(), "unmount-root", UNMOUNT_ROOT_C).map(|u| (escape, u))
    });
    let (escape, unmount_root) = match programs {
        Ok(binaries) => binaries,
        Err(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            return;
        }
    };
    let rootfs = busybox_rootfs(dir.path());
    std::fs::copy(&escape, rootfs.join("escape")).expect("copy the escape program");
    std::fs::copy(&unmount_root, rootfs.join("unmount-root")).expect("copy unmount-root");
    let guest = match GuestVm::boot(&rootfs, |_| {}).await {
        Ok(guest) => guest,
        Err(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            return;
        }
    };
    // The guest's own root holds vminitd's files (and the copied rootfs).
    let guest_root = guest.sh("ls-guest", "busybox ls /").await;
    let mut s = spec(&["/escape"]);
    // CAP_SYS_CHROOT is in the default set; the escape needs nothing else.
    s["process"]["capabilities"] = json!({
        "bounding": ["CAP_SYS_CHROOT"], "effective": ["CAP_SYS_CHROOT"],
        "permitted": ["CAP_SYS_CHROOT"]
    });
    let escaped = guest
        .run(container_request("escape", &s, Path::new(GUEST_ROOTFS)))
        .await;
    let mut s = spec(&["/unmount-root"]);
    let caps = json!(["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"]);
    s["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
    let unmounted = guest
        .run(container_request(
            "unmount-root",
            &s,
            Path::new(GUEST_ROOTFS),
        ))
        .await;
    let guest_mountinfo = guest
        .sh("guest-mountinfo", "busybox cat /proc/self/mountinfo")
        .await;
    let mountinfo = guest
        .run(container_request(
            "mountinfo",
            &spec(&["cat", "/proc/self/mountinfo"]),
            Path::new(GUEST_ROOTFS),
        ))
        .await;
    guest.stop().await;

    assert_eq!(
        guest_root.status.exit_code,
        Some(0),
        "{}",
        guest_root.stderr
    );
    assert!(
        guest_root.stdout.lines().any(|l| l == "run"),
        "the guest root lists /run: {:?}",
        guest_root.stdout
    );
    assert_eq!(
        escaped.status.exit_code,
        Some(0),
        "the escape program ran: {:?} {}",
        escaped.status,
        escaped.stderr
    );
    let found: Vec<&str> = escaped.stdout.lines().collect();
    eprintln!("after the escape, / lists {found:?}");
    for guest_file in ["init", "lib", "run", "proc"] {
        assert!(
            !found.contains(&guest_file) || Path::new(&rootfs).join(guest_file).exists(),
            "the escape reached the guest's {guest_file}: / lists {found:?}"
        );
    }
    assert!(
        !found.contains(&"init"),
        "vminitd's /init is reachable from the container: {found:?}"
    );
    // Under the pivoted root lies the kernel's rootfs, which vminitd emptied
    // when it moved onto a tmpfs at boot: nothing of vminitd is left there.
    assert_eq!(
        unmounted.status.exit_code,
        Some(0),
        "unmount-root ran: {:?} {}",
        unmounted.status,
        unmounted.stderr
    );
    let under: Vec<&str> = unmounted.stdout.lines().collect();
    eprintln!("under the container's root lies {under:?}");
    assert!(
        under.iter().all(|name| name.starts_with('.')),
        "the guest's initramfs files are reachable from a privileged container: {under:?}"
    );
    // The guest's own / is the tmpfs vminitd moved onto, not the initramfs.
    let guest_root_line = guest_mountinfo
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in the guest's mountinfo: {}", guest_mountinfo.stdout));
    assert!(
        guest_root_line.contains(" - tmpfs "),
        "the guest's / is not the tmpfs: {guest_root_line}"
    );
    // The container's root is a mount of its own (pivot_root), not a
    // folder of the guest's root.
    let root_line = mountinfo
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in the container's mountinfo: {}", mountinfo.stdout));
    assert!(
        !root_line.contains(" - rootfs "),
        "the container's / is the initramfs: {root_line}"
    );
}

/// A tap device with an address on the host side, deleted on drop.
struct HostTap {
    name: String,
}

impl HostTap {
    fn create(name: &str, address: &str) -> Result<Self, String> {
        let ip = |args: &[&str]| -> Result<(), String> {
            let output = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ))
            }
        };
        ip(&["tuntap", "add", "dev", name, "mode", "tap"])?;
        let tap = Self {
            name: name.to_owned(),
        };
        ip(&["addr", "add", address, "dev", name])?;
        ip(&["link", "set", name, "up"])?;
        Ok(tap)
    }
}

impl Drop for HostTap {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}

#[tokio::test]
async fn a_registered_binfmt_entry_runs_matching_files_through_its_interpreter() {
    let test = "a_registered_binfmt_entry_runs_matching_files_through_its_interpreter";
    let dir = tempfile::tempdir().expect("dir");
    let rootfs = busybox_rootfs(dir.path());
    let guest = match GuestVm::boot(&rootfs, |_| {}).await {
        Ok(guest) => guest,
        Err(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            return;
        }
    };
    // Files starting with "CZFAKE" run through busybox's echo (a copy named
    // /tmp/echo: the fixture's applet links point at /bin/busybox, absent in
    // the guest's own root), which prints the path the kernel hands it: the
    // foreign-binary mechanism, end to end.
    guest
        .agent
        .register_binfmt(containerization_agent::proto::v1::RegisterBinfmtRequest {
            name: "czfake".into(),
            magic: b"CZFAKE".to_vec(),
            mask: Vec::new(),
            offset: 0,
            interpreter: "/tmp/echo".into(),
            flags: String::new(),
        })
        .await
        .expect("register");
    let run = guest
        .sh(
            "binfmt",
            "cp /run/rootfs/bin/busybox /tmp/echo && printf 'CZFAKE\\n' > /tmp/prog && chmod +x /tmp/prog && /tmp/prog && \
             cat /proc/sys/fs/binfmt_misc/czfake",
        )
        .await;
    assert_eq!(run.status.exit_code, Some(0), "{}", run.stderr);
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("/tmp/prog"), "{}", run.stdout);
    assert_eq!(lines.next(), Some("enabled"), "{}", run.stdout);
    let again = guest
        .agent
        .register_binfmt(containerization_agent::proto::v1::RegisterBinfmtRequest {
            name: "czfake".into(),
            magic: b"CZFAKE".to_vec(),
            interpreter: "/tmp/echo".into(),
            ..Default::default()
        })
        .await;
    assert!(again.is_err(), "a second entry of the same name is refused");
    guest.stop().await;
}

#[tokio::test]
async fn an_interface_configured_by_mac_reaches_the_host_through_a_tap() {
    let test = "an_interface_configured_by_mac_reaches_the_host_through_a_tap";
    // A subnet of this run's own, so parallel runs do not collide.
    let net = 100 + std::process::id() % 150;
    let host_ip = format!("10.77.{net}.1");
    let tap = match HostTap::create(
        &format!("czn{}", std::process::id() % 100_000),
        &format!("{host_ip}/24"),
    ) {
        Ok(tap) => tap,
        Err(why) => {
            eprintln!("SKIPPED: {test}: a host tap is needed (root): {why}");
            return;
        }
    };
    let mac: containerization_vmm::MacAddress = "02:c0:ff:ee:77:02".parse().expect("mac");
    let dir = tempfile::tempdir().expect("dir");
    let rootfs = busybox_rootfs(dir.path());
    let boot = GuestVm::boot(&rootfs, |config| {
        config.nics.push(containerization_vmm::NicConfig {
            tap: tap.name.clone(),
            mac,
        });
    })
    .await;
    let guest = match boot {
        Ok(guest) => guest,
        Err(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            return;
        }
    };
    let request = ConfigureInterfaceRequest {
        interface: Some(InterfaceSelector::by_mac(mac)),
        address: format!("10.77.{net}.2/24"),
        mtu: 1400,
        gateway: host_ip.clone(),
    };
    let configured = guest.agent.configure_interface(request.clone()).await;
    let again = guest.agent.configure_interface(request).await;
    let ping = guest
        .sh(
            "ping",
            &format!(
                "for i in 1 2 3; do busybox ping -c1 -W2 {host_ip} && exit 0; done; \
                 busybox ip addr; busybox ip route; exit 1"
            ),
        )
        .await;
    let routes = guest.sh("routes", "busybox ip route").await;
    let guest_ip = format!("10.77.{net}.2");
    let greeting = reach_a_guest_listener(&guest, &guest_ip).await;
    guest.stop().await;

    let state = configured.expect("configure_interface");
    assert_eq!(state.mac, mac.to_string());
    assert_eq!(state.mtu, 1400);
    assert!(state.up, "{state:?}");
    again.expect("configuring again changes nothing and succeeds");
    assert_eq!(
        ping.status.exit_code,
        Some(0),
        "the guest pings the host at {host_ip}: {} {}",
        ping.stdout,
        ping.stderr
    );
    assert!(
        routes
            .stdout
            .contains(&format!("default via {host_ip} dev {}", state.name)),
        "{}",
        routes.stdout
    );
    assert_eq!(
        greeting.as_deref(),
        Ok("hello from the guest\n"),
        "the host reaches a TCP listener in the guest at {guest_ip}"
    );
}

/// Starts `nc -l` in the guest on port 7777 and reads what it sends to a
/// host connection.
async fn reach_a_guest_listener(guest: &GuestVm, guest_ip: &str) -> Result<String, String> {
    use tokio::io::AsyncReadExt;
    let busybox = format!("{GUEST_ROOTFS}/bin/busybox");
    let args = [
        busybox.as_str(),
        "nc",
        "-l",
        "-p",
        "7777",
        "-e",
        busybox.as_str(),
        "echo",
        "hello from the guest",
    ];
    guest
        .agent
        .create_process(CreateProcessRequest {
            id: "listen".into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            cwd: "/".into(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    guest
        .agent
        .start_process("listen")
        .await
        .map_err(|e| e.to_string())?;
    let mut result = Err("nothing listened on port 7777 within 10 s".to_owned());
    for _ in 0..100 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect((guest_ip, 7777)).await {
            let mut text = String::new();
            result = stream
                .read_to_string(&mut text)
                .await
                .map(|_| text)
                .map_err(|e| e.to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // nc ends after one connection; make sure it does when none came.
    let _ = guest.agent.kill_process("listen", 9).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), guest.agent.wait_process("listen")).await;
    result
}

//! The guest's devices a container must not reach, in a real VM: a
//! container's root holds `CAP_MKNOD`, so only the device cgroup (a BPF
//! program on its cgroup) stands between it and any node it makes; and the
//! agent's virtio-serial port, vminitd's line to the host, is neither in its
//! `/dev` nor named in its `/sys`.
//!
//! One VM serves every case (a boot under TCG costs seconds). Without the
//! static vminitd, the kernel or gcc, the test prints a loud SKIPPED line.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use support::vm::{GUEST_ROOTFS, GuestVm};
use support::{busybox_rootfs, container_request, spec};

/// Opens a new pty pair, makes its secondary end the controlling terminal,
/// then opens `/dev/tty`: what a shell with a terminal does.
const PTY_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    /* A group leader cannot start a session: do it in a child. */
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 2; }
    if (child > 0) {
        int status;
        if (waitpid(child, &status, 0) < 0) { perror("waitpid"); return 2; }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
    }
    if (setsid() < 0) { perror("setsid"); return 2; }
    int primary = posix_openpt(O_RDWR);
    if (primary < 0) { perror("open /dev/ptmx"); return 2; }
    if (grantpt(primary) || unlockpt(primary)) { perror("unlockpt"); return 2; }
    char *name = ptsname(primary);
    int secondary = open(name, O_RDWR);
    if (secondary < 0) { perror(name); return 2; }
    int tty = open("/dev/tty", O_RDWR);
    if (tty < 0) { perror("open /dev/tty"); return 2; }
    if (write(tty, "x", 1) != 1) { perror("write /dev/tty"); return 2; }
    printf("pty %s ok\n", name);
    return 0;
}
"#;

/// Builds `PTY_C`, statically linked, into `dir`.
fn build_pty_program(dir: &Path) -> Result<std::path::PathBuf, String> {
    let source = dir.join("pty.c");
    std::fs::write(&source, PTY_C).map_err(|e| e.to_string())?;
    let binary = dir.join("pty");
    let output = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .map_err(|e| format!("gcc: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "gcc failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(binary)
}

/// Runs `script` with `sh -c` as root in a container with the default
/// capabilities plus `CAP_MKNOD` (Docker's default set has it).
async fn container_sh(guest: &GuestVm, id: &str, script: &str) -> support::vm::Finished {
    let mut s = spec(&["sh", "-c", script]);
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_SYS_CHROOT"
    ]);
    s["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
    guest
        .run(container_request(id, &s, Path::new(GUEST_ROOTFS)))
        .await
}

#[tokio::test]
async fn container_root_reaches_only_the_default_devices_and_not_the_agent_port() {
    let test = "container_root_reaches_only_the_default_devices_and_not_the_agent_port";
    let dir = tempfile::tempdir().expect("dir");
    let pty = match build_pty_program(dir.path()) {
        Ok(pty) => pty,
        Err(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            return;
        }
    };
    let rootfs = busybox_rootfs(dir.path());
    std::fs::copy(&pty, rootfs.join("pty")).expect("copy the pty program");
    let guest = match GuestVm::boot(&rootfs, |_| {}).await {
        Ok(guest) => guest,
        Err(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            return;
        }
    };

    // The agent port as the guest itself sees it: its name and number.
    let port = guest
        .sh(
            "agent-port",
            "for p in /sys/class/virtio-ports/*; do \
             echo \"$(busybox cat $p/name) $(busybox cat $p/dev)\"; done",
        )
        .await;
    // Nodes container root makes of the guest's memory, its kernel log, a
    // block device and the agent port (made in /dev: a tmpfs without nodev).
    // Only /dev/mem was refused before (it also wants CAP_SYS_RAWIO).
    let agent_dev = port
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("cz.agent "))
        .map(str::to_owned);
    let (major, minor) = agent_dev
        .as_deref()
        .and_then(|d| d.split_once(':'))
        .unwrap_or(("0", "0"));
    let denied = container_sh(
        &guest,
        "denied",
        &format!(
            "mknod /dev/mem c 1 1 && cat /dev/mem > /dev/null; \
             mknod /dev/kmsg c 1 11 && echo container > /dev/kmsg; \
             mknod /dev/vda b 254 0 && head -c1 /dev/vda > /dev/null; \
             mknod /dev/agent c {major} {minor} && head -c1 /dev/agent > /dev/null; \
             echo made $(ls /dev/mem /dev/kmsg /dev/vda /dev/agent | wc -l)"
        ),
    )
    .await;
    let allowed = container_sh(
        &guest,
        "allowed",
        "echo hi > /dev/null && head -c4 /dev/zero | wc -c && head -c4 /dev/urandom | wc -c \
         && head -c4 /dev/random | wc -c && /pty",
    )
    .await;
    let ports = container_sh(
        &guest,
        "ports",
        &format!(
            "ls /dev | grep vport; ls /sys/class/virtio-ports; \
             cat /sys/class/virtio-ports/*/name /sys/bus/virtio/devices/*/virtio-ports/*/name \
             /sys/dev/char/{major}:{minor}/name; true"
        ),
    )
    .await;
    guest.stop().await;

    let agent_dev = agent_dev.unwrap_or_else(|| {
        panic!(
            "the guest names no cz.agent port: {:?} {}",
            port.stdout, port.stderr
        )
    });
    eprintln!("the agent port is {agent_dev}");

    // Every node was made (CAP_MKNOD, mknod allowed for any device), and
    // every open of one was refused by the device cgroup.
    assert!(
        denied.stdout.contains("made 4"),
        "mknod works for container root: {:?} {}",
        denied.stdout,
        denied.stderr
    );
    for node in ["/dev/mem", "/dev/kmsg", "/dev/vda", "/dev/agent"] {
        assert!(
            denied
                .stderr
                .lines()
                .any(|l| l.contains(node) && l.contains("Operation not permitted")),
            "opening {node} is refused with EPERM: {:?}",
            denied.stderr
        );
    }

    assert_eq!(
        allowed.status.exit_code,
        Some(0),
        "the default devices open: {:?} {}",
        allowed.stdout,
        allowed.stderr
    );
    assert!(
        allowed.stdout.starts_with("4\n4\n4\npty /dev/pts/"),
        "/dev/zero, /dev/urandom, /dev/random and a pty with /dev/tty work: {:?}",
        allowed.stdout
    );

    assert!(
        !ports.stdout.contains("vport") && !ports.stdout.contains("cz.agent"),
        "the container sees the agent port: {:?} {}",
        ports.stdout,
        ports.stderr
    );
}

//! QEMU confines itself: every VM's QEMU runs under its seccomp filter with
//! no new privileges, its command line carries the full `-sandbox` deny
//! list, and a QMP client can no longer make it run a command (`migrate`
//! to an `exec:` URI, which ran a shell as root before). What else gives
//! control of the VM is private: QMP has no socket path, and the run folder
//! and everything in it are the owner's only.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use containerization_vmm::{Hypervisor, Qemu, VirtualMachine};
use support::{built_kernel, config, runtime};

/// The value of `field` in `/proc/<pid>/status`.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

#[test]
fn qemu_runs_in_its_seccomp_sandbox_and_cannot_spawn_a_command() {
    let dir = tempfile::tempdir().expect("folder");
    let runtime = runtime();
    runtime.block_on(async {
        let config = config(built_kernel(), &dir.path().join("run"));
        assert!(config.sandbox, "the sandbox is on by default");
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let pid = vm.pid();
        assert_eq!(status_field(pid, "Seccomp"), "2", "a seccomp filter");
        assert_eq!(status_field(pid, "NoNewPrivs"), "1", "no new privileges");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
        let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let sandbox: &[&[u8]] = &[
            b"-sandbox",
            b"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ];
        assert!(
            words.windows(2).any(|w| w == sandbox),
            "QEMU's command line: {}",
            String::from_utf8_lossy(&cmdline).replace('\0', " ")
        );

        // What anyone reaching QMP could do before: have QEMU run a command.
        let ran = dir.path().join("ran");
        let uri = format!("exec:touch {}", ran.display());
        let qmp = vm.qmp().expect("qmp");
        let _ = qmp.execute("migrate", Some(serde_json::json!({ "uri": uri })));
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = vm.try_exit() {
                break status;
            }
            assert!(Instant::now() < deadline, "QEMU still runs after exec:");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!ran.exists(), "QEMU ran the exec: command");
        assert_eq!(
            status.signal(),
            Some(rustix::process::Signal::SYS.as_raw()),
            "the filter killed QEMU: {status}"
        );
    });
}

#[test]
fn a_qemu_without_seccomp_is_refused_with_an_error_that_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("folder");
    // What Debian's QEMU says when built without seccomp and given -sandbox.
    let qemu = dir.path().join("qemu-without-seccomp");
    std::fs::write(
        &qemu,
        "#!/bin/sh\necho 'qemu-system-x86_64: -sandbox support is not enabled in this QEMU binary' >&2\nexit 1\n",
    )
    .expect("stand-in QEMU");
    std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let runtime = runtime();
    runtime.block_on(async {
        let mut config = config(built_kernel(), &dir.path().join("run"));
        config.qemu = qemu.clone();
        let err = Qemu::default()
            .start(&config)
            .await
            .expect_err("no sandbox, no VM");
        assert!(
            matches!(&err, containerization_vmm::VmmError::NoSandbox { qemu: q } if *q == qemu),
            "{err}"
        );
        assert!(err.to_string().contains("CZ_QEMU_SANDBOX=off"), "{err}");
    });
}

#[test]
fn the_run_folder_is_private_and_holds_no_qmp_socket() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("folder");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("run folder");
    // A folder left open (by an older version, or a umask) is closed.
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let runtime = runtime();
    runtime.block_on(async {
        let config = config(built_kernel(), &run);
        let mut vm = Qemu::default().start(&config).await.expect("start");
        let mode = |name: &str| {
            let meta = std::fs::metadata(run.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            meta.permissions().mode() & 0o777
        };
        assert_eq!(mode(""), 0o700, "the run folder");
        for name in ["vsock.sock", "console.log", "qemu.stderr"] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
        let names: Vec<String> = std::fs::read_dir(&run)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("qmp")),
            "a QMP socket in the run folder: {names:?}"
        );
        let status = vm.qmp().expect("qmp").status().expect("QMP answers");
        assert!(status.running, "{status:?}");
        vm.stop(support::STOP_TIMEOUT).await;
    });
}

//! A VM never outlives its owner: SIGKILL to the process that started it
//! takes QEMU and the vsock helper down with it.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use containerization_vmm::{Hypervisor, Qemu};
use support::{built_kernel, config, runtime};

/// Set in the owner process this test starts.
const OWNER_DIR: &str = "CZ_TEST_VM_OWNER_DIR";

/// Not a test of its own: the body of the owner process, which the test
/// below runs as a child (this test binary again, filtered to this name).
/// Run directly it has nothing to own and returns at once.
#[test]
fn owner_process_body() {
    let Some(dir) = std::env::var_os(OWNER_DIR) else {
        return;
    };
    runtime().block_on(async {
        let vm = Qemu::default()
            .start(&config(built_kernel(), std::path::Path::new(&dir)))
            .await
            .expect("start");
        println!("pids {} {}", vm.pid(), vm.helper_pid().unwrap_or(0));
        // Started from a short-lived thread: the VM must survive it and die
        // only with the process.
        std::thread::spawn(|| ()).join().ok();
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; it counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn sigkill_to_the_owner_leaves_no_qemu_or_helper() {
    let dir = tempfile::tempdir().expect("dir");
    let mut owner = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "owner_process_body",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(OWNER_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("owner process");
    let stdout = owner.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("pids ").map(|(_, pids)| pids.to_owned()))
        .expect("the owner started a VM and printed its pids");
    // libtest prints "test owner_process_body ... " before the body runs,
    // so the pids may follow it on the same line.
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .filter(|&p| p != 0)
        .collect();
    assert!(!pids.is_empty());
    std::thread::sleep(Duration::from_millis(500));
    for &pid in &pids {
        assert!(alive(pid), "pid {pid} runs while its owner lives");
    }
    owner.kill().expect("SIGKILL the owner");
    owner.wait().expect("reap the owner");
    let started = Instant::now();
    while pids.iter().any(|&p| alive(p)) && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(
        left.is_empty(),
        "still running 5 s after the owner's SIGKILL: {left:?}"
    );
}

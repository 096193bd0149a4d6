//! The VM's console log, which lies in RAM on the host, stays under its cap
//! however much the guest writes to its console, and keeps the boot.
//!
//! Boots Debian's cloud kernel with the static musl vminitd (see
//! `support::vm`); without them the test prints a loud SKIPPED line.

mod support;

use std::time::{Duration, Instant};

use containerization_vmm::VirtualMachine;
use support::busybox_rootfs;
use support::vm::GuestVm;

/// The cap set for this guest (a small one, so the flood is quick).
const CAP: u64 = 64 * 1024;

#[tokio::test]
async fn a_guest_flooding_its_console_leaves_a_capped_log_that_keeps_the_boot() {
    let test = "a_guest_flooding_its_console_leaves_a_capped_log_that_keeps_the_boot";
    let dir = tempfile::tempdir().expect("dir");
    let rootfs = busybox_rootfs(dir.path());
    let guest = match GuestVm::boot(&rootfs, |c| c.console_max_bytes = CAP).await {
        Ok(guest) => guest,
        Err(why) => {
            eprintln!("SKIPPED: {test}: {why}");
            return;
        }
    };
    let log = guest.vm.console_log().to_path_buf();
    let boot = std::fs::read(&log).expect("the console log");
    // Four times the cap, as lines, then a last line to find at the end.
    assert!(
        (boot.len() as u64) < CAP / 4,
        "the boot ({} bytes) fits in the kept head",
        boot.len()
    );
    let flood = guest
        .sh(
            "flood",
            "busybox yes 'console flood 0123456789abcdefghijklmnopqrstuvwxyz' \
             | busybox head -c 262144 > /dev/console && echo end-of-flood > /dev/console",
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut size = std::fs::metadata(&log).expect("log").len();
    while size > CAP && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        size = std::fs::metadata(&log).expect("log").len();
    }
    let after = std::fs::read(&log).expect("the console log");
    guest.stop().await;

    assert_eq!(flood.status.exit_code, Some(0), "{}", flood.stderr);
    let text = String::from_utf8_lossy(&after);
    assert!(
        size <= CAP,
        "the console log is {size} bytes, over the cap of {CAP}"
    );
    assert!(
        !boot.is_empty() && after.starts_with(&boot),
        "the boot messages ({} bytes) are kept at the start",
        boot.len()
    );
    assert!(
        text.contains("bytes of console output cut ...]"),
        "the cut is marked"
    );
    assert!(
        text.trim_end().ends_with("end-of-flood"),
        "the latest output is kept: {:?}",
        &text[text.len().saturating_sub(200)..]
    );
}

//! Disks the host attaches while the VM runs: each is a SCSI disk at a
//! target the host chose on the VM's one virtio-scsi controller, so it is
//! found by that address in sysfs (`/sys/bus/scsi/devices/H:0:T:0/block/`),
//! never by the order disks appeared in.

use std::path::Path;
use std::time::{Duration, Instant};

use containerization_agent::proto::v1::{FindDiskRequest, FindDiskResponse};
use tonic::Status;

/// Where SCSI devices are listed.
const SCSI_DEVICES: &str = "/sys/bus/scsi/devices";

/// How long to wait when the request names no time.
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// How often to look again while the disk has not come.
const POLL: Duration = Duration::from_millis(2);

/// The `FindDisk` call: waits for the disk at the request's target and
/// names its device node.
pub(crate) async fn find(request: FindDiskRequest) -> Result<FindDiskResponse, Status> {
    let wait = match request.timeout_ms {
        0 => DEFAULT_WAIT,
        ms => Duration::from_millis(u64::from(ms)),
    };
    let deadline = Instant::now() + wait;
    loop {
        if let Some(name) = disk_at(Path::new(SCSI_DEVICES), request.scsi_target) {
            let device = format!("/dev/{name}");
            // devtmpfs makes the node as the kernel announces the disk.
            if Path::new(&device).exists() {
                return Ok(FindDiskResponse { device });
            }
        }
        if Instant::now() >= deadline {
            return Err(Status::not_found(format!(
                "no disk appeared at SCSI target {} within {wait:?}",
                request.scsi_target
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The block device name of the disk at SCSI `target` (LUN 0) under
/// `devices`, whatever the host adapter's number.
fn disk_at(devices: &Path, target: u32) -> Option<String> {
    let entries = std::fs::read_dir(devices).ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let parts: Vec<&str> = name.split(':').collect();
        let at_target = parts.len() == 4
            && parts[1] == "0"
            && parts[2] == target.to_string()
            && parts[3] == "0";
        if !at_target {
            continue;
        }
        let block = std::fs::read_dir(entry.path().join("block")).ok()?;
        if let Some(disk) = block.flatten().next() {
            return disk.file_name().to_str().map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_is_found_by_its_target_not_its_order() {
        let sysfs = tempfile::tempdir().unwrap();
        for (address, disk) in [("0:0:0:0", "sda"), ("0:0:2:0", "sdb"), ("1:0:12:0", "sdc")] {
            std::fs::create_dir_all(sysfs.path().join(address).join("block").join(disk)).unwrap();
        }
        // A host adapter's own entry and a LUN other than 0 are not disks.
        std::fs::create_dir_all(sysfs.path().join("host0")).unwrap();
        std::fs::create_dir_all(sysfs.path().join("0:0:5:1/block/sdd")).unwrap();
        assert_eq!(disk_at(sysfs.path(), 2).as_deref(), Some("sdb"));
        assert_eq!(disk_at(sysfs.path(), 12).as_deref(), Some("sdc"));
        assert_eq!(disk_at(sysfs.path(), 0).as_deref(), Some("sda"));
        assert_eq!(disk_at(sysfs.path(), 5), None);
        assert_eq!(disk_at(sysfs.path(), 1), None);
    }
}

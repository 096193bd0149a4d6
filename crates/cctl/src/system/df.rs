//! `cctl system df`: what the state root holds on disk, and what
//! `cctl system prune` would free, as Docker's `system df` shows it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use containerization::{ContainerStore, StateRoot};
use containerization_oci::store::ImageStore;

use crate::image::bytes;

/// One line of the table.
struct Line {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

/// Prints the table: images (their blobs), containers (their folders:
/// writable disk and logs), the root file systems built from images, and
/// the VM templates containers start from.
pub fn df(root: &StateRoot) -> anyhow::Result<()> {
    let store = ImageStore::open(root.path())?;
    let containers = ContainerStore::new(root.path().join("containers"), root.run_dir());
    let usage = store.usage()?;
    let images = store.list()?;
    let mut active_images = 0;
    for image in &images {
        let digest = image.descriptor.digest().to_string();
        if !containers.using_image(&image.name, &digest)?.is_empty() {
            active_images += 1;
        }
    }
    let mut container_line = Line {
        kind: "Containers",
        total: 0,
        active: 0,
        size: 0,
        reclaimable: 0,
    };
    for (config, state) in containers.list()? {
        let size = allocated(&containers.dir(&config.id));
        container_line.total += 1;
        container_line.size += size;
        if state.is_running() {
            container_line.active += 1;
        } else {
            container_line.reclaimable += size;
        }
    }
    for damaged in containers.list_damaged()? {
        let size = allocated(&containers.dir(&damaged.id));
        container_line.total += 1;
        container_line.size += size;
        container_line.reclaimable += size;
    }
    let rootfs = containerization::rootfs::usage(root)?;
    let templates = containerization_vmm::TemplateCache::new(root.path().join("templates")).usage();
    let lines = [
        Line {
            kind: "Images",
            total: images.len(),
            active: active_images,
            size: usage.bytes,
            reclaimable: usage.unreachable_bytes,
        },
        container_line,
        Line {
            kind: "Root file systems",
            total: rootfs.bases,
            active: rootfs.active,
            size: rootfs.bytes,
            reclaimable: rootfs.reclaimable,
        },
        // Like Docker's build cache: made again on demand, so all of it is
        // reclaimable (VMs restored from one run on without it).
        Line {
            kind: "VM templates",
            total: templates.templates,
            active: 0,
            size: templates.bytes,
            reclaimable: templates.bytes,
        },
    ];
    println!(
        "{:<18} {:<8} {:<8} {:<12} RECLAIMABLE",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    for line in lines {
        let share = (line.size > 0).then(|| line.reclaimable * 100 / line.size);
        let reclaimable = match share {
            Some(share) => format!("{} ({share}%)", bytes(line.reclaimable)),
            None => bytes(line.reclaimable),
        };
        println!(
            "{:<18} {:<8} {:<8} {:<12} {reclaimable}",
            line.kind,
            line.total,
            line.active,
            bytes(line.size)
        );
    }
    Ok(())
}

/// Bytes the files under `dir` take on disk (sparse disks count what they
/// hold, not their size).
pub fn allocated(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                todo.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

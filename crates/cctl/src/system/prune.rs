//! `cctl system prune`: removes what nothing uses, as Docker's does:
//! stopped containers (damaged ones too), stopped pods, networks no
//! container or pod is configured on (but `default`), with `--all` images no container was made
//! from, then the blobs no image needs and the root file systems no image or
//! container needs (with what killed pulls and builds left), and the VM
//! templates (made again on demand). It writes no state of its own, so it
//! works on a full disk.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use containerization::network::NetworkManager;
use containerization::pod::PodStore;
use containerization::{ContainerManager, ContainerStore, StateRoot};
use containerization_netlink::Netlink;
use containerization_oci::store::ImageStore;

use super::df::allocated;
use crate::image::bytes;

/// The network every container joins by default: kept, as Docker keeps its
/// predefined ones.
const DEFAULT_NETWORK: &str = "default";

/// Runs the prune: asks first unless `force`.
pub fn prune(root: &StateRoot, all: bool, force: bool) -> anyhow::Result<()> {
    if !force && !confirmed(all)? {
        println!("nothing removed");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut freed = 0u64;

    let manager = ContainerManager::new(root.clone(), root.tools_bin().join("vminitd"));
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    let stopped = manager
        .list()?
        .into_iter()
        .filter(|(_, state)| !state.is_running())
        .map(|(config, _)| config.id)
        .chain(manager.list_damaged()?.into_iter().map(|d| d.id));
    for id in stopped.collect::<Vec<_>>() {
        let size = allocated(&manager.store().dir(&id));
        match runtime.block_on(manager.remove(id.as_str(), false)) {
            Ok(()) => {
                freed += size;
                removed.push(id.to_string());
            }
            Err(error) => failures.push(format!("container {id}: {error}")),
        }
    }
    section("Deleted Containers", &removed);

    // Stopped pods, as Podman's prune removes them (their containers have
    // just gone).
    let mut removed = Vec::new();
    for (config, _) in manager.list_pods()? {
        let pod = manager.get_pod(config.id.as_str())?;
        if pod.state()?.is_running() {
            continue;
        }
        match runtime.block_on(pod.delete(false)) {
            Ok(()) => removed.push(config.id.to_string()),
            Err(error) => failures.push(format!("pod {}: {error}", config.name)),
        }
    }
    section("Deleted Pods", &removed);

    // Networks need root (bridges); without it there are none of ours to remove.
    let containers = ContainerStore::new(root.path().join("containers"), root.run_dir());
    let pods = PodStore::new(root.path().join("pods"), root.run_dir());
    let mut removed = Vec::new();
    if rustix::process::geteuid().is_root() {
        runtime.block_on(async {
            let networks = NetworkManager::new(root.network_dir(), Netlink::connect()?);
            for network in networks.list()? {
                if network.name == DEFAULT_NETWORK
                    || !containers.using_network(&network.name)?.is_empty()
                    || !pods.using_network(&network.name)?.is_empty()
                {
                    continue;
                }
                match networks.remove(&network.name).await {
                    Ok(()) => removed.push(network.name),
                    Err(error) => failures.push(format!("network {}: {error}", network.name)),
                }
            }
            anyhow::Ok(())
        })?;
    }
    section("Deleted Networks", &removed);

    let store = ImageStore::open(root.path())?;
    let mut removed = Vec::new();
    if all {
        for image in store.list()? {
            let digest = image.descriptor.digest().to_string();
            if containers.using_image(&image.name, &digest)?.is_empty() {
                store.untag(&image.name)?;
                removed.push(format!("untagged: {}", image.name));
            }
        }
    }
    let report = store.prune()?;
    removed.extend(report.removed.iter().map(|d| format!("deleted: {d}")));
    freed += report.freed_bytes;
    section("Deleted Images", &removed);

    let rootfs = crate::image::collect_rootfs(root, &report)?;
    freed += rootfs.freed_bytes;
    let mut removed: Vec<String> = rootfs.removed.iter().map(|d| d.to_string()).collect();
    removed.extend(rootfs.temporaries.iter().map(|p| p.display().to_string()));
    section("Deleted Root File Systems", &removed);

    let templates =
        containerization_vmm::TemplateCache::new(root.path().join("templates")).remove_all();
    freed += templates.bytes;
    if templates.templates > 0 {
        println!("Deleted VM templates: {}\n", templates.templates);
    }
    println!("Total reclaimed space: {}", bytes(freed));
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "some things could not be removed:\n  {}",
            failures.join("\n  ")
        )
    }
}

/// Docker's warning and question; true when the user answers yes.
fn confirmed(all: bool) -> anyhow::Result<bool> {
    let mut text = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  \
         - all networks not used by at least one container (but the default one)\n",
    );
    if all {
        text.push_str("  - all images without at least one container associated to them\n");
    }
    text.push_str(
        "  - all blobs and root file systems no image or container needs\n  \
         - all VM templates (the next start of each kind of VM makes its own)\n\
         Are you sure you want to continue? [y/N] ",
    );
    let mut out = std::io::stdout();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    let mut answer = String::new();
    let stdin = std::io::stdin();
    if stdin.lock().read_line(&mut answer)? == 0 && !stdin.is_terminal() {
        println!();
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// A heading and its lines, when there are any.
fn section(heading: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!("{heading}:");
    for line in lines {
        println!("{line}");
    }
    println!();
}

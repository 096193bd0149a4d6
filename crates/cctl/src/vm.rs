//! `cctl vm …`: the VM playground. `cctl vm boot` boots a VM with vminitd,
//! says how long the agent took to answer, prints the guest's `uname -a`
//! (the agent's `uname(2)`) and shuts the VM down.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use containerization::StateRoot;
use containerization_vmm::{
    DiskConfig, Hypervisor, Qemu, VirtualMachine, VmConfig, VsockBackend, build_initramfs,
};

/// Subcommands of `cctl vm`.
#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Boot a VM with vminitd, time it, run `uname -a` in it and shut it down.
    Boot(BootArgs),
}

/// Flags of `cctl vm boot`.
#[derive(Debug, Args)]
pub struct BootArgs {
    /// The catalogue kernel (see `cctl kernel ls`); the default kernel when unset.
    #[arg(long)]
    kernel: Option<String>,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 256)]
    memory: u32,
    /// A disk image (raw or qcow2) to attach; repeat for more (`/dev/vda`, `/dev/vdb`, ...).
    #[arg(long = "disk")]
    disks: Vec<PathBuf>,
}

impl VmCommand {
    /// Runs the subcommand.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        match self {
            Self::Boot(args) => {
                let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
                runtime.block_on(boot(root, args))
            }
        }
    }
}

async fn boot(root: &StateRoot, args: BootArgs) -> anyhow::Result<()> {
    let catalogue = root.kernels();
    let kernel = match &args.kernel {
        Some(name) => catalogue.get(name)?,
        None => catalogue.default_kernel()?.0,
    };
    let vminitd = root.find_vminitd()?;
    let initramfs = build_initramfs(&kernel, &vminitd, &root.path().join("initramfs"))?;
    let run_dir = tempfile::Builder::new()
        .prefix("cctl-vm-")
        .tempdir()
        .context("cannot make a run folder")?;
    let (vsock, _) = VsockBackend::detect(root.tools_bin().join("vhost-device-vsock"));
    let mut config = VmConfig::new(kernel.clone(), initramfs, run_dir.path(), vsock);
    config.cpus = args.cpus;
    config.memory_mib = args.memory;
    for disk in &args.disks {
        config.disks.push(DiskConfig::new(disk));
    }
    println!(
        "booting {} ({} CPU, {} MiB, {})",
        kernel.name(),
        config.cpus,
        config.memory_mib,
        config.accel
    );
    let started = Instant::now();
    let mut vm = Qemu::default().start(&config).await?;
    println!("agent ready after {:.2} s", started.elapsed().as_secs_f64());
    let uname = run_uname(&vm).await;
    let stopping = Instant::now();
    let outcome = vm.stop(Duration::from_secs(20)).await;
    match uname {
        Ok(text) => print!("guest: {text}"),
        Err(err) => eprintln!("uname -a in the guest failed: {err:#}"),
    }
    println!(
        "stopped ({outcome:?}) in {:.2} s",
        stopping.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `uname -a` of the guest: the agent answers with its `uname(2)` fields.
async fn run_uname(vm: &containerization_vmm::QemuVm) -> anyhow::Result<String> {
    let agent = vm.agent().context("no agent")?;
    let v = agent.version().await?;
    Ok(format!(
        "{} {} {} {} {}\n",
        v.sysname, v.nodename, v.release, v.version, v.machine
    ))
}

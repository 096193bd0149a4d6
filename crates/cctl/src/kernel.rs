//! `cctl kernel …`: the guest kernel catalogue.

use anyhow::Context;
use clap::Subcommand;
use containerization::StateRoot;
use containerization_vmm::{Kernel, KernelImageFormat};

/// Subcommands of `cctl kernel`.
#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// List the kernels in the catalogue.
    Ls,
}

impl KernelCommand {
    /// Runs the subcommand.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        match self {
            Self::Ls => {
                let catalogue = root.kernels();
                let kernels = catalogue
                    .list()
                    .context("cannot list the kernel catalogue")?;
                if kernels.is_empty() {
                    println!(
                        "no kernels in {}; run scripts/setup to install one",
                        catalogue.dir().display()
                    );
                    return Ok(());
                }
                println!("{:<32} {:<8} {:<28} MODULES", "NAME", "FORMAT", "RELEASE");
                for kernel in &kernels {
                    println!("{}", describe(kernel)?);
                }
                Ok(())
            }
        }
    }
}

/// One line about `kernel`: name, image format, release, whether it has modules.
pub fn describe(kernel: &Kernel) -> anyhow::Result<String> {
    let format = match kernel.format() {
        KernelImageFormat::BzImage => "bzImage",
        KernelImageFormat::Elf => "vmlinux",
    };
    let release = kernel.release()?.unwrap_or_else(|| "-".to_owned());
    let modules = if kernel.modules_dir().is_some() {
        "yes"
    } else {
        "no"
    };
    Ok(format!(
        "{:<32} {format:<8} {release:<28} {modules}",
        kernel.name()
    ))
}

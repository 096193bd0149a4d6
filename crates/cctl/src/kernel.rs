//! `cctl kernel …`: the guest kernel catalogue.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use containerization::StateRoot;
use containerization_vmm::{Kernel, KernelImageFormat, NewKernel};

/// Subcommands of `cctl kernel`.
#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// List the kernels in the catalogue.
    Ls,
    /// Add a kernel image (bzImage, or an ELF vmlinux with a PVH entry).
    Add {
        /// The name to give it in the catalogue.
        name: String,
        /// The kernel image.
        image: PathBuf,
        /// Its module tree (/lib/modules/<release>, after depmod), when
        /// virtio or vsock are modules.
        #[arg(long)]
        modules: Option<PathBuf>,
        /// Its build configuration.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Its release (`uname -r`); read from the image when not given.
        #[arg(long)]
        release: Option<String>,
    },
    /// Remove a kernel from the catalogue.
    Rm {
        /// Its name.
        name: String,
    },
    /// Show the default kernel, or make NAME the default.
    Default {
        /// The kernel to boot when none is named.
        name: Option<String>,
    },
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
            Self::Add {
                name,
                image,
                modules,
                config,
                release,
            } => {
                let new = NewKernel {
                    image,
                    modules,
                    config,
                    release,
                };
                let kernel = root.kernels().add(&name, &new)?;
                println!("added {}", describe(&kernel)?);
                Ok(())
            }
            Self::Rm { name } => {
                root.kernels().remove(&name)?;
                println!("removed {name}");
                Ok(())
            }
            Self::Default { name: Some(name) } => {
                root.kernels().set_default(&name)?;
                println!("default kernel: {name}");
                Ok(())
            }
            Self::Default { name: None } => {
                let (kernel, why) = root.kernels().default_kernel()?;
                println!("{} ({why})", kernel.name());
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

//! `cctl volume …`: named volumes (ext4 disk images that outlive containers).

use clap::Subcommand;
use containerization::{ContainerManager, StateRoot};

/// Subcommands of `cctl volume`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (nothing happens when it exists).
    Create {
        /// Its name: letters, digits, `_`, `.` and `-`.
        name: String,
    },
    /// List the volumes.
    Ls,
    /// Show volumes as JSON, as `docker volume inspect` does.
    Inspect {
        /// The volumes' names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes and their data (refused while a container uses one).
    Rm {
        /// The volumes' names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every volume no container uses.
    Prune {
        /// Do not ask (there is no question: kept for Docker's syntax).
        #[arg(short, long)]
        force: bool,
    },
}

impl VolumeCommand {
    /// Runs the subcommand.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        let manager = ContainerManager::new(root.clone(), root.tools_bin().join("vminitd"));
        let volumes = manager.volumes();
        match self {
            Self::Create { name } => {
                let volume = volumes.create(&name)?;
                println!("{}", volume.name);
            }
            Self::Ls => {
                println!("{:<10} VOLUME NAME", "DRIVER");
                for volume in volumes.list()? {
                    println!("{:<10} {}", "local", volume.name);
                }
            }
            Self::Inspect { names } => {
                let mut all = Vec::new();
                for name in names {
                    let volume = volumes
                        .get(&name)?
                        .ok_or_else(|| anyhow::anyhow!("no such volume: {name}"))?;
                    let used =
                        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&volume.disk)?)
                            * 512;
                    all.push(serde_json::json!({
                        "Name": volume.name,
                        "Driver": "local",
                        "Mountpoint": volume.disk,
                        "CreatedAt": crate::clock::rfc3339_millis(Some(volume.created_ms)),
                        "Scope": "local",
                        "Size": containerization::volume::VOLUME_BYTES,
                        "UsedBytes": used,
                        "UsedBy": manager.store().volume_users(&volume.name)?,
                    }));
                }
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
            Self::Rm { names } => {
                for name in names {
                    manager.remove_volume(&name)?;
                    println!("{name}");
                }
            }
            Self::Prune { force: _ } => {
                for name in manager.prune_volumes()? {
                    println!("{name}");
                }
            }
        }
        Ok(())
    }
}

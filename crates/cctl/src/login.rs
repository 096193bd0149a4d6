//! `cctl login` and `cctl logout`: credentials in `<state root>/credentials.json`
//! (mode 0600), checked against the registry before they are saved.

use std::io::BufRead;

use anyhow::Context;
use clap::Args;
use containerization::StateRoot;
use containerization_oci::registry::{Credential, CredentialStore};
use containerization_oci::{DEFAULT_REGISTRY, Reference};

use crate::image::{RegistryOptions, client};

/// `cctl login`.
#[derive(Debug, Args)]
pub struct LoginCommand {
    /// The registry (`127.0.0.1:5000`); Docker Hub by default.
    server: Option<String>,
    /// The user name.
    #[arg(short, long)]
    username: String,
    /// The password (prefer --password-stdin: arguments are visible to others).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryOptions,
}

/// `cctl logout`.
#[derive(Debug, Args)]
pub struct LogoutCommand {
    /// The registry; Docker Hub by default.
    server: Option<String>,
}

fn server_reference(server: Option<&str>) -> anyhow::Result<Reference> {
    let server = server.unwrap_or(DEFAULT_REGISTRY);
    Ok(format!("{server}/login/check").parse()?)
}

impl LoginCommand {
    /// Checks the credentials with the registry, then saves them.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        let password = match (self.password, self.password_stdin) {
            (Some(p), _) => p,
            (None, true) => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password")?;
                line.trim_end_matches(['\n', '\r']).to_owned()
            }
            (None, false) => anyhow::bail!("give the password with --password-stdin or --password"),
        };
        let reference = server_reference(self.server.as_deref())?;
        let credential = Credential {
            username: self.username,
            password,
        };
        // Check against the registry with only these credentials.
        let scratch = tempfile::tempdir().context("cannot create a temporary folder")?;
        let check = CredentialStore {
            own_file: Some(scratch.path().join("credentials.json")),
            docker_config: None,
            given: None,
        };
        check.login(reference.registry(), &credential)?;
        let client = client(
            &StateRoot::new(scratch.path()),
            &self.registry,
            &reference,
            None,
        )?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(client.ping(reference.registry(), reference.api_host()))?;
        CredentialStore::standard(root.path()).login(reference.registry(), &credential)?;
        println!("Login succeeded for {}", reference.registry());
        Ok(())
    }
}

impl LogoutCommand {
    /// Forgets the credentials.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        let reference = server_reference(self.server.as_deref())?;
        if CredentialStore::standard(root.path()).logout(reference.registry())? {
            println!("Removed the credentials for {}", reference.registry());
        } else {
            println!("Not logged in to {}", reference.registry());
        }
        Ok(())
    }
}

//! `cctl cp`: Docker's `docker cp` between the host and a container,
//! running or stopped. One side names the container (`CONTAINER:PATH`),
//! the other a host path or `-` (a tar stream on standard input or output).

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use containerization::{ContainerManager, CopyOptions};

/// `cctl cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Keep the source's owners (uid and gid).
    #[arg(short, long)]
    archive: bool,
    /// Follow a symlink named as the source.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar stream on standard input).
    #[arg(allow_hyphen_values = true)]
    source: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar stream on standard output).
    #[arg(allow_hyphen_values = true)]
    destination: String,
}

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
enum Side {
    /// A path in a container.
    Container { name: String, path: String },
    /// A host path.
    Host(PathBuf),
    /// Standard input or output, as a tar stream.
    Stream,
}

/// Docker's reading of an argument: `-`, a host path (anything starting
/// with `/` or `.`, or without `:`), or `CONTAINER:PATH`.
fn side(argument: &str) -> Side {
    if argument == "-" {
        return Side::Stream;
    }
    if argument.starts_with('/') || argument.starts_with('.') {
        return Side::Host(PathBuf::from(argument));
    }
    match argument.split_once(':') {
        Some((name, path)) if !name.is_empty() => Side::Container {
            name: name.to_owned(),
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
        },
        _ => Side::Host(PathBuf::from(argument)),
    }
}

/// Runs `cctl cp`; its exit code.
pub async fn cp(manager: &ContainerManager, args: CpArgs) -> anyhow::Result<i32> {
    let options = CopyOptions {
        archive: args.archive,
        follow_link: args.follow_link,
    };
    match (side(&args.source), side(&args.destination)) {
        (Side::Container { name, path }, Side::Host(host)) => {
            let container = manager.get(&name)?;
            container
                .copy_to_host(&absolute(&path), &host, &options)
                .await?;
        }
        (Side::Container { name, path }, Side::Stream) => {
            let container = manager.get(&name)?;
            container
                .copy_out_archive(&absolute(&path), std::io::stdout(), &options)
                .await?;
        }
        (Side::Host(host), Side::Container { name, path }) => {
            let container = manager.get(&name)?;
            container
                .copy_from_host(&host, &absolute(&path), &options)
                .await?;
        }
        (Side::Stream, Side::Container { name, path }) => {
            let container = manager.get(&name)?;
            container
                .copy_in_archive(std::io::stdin(), &absolute(&path), &options)
                .await?;
        }
        (Side::Container { .. }, Side::Container { .. }) => {
            bail!("copying between containers is not supported: one side must be a host path or -")
        }
        _ => bail!(
            "must specify at least one container source: use CONTAINER:PATH for the source or \
             the destination"
        ),
    }
    Ok(0)
}

/// A container path made absolute (Docker takes a relative one from `/`).
fn absolute(path: &str) -> String {
    match path.starts_with('/') {
        true => path.to_owned(),
        false => format!("/{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_read_as_docker_reads_them() {
        assert_eq!(side("-"), Side::Stream);
        assert_eq!(side("./a:b"), Side::Host("./a:b".into()));
        assert_eq!(side("/x"), Side::Host("/x".into()));
        assert_eq!(
            side("web:/etc"),
            Side::Container {
                name: "web".into(),
                path: "/etc".into()
            }
        );
        assert_eq!(absolute("etc/hosts"), "/etc/hosts");
    }
}

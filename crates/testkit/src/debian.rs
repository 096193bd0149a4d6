//! A realistic root file system: a minimal Debian made by `debootstrap`.
//!
//! Built once (`--variant=minbase`, the release and mirror this machine's apt
//! uses) into the test cache, for benchmarks and large tests. The first build
//! downloads about 40 MB and takes a few minutes; later calls return at once.

use std::path::PathBuf;
use std::process::Command;

use crate::cache::build_once;
use crate::command::{run, stdout};
use crate::{Error, Result};

const RECIPE: &str = "debian minbase v1";

/// The root of the cached minimal Debian, built first if needed. Needs root.
pub fn debian_rootfs() -> Result<PathBuf> {
    let codename = codename()?;
    let mirror = mirror(&codename)?;
    let version = stdout(Command::new("dpkg-query").args(["-W", "-f=${Version}", "debootstrap"]))?;
    let recipe = format!("{RECIPE}\n{codename}\n{mirror}\ndebootstrap {version}");
    let dir = build_once("debian-minbase", &recipe, |dir| {
        run(Command::new("debootstrap")
            .args(["--variant=minbase", &codename])
            .arg(dir.join("rootfs"))
            .arg(&mirror))?;
        Ok(())
    })?;
    Ok(dir.join("rootfs"))
}

/// This machine's Debian release name, from `/etc/os-release`.
fn codename() -> Result<String> {
    let text = std::fs::read_to_string("/etc/os-release").map_err(|source| Error::Io {
        action: "cannot read",
        path: "/etc/os-release".into(),
        source,
    })?;
    text.lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Unexpected("/etc/os-release names no VERSION_CODENAME".into()))
}

/// The mirror apt uses for `<codename>/main`, from `apt-cache policy`.
fn mirror(codename: &str) -> Result<String> {
    let policy = stdout(Command::new("apt-cache").arg("policy"))?;
    let suite = format!("{codename}/main");
    policy
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let _priority = words.next()?;
            let url = words.next()?;
            (words.next()? == suite).then(|| url.to_owned())
        })
        .find(|url| url.starts_with("http"))
        .ok_or_else(|| {
            Error::Unexpected(format!(
                "apt has no mirror for {suite}; run apt-get update (scripts/setup does)"
            ))
        })
}

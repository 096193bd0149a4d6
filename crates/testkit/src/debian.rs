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

/// Bump when the foreign recipe changes in a way the inputs do not show.
const FOREIGN_RECIPE: &str = "debian minbase foreign v1";

/// The root of a cached minimal Debian of Debian architecture `arch`
/// (`arm64`, ...), built first if needed. Needs root and Linux 6.7 or newer.
///
/// `debootstrap --foreign` unpacks the packages on the host; the second
/// stage runs their maintainer scripts under Debian's `qemu-<arch>-static`,
/// handed the foreign binaries by a binfmt_misc of a user namespace of its
/// own (each user namespace has its own since Linux 6.7), so nothing is
/// registered on the host. The entry is Debian's own (from
/// `/usr/lib/binfmt.d/`). The namespace maps every uid and gid to itself, so
/// files keep their owners; it cannot make device nodes, so debootstrap is
/// told it runs in a container (`container=lxc`, its own switch for that),
/// and the nodes the first stage made as real root stay.
pub fn foreign_debian_rootfs(arch: &str) -> Result<PathBuf> {
    let codename = codename()?;
    let mirror = mirror(&codename)?;
    let version = stdout(Command::new("dpkg-query").args(["-W", "-f=${Version}", "debootstrap"]))?;
    let (qemu, entry) = binfmt_entry(arch)?;
    let recipe =
        format!("{FOREIGN_RECIPE}\n{arch}\n{codename}\n{mirror}\ndebootstrap {version}\n{entry}");
    let dir = build_once(&format!("debian-minbase-{arch}"), &recipe, |dir| {
        let root = dir.join("rootfs");
        run(Command::new("debootstrap")
            .args([
                "--foreign",
                &format!("--arch={arch}"),
                "--variant=minbase",
                &codename,
            ])
            .arg(&root)
            .arg(&mirror))?;
        second_stage(&root, &entry, &qemu)
    })?;
    Ok(dir.join("rootfs"))
}

/// Debian's binfmt_misc line for `arch`'s emulator, made to run the static
/// emulator by its path with the `F` flag; and the emulator's path.
fn binfmt_entry(arch: &str) -> Result<(PathBuf, String)> {
    let qemu_name = match arch {
        "arm64" => "aarch64",
        "armhf" | "armel" => "arm",
        "ppc64el" => "ppc64le",
        "mips64el" => "mips64el",
        "s390x" => "s390x",
        other => return Err(Error::Unexpected(format!("no emulator known for {other}"))),
    };
    let conf = PathBuf::from(format!("/usr/lib/binfmt.d/qemu-{qemu_name}.conf"));
    let text = std::fs::read_to_string(&conf).map_err(|source| Error::Io {
        action: "cannot read (install qemu-user-static; scripts/setup does)",
        path: conf.clone(),
        source,
    })?;
    // :name:type:offset:magic:mask:interpreter:flags
    let fields: Vec<&str> = text.trim().split(':').collect();
    if fields.len() != 8 {
        return Err(Error::Unexpected(format!(
            "{}: not a binfmt_misc line",
            conf.display()
        )));
    }
    let qemu = PathBuf::from(format!("/usr/bin/qemu-{qemu_name}-static"));
    let entry = format!(
        ":{}:{}:{}:{}:{}:{}:F",
        fields[1],
        fields[2],
        fields[3],
        fields[4],
        fields[5],
        qemu.display()
    );
    Ok((qemu, entry))
}

/// Runs debootstrap's second stage in `root` with `entry` registered in a
/// binfmt_misc of a new user namespace.
fn second_stage(root: &std::path::Path, entry: &str, qemu: &std::path::Path) -> Result<()> {
    use std::io::Write;
    if !qemu.is_file() {
        return Err(Error::NotSetUp {
            what: "Debian's qemu-user-static",
            path: qemu.to_path_buf(),
        });
    }
    let script = format!(
        "read go && mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && \
         printf '%s' '{entry}' > /proc/sys/fs/binfmt_misc/register && \
         container=lxc exec chroot '{}' /debootstrap/debootstrap --second-stage",
        root.display()
    );
    let mut child = Command::new("unshare")
        .args([
            "--user",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
        ])
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| Error::Io {
            action: "cannot start",
            path: "unshare".into(),
            source,
        })?;
    // The namespace's owner maps every id to itself before the child goes
    // on, once unshare has made the namespace.
    let pid = child.id();
    let ours = std::fs::read_link("/proc/self/ns/user").ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{pid}/ns/user")).ok() == ours {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err(Error::Unexpected("unshare made no user namespace".into()));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for map in ["uid_map", "gid_map"] {
        let path = PathBuf::from(format!("/proc/{pid}/{map}"));
        std::fs::write(&path, "0 0 4294967295\n").map_err(|source| Error::Io {
            action: "cannot write",
            path,
            source,
        })?;
    }
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"go\n");
    }
    let status = child.wait().map_err(|source| Error::Io {
        action: "cannot wait for",
        path: "unshare".into(),
        source,
    })?;
    if !status.success() {
        return Err(Error::Unexpected(format!(
            "debootstrap's second stage in {} failed: {status}",
            root.display()
        )));
    }
    Ok(())
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

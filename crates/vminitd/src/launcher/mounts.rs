//! The container's file system view: the spec's mounts under the rootfs, a
//! populated `/dev`, then `pivot_root` into it.
//!
//! Runs in the launcher's last stage, in the container's new mount
//! namespace, whose mounts are made private first so nothing done here
//! propagates back to the guest (or, in host tests, to the host).

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};
use rustix::fs::{FileType, Mode};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use super::channel::{Failure, FailureKind};

/// Character devices every container's `/dev` gets: name, major, minor.
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The links every container's `/dev` gets: name, target.
const LINKS: [(&str, &str); 6] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// Mounts the spec's mounts under `rootfs`, fills `/dev`, and makes `rootfs`
/// the root. Returns warnings for mounts skipped on purpose.
pub(crate) fn enter_rootfs(spec: &Spec, rootfs: &Path) -> Result<Vec<String>, Failure> {
    let mut warnings = Vec::new();
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| Failure::io("make / private", &e.into()))?;
    // pivot_root needs the new root to be a mount point.
    rustix::mount::mount_bind_recursive(rootfs, rootfs)
        .map_err(|e| Failure::io(format!("bind {}", rootfs.display()), &e.into()))?;
    let root = rootfs
        .canonicalize()
        .map_err(|e| Failure::io(format!("rootfs {}", rootfs.display()), &e))?;
    let mut dev_is_tmpfs = false;
    for mount in spec.mounts().as_deref().unwrap_or_default() {
        if mount.destination() == Path::new("/dev") && mount.typ().as_deref() == Some("tmpfs") {
            dev_is_tmpfs = true;
        }
        if let Some(warning) = mount_one(&root, mount)? {
            warnings.push(warning);
        }
        if mount.destination() == Path::new("/dev") && dev_is_tmpfs {
            populate_dev(&root.join("dev"))?;
        }
    }
    pivot(&root)?;
    Ok(warnings)
}

/// Remounts `/` read-only when the spec says so (after every other mount).
pub(crate) fn finish_root(spec: &Spec) -> Result<(), Failure> {
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        rustix::mount::mount_remount("/", MountFlags::BIND | MountFlags::RDONLY, "")
            .map_err(|e| Failure::io("remount / read-only", &e.into()))?;
    }
    Ok(())
}

/// Where `destination` lies under `root`, created when missing (a folder, or
/// a file when `file`), and refused when a symlink leads out of `root`.
pub(crate) fn target(root: &Path, destination: &Path, file: bool) -> Result<PathBuf, Failure> {
    let invalid = |why: &str| {
        Failure::new(
            FailureKind::InvalidArgument,
            format!("mount destination {}: {why}", destination.display()),
        )
    };
    if !destination.is_absolute() {
        return Err(invalid("must be an absolute path"));
    }
    if destination
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(invalid("must not contain .."));
    }
    let relative = destination.strip_prefix("/").unwrap_or(destination);
    let count = relative.components().count();
    let mut current = root.to_path_buf();
    for (index, component) in relative.components().enumerate() {
        let next = current.join(component);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                // Resolve before going on, so a symlink is followed only
                // when it stays inside the rootfs: nothing is created outside.
                let resolved = next
                    .canonicalize()
                    .map_err(|e| Failure::io(format!("resolve {}", next.display()), &e))?;
                if !resolved.starts_with(root) {
                    return Err(invalid("a symlink leads out of the rootfs"));
                }
                current = resolved;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let made = if file && index + 1 == count {
                    std::fs::File::create(&next).map(drop)
                } else {
                    std::fs::create_dir(&next)
                };
                made.map_err(|e| Failure::io(format!("create {}", next.display()), &e))?;
                current = next;
            }
            Err(err) => return Err(Failure::io(format!("stat {}", next.display()), &err)),
        }
    }
    Ok(current)
}

/// Mount options as the OCI spec spells them (mount(8)'s words).
#[derive(Debug, PartialEq, Eq)]
struct Options {
    flags: MountFlags,
    propagation: MountPropagationFlags,
    bind: bool,
    data: Vec<String>,
}

fn parse_options(options: &[String]) -> Options {
    let mut out = Options {
        flags: MountFlags::empty(),
        propagation: MountPropagationFlags::empty(),
        bind: false,
        data: Vec::new(),
    };
    for option in options {
        let flag = match option.as_str() {
            "ro" => MountFlags::RDONLY,
            "nosuid" => MountFlags::NOSUID,
            "nodev" => MountFlags::NODEV,
            "noexec" => MountFlags::NOEXEC,
            "noatime" => MountFlags::NOATIME,
            "nodiratime" => MountFlags::NODIRATIME,
            "relatime" => MountFlags::RELATIME,
            "strictatime" => MountFlags::STRICTATIME,
            "sync" => MountFlags::SYNCHRONOUS,
            "dirsync" => MountFlags::DIRSYNC,
            "bind" => {
                out.bind = true;
                MountFlags::BIND
            }
            "rbind" => {
                out.bind = true;
                MountFlags::BIND | MountFlags::REC
            }
            "rw" | "suid" | "dev" | "exec" | "atime" | "diratime" | "defaults" | "async" => {
                MountFlags::empty()
            }
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable"
            | "runbindable" => {
                out.propagation |= propagation(option);
                MountFlags::empty()
            }
            other => {
                out.data.push(other.to_owned());
                MountFlags::empty()
            }
        };
        out.flags |= flag;
    }
    out
}

fn propagation(option: &str) -> MountPropagationFlags {
    let recursive = option.starts_with('r') && option != "rw";
    let base = match option.trim_start_matches('r') {
        "private" => MountPropagationFlags::PRIVATE,
        "slave" => MountPropagationFlags::DOWNSTREAM,
        "shared" => MountPropagationFlags::SHARED,
        _ => MountPropagationFlags::UNBINDABLE,
    };
    if recursive {
        base | MountPropagationFlags::REC
    } else {
        base
    }
}

fn mount_one(root: &Path, mount: &Mount) -> Result<Option<String>, Failure> {
    let options = parse_options(mount.options().as_deref().unwrap_or_default());
    let destination = mount.destination();
    // Bind mounts of files need a file to mount on.
    let source = mount.source().clone().unwrap_or_default();
    let file_source = options.bind && source.is_file();
    let target = target(root, destination, file_source)?;
    let mut typ = mount.typ().clone().unwrap_or_else(|| "none".to_owned());
    // The guest is cgroup v2 only: "cgroup" means the unified hierarchy.
    if typ == "cgroup" {
        typ = "cgroup2".to_owned();
    }
    let step = |what: &str| format!("mount {} ({typ}) on {}", what, destination.display());
    if options.bind {
        let bind = if options.flags.contains(MountFlags::REC) {
            rustix::mount::mount_bind_recursive(&source, &target)
        } else {
            rustix::mount::mount_bind(&source, &target)
        };
        bind.map_err(|e| Failure::io(step(&source.display().to_string()), &e.into()))?;
        let extra = options.flags - MountFlags::BIND - MountFlags::REC;
        if !extra.is_empty() {
            rustix::mount::mount_remount(&target, extra | MountFlags::BIND, "")
                .map_err(|e| Failure::io(step("remount"), &e.into()))?;
        }
    } else {
        let data = std::ffi::CString::new(options.data.join(",")).map_err(|_| {
            Failure::new(
                FailureKind::InvalidArgument,
                step("options with a NUL byte"),
            )
        })?;
        let result = rustix::mount::mount(
            source.as_path(),
            &target,
            typ.as_str(),
            options.flags,
            data.as_c_str(),
        );
        if let Err(err) = result {
            // A cgroup2 mount can fail where the host keeps its controllers
            // in v1 and the namespace is odd; the container still runs.
            if typ == "cgroup2" {
                return Ok(Some(format!(
                    "{} skipped: {}",
                    step("cgroup2"),
                    super::channel::describe_errno(&err.into())
                )));
            }
            return Err(Failure::io(
                step(&source.display().to_string()),
                &err.into(),
            ));
        }
    }
    if !options.propagation.is_empty() {
        rustix::mount::mount_change(&target, options.propagation)
            .map_err(|e| Failure::io(step("propagation"), &e.into()))?;
    }
    Ok(None)
}

/// Creates the standard device nodes and links in a fresh `/dev` tmpfs.
fn populate_dev(dev: &Path) -> Result<(), Failure> {
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        let made = rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(major, minor),
        );
        if made.is_err() {
            // Where mknod is refused, the guest's own node serves.
            std::fs::File::create(&path)
                .map_err(|e| Failure::io(format!("create {}", path.display()), &e))?;
            rustix::mount::mount_bind(Path::new("/dev").join(name), &path)
                .map_err(|e| Failure::io(format!("bind /dev/{name}"), &e.into()))?;
        }
        // mknod is subject to the umask; the nodes must be 0666.
        let _ = rustix::fs::chmod(&path, Mode::from_raw_mode(0o666));
    }
    for (name, link) in LINKS {
        let path = dev.join(name);
        match std::os::unix::fs::symlink(link, &path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(Failure::io(format!("link {}", path.display()), &err)),
        }
    }
    Ok(())
}

/// Makes `root` the root of this mount namespace and detaches the old one.
fn pivot(root: &Path) -> Result<(), Failure> {
    rustix::process::chdir(root).map_err(|e| Failure::io("chdir rootfs", &e.into()))?;
    // pivot_root(".", ".") stacks the old root on the new one; unmounting
    // "." then drops the old root without needing a folder for it.
    match rustix::process::pivot_root(".", ".") {
        Ok(()) => {}
        // `/` is the kernel's rootfs, which can never be pivoted away from.
        // vminitd leaves it at boot (switch_root); a chroot instead would be
        // escapable, so the container is refused.
        Err(rustix::io::Errno::INVAL) => {
            return Err(Failure::new(
                FailureKind::Other,
                "pivot_root refused the rootfs: the guest's / is not a mount (still the \
                 initramfs? vminitd moves onto a tmpfs at boot; see the console for why it \
                 could not); a chroot would be escapable, so the container is not started",
            ));
        }
        Err(err) => return Err(Failure::io("pivot_root", &err.into())),
    }
    rustix::mount::unmount(".", UnmountFlags::DETACH)
        .map_err(|e| Failure::io("detach the old root", &e.into()))?;
    rustix::process::chdir("/").map_err(|e| Failure::io("chdir /", &e.into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let options = parse_options(&[
            "nosuid".into(),
            "ro".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "rprivate".into(),
        ]);
        assert_eq!(options.flags, MountFlags::NOSUID | MountFlags::RDONLY);
        assert_eq!(options.data, ["mode=755", "size=65536k"]);
        assert_eq!(
            options.propagation,
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC
        );
        assert!(!options.bind);
    }

    #[test]
    fn destinations_cannot_climb_out() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        assert!(target(&root, Path::new("/a/../../etc"), false).is_err());
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        let err = target(&root, Path::new("/out/x"), false);
        assert!(err.is_err());
        let ok = target(&root, Path::new("/proc"), false).unwrap();
        assert_eq!(ok, root.join("proc"));
    }
}

//! Entering the container's namespaces: new ones for a container, the running
//! container's ones for an exec.
//!
//! Runs in the launcher, which is single-threaded (it is a fresh exec of
//! vminitd that never starts the async runtime), as `setns(2)` into a mount
//! namespace requires. A new PID namespace applies to the launcher's next
//! child, which is why the launcher forks after this step.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use super::channel::{Failure, FailureKind};

/// The namespaces the spec lists.
fn listed(spec: &Spec) -> Vec<LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|linux| linux.namespaces().clone())
        .unwrap_or_default()
}

/// Unshares the namespaces the spec asks for without a path and joins those
/// it names by path (`/proc/<pid>/ns/net`, a bind-mounted namespace).
pub(crate) fn create(spec: &Spec) -> Result<(), Failure> {
    let mut flags = UnshareFlags::empty();
    let mut joins = Vec::new();
    for namespace in listed(spec) {
        let typ = namespace.typ();
        match namespace.path() {
            Some(path) => joins.push((open(path)?, typ)),
            None => flags |= unshare_flag(typ)?,
        }
    }
    join(joins)?;
    // SAFETY: the launcher is single-threaded and shares no file table or
    // memory with another process, so unsharing cannot break an assumption
    // of other threads (the hazard rustix's `unshare_unsafe` warns about).
    unsafe { rustix::thread::unshare_unsafe(flags) }
        .map_err(|err| Failure::io(format!("unshare {flags:?}"), &err.into()))
}

/// Joins every namespace of the running process `init_pid` that the spec
/// lists (the mount namespace last: it changes how later paths resolve).
pub(crate) fn join_running(spec: &Spec, init_pid: i32) -> Result<(), Failure> {
    let mut joins = Vec::new();
    for namespace in listed(spec) {
        let typ = namespace.typ();
        let name = match typ {
            LinuxNamespaceType::Mount => "mnt",
            LinuxNamespaceType::Cgroup => "cgroup",
            LinuxNamespaceType::Uts => "uts",
            LinuxNamespaceType::Ipc => "ipc",
            LinuxNamespaceType::Pid => "pid",
            LinuxNamespaceType::Network => "net",
            LinuxNamespaceType::Time => "time",
            LinuxNamespaceType::User => continue,
        };
        let path = format!("/proc/{init_pid}/ns/{name}");
        joins.push((open(Path::new(&path))?, typ));
    }
    join(joins)
}

fn open(path: &Path) -> Result<OwnedFd, Failure> {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|err| Failure::io(format!("open namespace {}", path.display()), &err.into()))
}

fn join(mut joins: Vec<(OwnedFd, LinuxNamespaceType)>) -> Result<(), Failure> {
    joins.sort_by_key(|(_, typ)| *typ == LinuxNamespaceType::Mount);
    for (fd, typ) in joins {
        rustix::thread::move_into_link_name_space(fd.as_fd(), Some(link_type(typ)?))
            .map_err(|err| Failure::io(format!("setns {typ}"), &err.into()))?;
    }
    Ok(())
}

fn unshare_flag(typ: LinuxNamespaceType) -> Result<UnshareFlags, Failure> {
    Ok(match typ {
        LinuxNamespaceType::Mount => UnshareFlags::NEWNS,
        LinuxNamespaceType::Cgroup => UnshareFlags::NEWCGROUP,
        LinuxNamespaceType::Uts => UnshareFlags::NEWUTS,
        LinuxNamespaceType::Ipc => UnshareFlags::NEWIPC,
        LinuxNamespaceType::Pid => UnshareFlags::NEWPID,
        LinuxNamespaceType::Network => UnshareFlags::NEWNET,
        LinuxNamespaceType::Time => UnshareFlags::NEWTIME,
        LinuxNamespaceType::User => return Err(unsupported_user()),
    })
}

fn link_type(typ: LinuxNamespaceType) -> Result<LinkNameSpaceType, Failure> {
    Ok(match typ {
        LinuxNamespaceType::Mount => LinkNameSpaceType::Mount,
        LinuxNamespaceType::Cgroup => LinkNameSpaceType::ControlGroup,
        LinuxNamespaceType::Uts => LinkNameSpaceType::HostNameAndNISDomainName,
        LinuxNamespaceType::Ipc => LinkNameSpaceType::InterProcessCommunication,
        LinuxNamespaceType::Pid => LinkNameSpaceType::ProcessID,
        LinuxNamespaceType::Network => LinkNameSpaceType::Network,
        LinuxNamespaceType::Time => LinkNameSpaceType::Time,
        LinuxNamespaceType::User => return Err(unsupported_user()),
    })
}

fn unsupported_user() -> Failure {
    Failure::new(
        FailureKind::InvalidArgument,
        "linux.namespaces: user namespaces are not supported",
    )
}

/// Whether the spec asks for namespace `typ`.
pub(crate) fn wants(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    listed(spec).iter().any(|ns| ns.typ() == typ)
}

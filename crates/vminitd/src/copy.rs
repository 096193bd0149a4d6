//! Copy in and out: tar streams between the host and guest folders.
//!
//! The archive never crosses the gRPC channel: the agent dials a stream of
//! its own (vsock in a VM, a unix socket in host tests), like process
//! stdio, and the RPC answers once the copy is done. Every path is resolved
//! inside a root with `openat2(RESOLVE_IN_ROOT)` (`containerization_archive`):
//! a container's root as its first process sees it (`/proc/<pid>/root`,
//! its mounts included), a folder such as a stopped container's mounted
//! disk, or, for callers that name no root, the destination folder itself.
//! A symlink in a container pointing at `/` or `..` therefore stays in the
//! container, and an archive never writes outside its root.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use containerization_agent::proto::v1::{CopyRoot, StreamEndpoint, copy_root};
use containerization_archive::{ArchiveError, Kind, Root, UnpackOptions};
use rustix::fs::{Mode, OFlags};
use tonic::Status;

use crate::process::Processes;
use crate::stdio;

/// The gRPC status of an archive error: a missing path is NOT_FOUND, a
/// refused entry INVALID_ARGUMENT, a read-only file system
/// FAILED_PRECONDITION.
pub(crate) fn archive_status(error: ArchiveError) -> Status {
    let message = error.to_string();
    match &error {
        ArchiveError::NotFound(_) => Status::not_found(message),
        ArchiveError::Refused { .. } | ArchiveError::Overwrite { .. } => {
            Status::invalid_argument(message)
        }
        ArchiveError::Io { source, .. } if source.raw_os_error() == Some(libc::EROFS) => {
            Status::failed_precondition(message)
        }
        _ => Status::failed_precondition(message),
    }
}

/// Opens the root a copy's paths are resolved in: a guest folder, or the
/// root of agent process `container_id` (its `/proc/<pid>/root`).
pub(crate) fn open_root(root: &CopyRoot, processes: &Processes) -> Result<Option<Root>, Status> {
    match &root.root {
        None => Ok(None),
        Some(copy_root::Root::Path(path)) => Root::open(Path::new(path))
            .map(Some)
            .map_err(archive_status),
        Some(copy_root::Root::ContainerId(id)) => {
            let pid = processes.pid_of(id)?;
            let shown = format!("/proc/{pid}/root");
            let fd = rustix::fs::open(
                shown.as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Status::failed_precondition(format!("open {shown}: {e}")))?;
            Ok(Some(Root::from_fd(fd, shown)))
        }
    }
}

/// A place inside `root` (a guest folder) to mount `source` on, made when
/// missing: an empty file for a file source, else a folder.
pub(crate) fn mount_point(root: &str, target: &str, source: &str) -> Result<OwnedFd, Status> {
    let kind = match std::fs::metadata(source) {
        Ok(meta) if meta.is_file() => Kind::File,
        _ => Kind::Directory,
    };
    Root::open(Path::new(root))
        .and_then(|root| root.mount_point(Path::new(target), kind))
        .map_err(archive_status)
}

/// Dials `source`, reads a tar stream to its end and unpacks it into
/// `destination` (inside `root`, else the destination is the root, made
/// when missing); returns the number of entries. Blocking.
pub(crate) fn copy_in(
    source: &StreamEndpoint,
    destination: &Path,
    root: Option<Root>,
    keep_owners: bool,
) -> Result<u64, Status> {
    if !destination.is_absolute() {
        return Err(Status::invalid_argument(format!(
            "copy destination {} must be an absolute path",
            destination.display()
        )));
    }
    let (root, inside, keep_owners) = match root {
        Some(root) => (root, destination, keep_owners),
        None => {
            std::fs::create_dir_all(destination).map_err(|e| {
                Status::failed_precondition(format!(
                    "copy into {}: create the folder: {e}",
                    destination.display()
                ))
            })?;
            // Old callers unpack a whole tree (a root file system) as it is.
            (
                Root::open(destination).map_err(archive_status)?,
                Path::new(""),
                true,
            )
        }
    };
    let stream = stdio::connect(source)
        .map_err(|e| {
            Status::failed_precondition(format!("copy in: connect to the source stream: {e}"))
        })?
        .ok_or_else(|| Status::invalid_argument("copy in: the source stream is missing"))?;
    let options = UnpackOptions {
        keep_owners,
        keep_devices: true,
        ..UnpackOptions::default()
    };
    containerization_archive::unpack(&root, inside, std::fs::File::from(stream), &options)
        .map_err(archive_status)
}

/// Dials `destination` and writes `source` (inside `root`, else a guest
/// path) to it as a tar stream whose top entry is `name` (empty: the last
/// component of `source`); returns the archive's size. Blocking.
pub(crate) fn copy_out(
    source: &Path,
    destination: &StreamEndpoint,
    root: Option<Root>,
    follow_link: bool,
    name: &str,
) -> Result<u64, Status> {
    let root = match root {
        Some(root) => root,
        None => Root::open(Path::new("/")).map_err(archive_status)?,
    };
    let inside = source;
    // Found before the stream is dialled, so a missing path is an error of
    // its own, not an empty archive.
    root.stat(inside, follow_link).map_err(archive_status)?;
    let name = match name {
        "" => source
            .file_name()
            .map_or_else(|| ".".into(), std::ffi::OsStr::to_os_string),
        given => given.into(),
    };
    let stream = stdio::connect(destination)
        .map_err(|e| {
            Status::failed_precondition(format!("copy out: connect to the destination stream: {e}"))
        })?
        .ok_or_else(|| Status::invalid_argument("copy out: the destination stream is missing"))?;
    let file = std::fs::File::from(stream);
    let mut counting = Counting {
        inner: std::io::BufWriter::with_capacity(1 << 20, &file),
        count: 0,
    };
    containerization_archive::pack(&root, inside, Path::new(&name), follow_link, &mut counting)
        .map_err(archive_status)?;
    counting.flush().map_err(|e| {
        Status::failed_precondition(format!("copy {} out: write: {e}", source.display()))
    })?;
    let _ = rustix::net::shutdown(&file, rustix::net::Shutdown::Write);
    Ok(counting.count)
}

/// A writer that counts what passes through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

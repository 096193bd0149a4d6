//! File-system calls of the protocol: mount, unmount, mkdir, write, stat.

use containerization_agent::proto::v1::*;
use containerization_archive::Root;
use rustix::mount::MountFlags;
use tonic::Status;

/// A gRPC status for an I/O error while doing `what`.
pub(crate) fn io_status(what: impl std::fmt::Display, err: std::io::Error) -> Status {
    let message = format!("{what}: {err}");
    match err.kind() {
        std::io::ErrorKind::NotFound => Status::not_found(message),
        std::io::ErrorKind::PermissionDenied => Status::permission_denied(message),
        std::io::ErrorKind::AlreadyExists => Status::already_exists(message),
        std::io::ErrorKind::InvalidInput => Status::invalid_argument(message),
        _ => Status::internal(message),
    }
}

/// Splits mount(8)-style options into flags and the data string.
fn mount_options(options: &[String]) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match option.as_str() {
            "ro" => flags |= MountFlags::RDONLY,
            "rw" | "defaults" => {}
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "noatime" => flags |= MountFlags::NOATIME,
            "relatime" => flags |= MountFlags::RELATIME,
            "sync" => flags |= MountFlags::SYNCHRONOUS,
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// The `mount` call.
pub(crate) fn mount(request: MountRequest) -> Result<MountResponse, Status> {
    let m = request;
    if m.target.is_empty() || !m.target.starts_with('/') {
        return Err(Status::invalid_argument(format!(
            "mount target {:?} must be an absolute path",
            m.target
        )));
    }
    if m.create_target && m.target_root.is_empty() {
        std::fs::create_dir_all(&m.target).map_err(|e| io_status(&m.target, e))?;
    }
    let remount = m.options.iter().any(|o| o == "remount");
    let options: Vec<String> = m
        .options
        .iter()
        .filter(|o| *o != "remount")
        .cloned()
        .collect();
    let (flags, data) = mount_options(&options);
    let data = std::ffi::CString::new(data)
        .map_err(|_| Status::invalid_argument("mount options contain a NUL byte"))?;
    if remount {
        rustix::mount::mount_remount(m.target.as_str(), flags, data.as_c_str())
            .map_err(|e| io_status(format!("remount {}", m.target), e.into()))?;
        return Ok(MountResponse {});
    }
    // A target inside a root is resolved there and mounted on through its
    // descriptor, so a symlink in the root cannot move the mount.
    let in_root = match m.target_root.is_empty() {
        true => None,
        false => Some(crate::copy::mount_point(
            &m.target_root,
            &m.target,
            &m.source,
        )?),
    };
    let target = match &in_root {
        Some(fd) => format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd)),
        None => m.target.clone(),
    };
    forget_cached_blocks(&m.source);
    rustix::mount::mount(
        m.source.as_str(),
        target.as_str(),
        m.fstype.as_str(),
        flags,
        data.as_c_str(),
    )
    .map_err(|e| {
        io_status(
            format!("mount {} ({}) on {}", m.source, m.fstype, m.target),
            e.into(),
        )
    })?;
    Ok(MountResponse {})
}

/// Drops the kernel's cached blocks of a block device before it is
/// mounted. A VM restored from a template has the template's disk behind
/// the cache (the partition scan at boot read its first blocks, superblock
/// included), and this disk is another file; without this the mount could
/// read the template's superblock.
fn forget_cached_blocks(source: &str) {
    let Ok(stat) = rustix::fs::stat(source) else {
        return;
    };
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::BlockDevice {
        return;
    }
    let Ok(device) = rustix::fs::open(
        source,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return;
    };
    /// `BLKFLSBUF` from `<linux/fs.h>`: `_IO(0x12, 97)`.
    const BLKFLSBUF: libc::c_ulong = 0x1261;
    // SAFETY: `device` is an open descriptor; BLKFLSBUF takes no argument.
    let flushed =
        unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&device), BLKFLSBUF as _, 0) };
    if flushed != 0 {
        tracing::debug!("BLKFLSBUF on {source}: {}", std::io::Error::last_os_error());
    }
}

/// The `umount` call.
pub(crate) fn umount(request: UmountRequest) -> Result<UmountResponse, Status> {
    let u = request;
    let flags = if u.lazy {
        rustix::mount::UnmountFlags::DETACH
    } else {
        rustix::mount::UnmountFlags::empty()
    };
    rustix::mount::unmount(u.target.as_str(), flags)
        .map_err(|e| io_status(format!("umount {}", u.target), e.into()))?;
    Ok(UmountResponse {})
}

/// The `mkdir` call.
pub(crate) fn mkdir(request: MkdirRequest) -> Result<MkdirResponse, Status> {
    use std::os::unix::fs::DirBuilderExt;
    let m = request;
    let mode = if m.mode == 0 { 0o755 } else { m.mode };
    std::fs::DirBuilder::new()
        .recursive(m.parents)
        .mode(mode)
        .create(&m.path)
        .map_err(|e| io_status(format!("mkdir {}", m.path), e))?;
    Ok(MkdirResponse {})
}

/// The `write_file` call.
pub(crate) fn write_file(request: WriteFileRequest) -> Result<WriteFileResponse, Status> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let w = request;
    let mode = if w.mode == 0 { 0o644 } else { w.mode };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(w.append)
        .truncate(!w.append)
        .mode(mode)
        .open(&w.path)
        .map_err(|e| io_status(format!("open {}", w.path), e))?;
    file.write_all(&w.data)
        .map_err(|e| io_status(format!("write {}", w.path), e))?;
    Ok(WriteFileResponse {})
}

/// The `stat` call.
pub(crate) fn stat(request: StatRequest, root: Option<Root>) -> Result<StatResponse, Status> {
    use std::os::unix::fs::MetadataExt;
    if let Some(root) = root {
        let info = root
            .stat(std::path::Path::new(&request.path), request.follow_link)
            .map_err(crate::copy::archive_status)?;
        return Ok(StatResponse {
            mode: info.mode,
            size: info.size,
            uid: info.uid,
            gid: info.gid,
            mtime_seconds: info.mtime,
            mtime_nanos: 0,
            link_target: info
                .link_target
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default(),
        });
    }
    let path = request.path;
    let meta = std::fs::symlink_metadata(&path).map_err(|e| io_status(&path, e))?;
    Ok(StatResponse {
        mode: meta.mode(),
        size: meta.size(),
        uid: meta.uid(),
        gid: meta.gid(),
        mtime_seconds: meta.mtime(),
        mtime_nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        link_target: String::new(),
    })
}

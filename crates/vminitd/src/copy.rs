//! Copy in and out: tar streams between the host and guest folders.
//!
//! The archive never crosses the gRPC channel: the agent dials a stream of
//! its own (vsock in a VM, a unix socket in host tests), like process
//! stdio, and the RPC answers once the copy is done. Unpacking refuses
//! entries that would land outside the destination (`..` components, or a
//! symlink in the archive pointing out), as the `tar` crate's `unpack_in`
//! checks.

use std::io::Write;
use std::path::Path;

use containerization_agent::proto::v1::StreamEndpoint;
use tonic::Status;

use crate::stdio;

/// Dials `source`, reads a tar stream to its end and unpacks it into
/// `destination`; returns the number of entries. Blocking.
pub(crate) fn copy_in(source: &StreamEndpoint, destination: &Path) -> Result<u64, Status> {
    let what = |step: &str, err: std::io::Error| {
        Status::failed_precondition(format!(
            "copy into {}: {step}: {err}",
            destination.display()
        ))
    };
    if !destination.is_absolute() {
        return Err(Status::invalid_argument(format!(
            "copy destination {} must be an absolute path",
            destination.display()
        )));
    }
    let stream = stdio::connect(source)
        .map_err(|e| what("connect to the source stream", e))?
        .ok_or_else(|| Status::invalid_argument("copy in: the source stream is missing"))?;
    std::fs::create_dir_all(destination).map_err(|e| what("create the folder", e))?;
    let mut archive = tar::Archive::new(std::fs::File::from(stream));
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let mut count = 0;
    for entry in archive.entries().map_err(|e| what("read the archive", e))? {
        let mut entry = entry.map_err(|e| what("read the archive", e))?;
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let inside = entry
            .unpack_in(destination)
            .map_err(|e| what(&format!("unpack {name}"), e))?;
        if !inside {
            return Err(Status::invalid_argument(format!(
                "copy into {}: entry {name} would land outside it",
                destination.display()
            )));
        }
        count += 1;
    }
    Ok(count)
}

/// Dials `destination` and writes `source` to it as a tar stream; returns
/// the archive's size. Blocking.
pub(crate) fn copy_out(source: &Path, destination: &StreamEndpoint) -> Result<u64, Status> {
    let what = |step: &str, err: std::io::Error| {
        Status::failed_precondition(format!("copy {} out: {step}: {err}", source.display()))
    };
    let meta = std::fs::symlink_metadata(source).map_err(|e| {
        let message = format!("copy {} out: {e}", source.display());
        if e.kind() == std::io::ErrorKind::NotFound {
            Status::not_found(message)
        } else {
            Status::failed_precondition(message)
        }
    })?;
    let name = source
        .file_name()
        .map_or_else(|| Path::new("."), Path::new)
        .to_path_buf();
    let stream = stdio::connect(destination)
        .map_err(|e| what("connect to the destination stream", e))?
        .ok_or_else(|| Status::invalid_argument("copy out: the destination stream is missing"))?;
    let file = std::fs::File::from(stream);
    let mut builder = tar::Builder::new(Counting {
        inner: std::io::BufWriter::with_capacity(1 << 20, &file),
        count: 0,
    });
    builder.follow_symlinks(false);
    let appended = if meta.is_dir() {
        builder.append_dir_all(&name, source)
    } else {
        builder.append_path_with_name(source, &name)
    };
    appended.map_err(|e| what("archive", e))?;
    let mut counting = builder
        .into_inner()
        .map_err(|e| what("finish the archive", e))?;
    counting.flush().map_err(|e| what("write", e))?;
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

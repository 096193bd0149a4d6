//! `docker cp`: `HEAD` (a path's stat), `GET` (a tar stream out of the
//! container) and `PUT` (a tar stream unpacked into a folder of it) on
//! `/containers/{id}/archive?path=`, through the façade's confined copies.
//! The stat goes in the `X-Docker-Container-Path-Stat` header, base64 JSON
//! with Go's file mode bits, as Docker's clients read it.

use std::io::{Read, Write};

use base64::Engine;
use bytes::Bytes;
use containerization::{CopyOptions, Error, PathInfo};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::Service;
use super::body::{Answer, ApiError, empty, error, from_error, nothing, streamed};
use super::containers::find;
use super::query::Query;

/// The header Docker's clients read a path's stat from.
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// `st_mode` as Go's `os.FileMode`: permissions, then its own type and
/// special bits.
fn go_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut go = mode & 0o777;
    go |= match mode & 0o170_000 {
        0o040_000 => DIR,
        0o120_000 => SYMLINK,
        0o060_000 => DEVICE,
        0o020_000 => DEVICE | CHAR_DEVICE,
        0o010_000 => PIPE,
        0o140_000 => SOCKET,
        _ => 0,
    };
    for (bit, go_bit) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if mode & bit != 0 {
            go |= go_bit;
        }
    }
    go
}

/// The stat header's value for `path`.
fn stat_header(path: &str, info: &PathInfo) -> String {
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let name = if name.is_empty() { "/" } else { name };
    let stat = json!({
        "name": name,
        "size": info.size,
        "mode": go_mode(info.mode),
        "mtime": crate::clock::rfc3339_millis(u64::try_from(info.mtime).ok().map(|s| s * 1000)),
        "linkTarget": info.link_target.as_ref().map(|t| t.display().to_string()).unwrap_or_default(),
    });
    base64::engine::general_purpose::STANDARD.encode(stat.to_string())
}

fn path_of(query: &Query) -> Result<String, ApiError> {
    query
        .get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "path is required"))
}

/// The stat of `path` in container `id`, or Docker's 404.
async fn stat(
    service: &Service,
    id: &str,
    path: &str,
) -> Result<(containerization::LinuxContainer, PathInfo), ApiError> {
    let container = find(service, id)?;
    match container.stat_path(path, false).await {
        Ok(Some(info)) => Ok((container, info)),
        Ok(None) => Err(error(
            StatusCode::NOT_FOUND,
            format!("Could not find the file {path} in container {id}"),
        )),
        Err(e) => Err(from_error(&e.into())),
    }
}

fn with_stat(
    mut response: Response<super::body::Body>,
    value: &str,
) -> Response<super::body::Body> {
    if let Ok(value) = value.parse() {
        response.headers_mut().insert(STAT_HEADER, value);
    }
    response
}

/// `HEAD /containers/{id}/archive?path=`.
pub(crate) async fn head(service: &Service, id: &str, query: &Query) -> Answer {
    let path = path_of(query)?;
    let (_, info) = stat(service, id, &path).await?;
    Ok(with_stat(
        nothing(StatusCode::OK),
        &stat_header(&path, &info),
    ))
}

/// Bytes written here go to a response body.
struct BodyWriter(tokio::sync::mpsc::Sender<Bytes>);

impl Write for BodyWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(bytes))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /containers/{id}/archive?path=`: a tar stream of the path.
pub(crate) async fn get(service: &Service, id: &str, query: &Query) -> Answer {
    let path = path_of(query)?;
    let (container, info) = stat(service, id, &path).await?;
    let header = stat_header(&path, &info);
    let (sender, response) = streamed(StatusCode::OK, "application/x-tar");
    tokio::spawn(async move {
        let options = CopyOptions {
            archive: true,
            follow_link: false,
        };
        // The body ends once the copy is over, a stopped container's copy
        // VM stopped and the container given back: a `docker rm` right
        // after `docker cp` finds it free.
        let open_until_done = sender.clone();
        if let Err(e) = container
            .copy_out_archive(&path, BodyWriter(sender), &options)
            .await
        {
            tracing::debug!(path, "archive out failed: {e}");
        }
        drop(open_until_done);
    });
    Ok(with_stat(response, &header))
}

/// Bytes read here come from a request body.
struct BodyReader {
    receiver: std::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.recv() {
                Ok(chunk) => self.current = chunk,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// `PUT /containers/{id}/archive?path=&copyUIDGID=`: the body, a tar
/// stream, unpacked into folder `path`.
pub(crate) async fn put(
    service: &Service,
    id: &str,
    query: &Query,
    request: Request<Incoming>,
) -> Answer {
    let path = path_of(query)?;
    let container = find(service, id)?;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Bytes>(16);
    let mut body = request.into_body();
    let feeding = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                let sender = sender.clone();
                let sent = tokio::task::spawn_blocking(move || sender.send(data)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
        }
    });
    let options = CopyOptions {
        archive: query.flag("copyUIDGID"),
        follow_link: false,
    };
    let reader = BodyReader {
        receiver,
        current: Bytes::new(),
    };
    let copied = container.copy_in_archive(reader, &path, &options).await;
    feeding.abort();
    match copied {
        Ok(()) => Ok(Response::builder()
            .status(StatusCode::OK)
            .body(empty())
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?),
        Err(Error::PathNotInContainer { .. }) => Err(error(
            StatusCode::NOT_FOUND,
            format!("Could not find the file {path} in container {id}"),
        )),
        Err(e @ Error::CopyRefused(_)) => Err(error(StatusCode::BAD_REQUEST, e)),
        Err(e) => Err(from_error(&e.into())),
    }
}

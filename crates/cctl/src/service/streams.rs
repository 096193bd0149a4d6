//! Output streams: `attach` (the connection hijacked, as Docker's clients
//! ask with `Upgrade: tcp`) and `logs`, both read from the container's log
//! as its monitor writes it. Without a terminal each record goes in
//! Docker's multiplexed frame (`[stream, 0, 0, 0, length big-endian]` then
//! the bytes); with one, raw.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use containerization::{LogReader, LogRecord, LogStream, Status};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::Service;
use super::body::{Answer, RAW_STREAM, error, streamed, upgraded, wants_upgrade};
use super::containers::lock;
use super::query::Query;
use crate::container::list::now_ms;

/// `bytes` from `stream` as the client reads them.
pub(crate) fn frame(stream: LogStream, bytes: &[u8], tty: bool) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(bytes);
    }
    let mut framed = Vec::with_capacity(bytes.len() + 8);
    framed.push(stream as u8);
    framed.extend_from_slice(&[0, 0, 0]);
    framed.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(bytes);
    Bytes::from(framed)
}

/// Which streams the client asked for.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    stdout: bool,
    stderr: bool,
}

impl Wanted {
    fn from(query: &Query) -> Self {
        Self {
            stdout: query.flag("stdout"),
            stderr: query.flag("stderr"),
        }
    }

    fn takes(self, stream: LogStream) -> bool {
        match stream {
            LogStream::Stdout => self.stdout,
            LogStream::Stderr => self.stderr,
        }
    }
}

/// What to send of a container's log, and until when.
struct Feed {
    /// Where in the log to read from.
    reader: LogReader,
    wanted: Wanted,
    /// Raw bytes (a terminal) rather than frames.
    tty: bool,
    /// Go on until the first process ended, rather than stop at the end.
    follow: bool,
    /// An end counts only after this (ms since the epoch).
    since: u64,
    /// Each line with its time in front (`timestamps`).
    stamper: Option<Stamper>,
    /// Stop at this time (ns since the epoch; `until`).
    until: Option<u64>,
}

/// Puts each line's time in front of it, as `docker logs -t` shows them.
#[derive(Debug, Clone, Copy)]
struct Stamper {
    /// Whether the next byte of each stream begins a line.
    at_start: [bool; 3],
}

impl Stamper {
    fn new() -> Self {
        Self {
            at_start: [true; 3],
        }
    }

    /// `record`'s bytes with the time in front of each line begun in it.
    fn stamp(&mut self, record: &LogRecord) -> Vec<u8> {
        let time = crate::clock::rfc3339_nanos(record.time_ns.unwrap_or(0));
        let at_start = &mut self.at_start[record.stream as usize];
        let mut out = Vec::with_capacity(record.bytes.len() + time.len() + 1);
        for piece in record.bytes.split_inclusive(|b| *b == b'\n') {
            if *at_start {
                out.extend_from_slice(time.as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(piece);
            *at_start = piece.ends_with(b"\n");
        }
        out
    }
}

impl Feed {
    /// What the client is sent of `record`, if anything.
    fn bytes(&mut self, record: &LogRecord) -> Option<Bytes> {
        if !self.wanted.takes(record.stream) {
            return None;
        }
        let bytes = match &mut self.stamper {
            Some(stamper) => stamper.stamp(record),
            None => record.bytes.clone(),
        };
        Some(frame(record.stream, &bytes, self.tty))
    }

    /// Whether `until` has passed.
    fn over(&self) -> bool {
        self.until
            .is_some_and(|until| now_ms().saturating_mul(1_000_000) > until)
    }
}

/// Sends container `id`'s output to `out` as `feed` says.
async fn pump(service: &Service, id: &str, mut feed: Feed, out: mpsc::Sender<Bytes>) {
    loop {
        let ended = match service.manager.get(id).and_then(|c| c.state()) {
            Ok(state) => {
                let running = state.is_running()
                    && matches!(state.status, Status::Running | Status::Starting);
                !feed.follow
                    || (!running
                        && state.status == Status::Exited
                        && state.finished_ms.unwrap_or(0) >= feed.since)
            }
            Err(_) => true,
        };
        // Read after looking at the state: what was written before the end
        // is in the log by then.
        for record in feed.reader.read_records().unwrap_or_default() {
            if let Some(bytes) = feed.bytes(&record)
                && out.send(bytes).await.is_err()
            {
                return;
            }
        }
        if ended || feed.over() {
            return;
        }
        tokio::time::sleep(super::POLL).await;
    }
}

/// `POST /containers/{id}/attach?stream=&logs=&stdout=&stderr=`.
pub(crate) fn attach(
    service: Arc<Service>,
    id: &str,
    query: &Query,
    mut request: Request<Incoming>,
) -> Answer {
    let container = service
        .manager
        .get(id)
        .map_err(|_| error(StatusCode::NOT_FOUND, format!("No such container: {id}")))?;
    // Standard input goes to a container made with it (`OpenStdin`).
    let stdin = query.flag("stdin") && container.config().interactive;
    let stdin_socket = container.stdin_socket();
    let full = container.id().to_string();
    let tty = container.config().terminal;
    let mut reader = LogReader::new(&container.log_path());
    if !query.flag("logs") {
        // Only what comes from now on.
        let _ = reader.read_new();
    }
    let follow = query.flag("stream");
    let wanted = Wanted::from(query);
    let since = now_ms();
    *lock(&service.attached).entry(full.clone()).or_insert(0) += 1;
    let (sender, mut receiver) = mpsc::channel::<Bytes>(64);
    let pumping = Arc::clone(&service);
    let pumped = full.clone();
    tokio::spawn(async move {
        let feed = Feed {
            reader,
            wanted,
            tty,
            follow,
            since,
            stamper: None,
            until: None,
        };
        pump(&pumping, &pumped, feed, sender).await;
        if let Some(count) = lock(&pumping.attached).get_mut(&pumped) {
            *count = count.saturating_sub(1);
        }
    });
    if !wants_upgrade(&request) {
        let (body_sender, response) = streamed(StatusCode::OK, RAW_STREAM);
        tokio::spawn(async move {
            while let Some(chunk) = receiver.recv().await {
                if body_sender.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        return Ok(response);
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let feeding = Arc::clone(&service);
    let fed = full.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("attach: the upgrade failed: {e}");
                return;
            }
        };
        let (from_client, mut to_client) = tokio::io::split(TokioIo::new(upgraded));
        let (detach_tx, mut detach_rx) = mpsc::channel::<()>(1);
        let feeder = stdin.then(|| {
            tokio::spawn(async move {
                if feed(&feeding, &fed, &stdin_socket, from_client, tty).await {
                    let _ = detach_tx.send(()).await;
                }
            })
        });
        loop {
            tokio::select! {
                chunk = receiver.recv() => match chunk {
                    Some(chunk) => {
                        if to_client.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                // The client typed the detach keys: the container runs on.
                Some(()) = detach_rx.recv() => break,
            }
        }
        if let Some(feeder) = feeder {
            feeder.abort();
        }
        let _ = to_client.flush().await;
        let _ = to_client.shutdown().await;
    });
    upgraded()
}

/// Copies the client's bytes to container `id`'s standard input, through
/// the socket its monitor serves once its process runs; the end of the
/// client's input is the end of the process's. With a terminal, `ctrl-p
/// ctrl-q` (Docker's detach keys) ends the copy and returns true: the
/// process keeps its input for the next attacher.
async fn feed(
    service: &Service,
    id: &str,
    socket: &std::path::Path,
    input: impl tokio::io::AsyncRead + Unpin,
    tty: bool,
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let stdin = loop {
        if let Ok(stream) = tokio::net::UnixStream::connect(socket).await {
            break stream;
        }
        let state = service.manager.get(id).and_then(|c| c.state());
        let over = match state {
            Ok(state) => state.status == Status::Exited && !state.owner_alive(),
            Err(_) => true,
        };
        if over || std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(super::POLL).await;
    };
    crate::container::detach::copy_until_detached(input, stdin, tty).await
}

/// `GET /containers/{id}/logs?stdout=&stderr=&follow=&tail=&timestamps=&since=&until=`.
pub(crate) fn logs(service: Arc<Service>, id: &str, query: &Query) -> Answer {
    let container = service
        .manager
        .get(id)
        .map_err(|_| error(StatusCode::NOT_FOUND, format!("No such container: {id}")))?;
    let time = |name: &str| {
        query
            .time_ns(name)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))
    };
    let since = time("since")?.unwrap_or(0);
    let until = time("until")?.filter(|until| *until > 0);
    let lines = match query.get("tail").filter(|t| !t.is_empty() && *t != "all") {
        None => None,
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                format!("tail {text:?}: a number of lines, or all"),
            )
        })?),
    };
    let full = container.id().to_string();
    let mut feed = Feed {
        reader: LogReader::new(&container.log_path()),
        wanted: Wanted::from(query),
        tty: container.config().terminal,
        follow: true,
        since: 0,
        stamper: query.flag("timestamps").then(Stamper::new),
        until,
    };
    let in_time = |line: &LogRecord| {
        let at = line.time_ns.unwrap_or(0);
        at >= since && until.is_none_or(|until| at <= until)
    };
    let mut backlog: Vec<LogRecord> =
        containerization::log_lines(feed.reader.read_records().unwrap_or_default())
            .into_iter()
            .filter(|line| in_time(line) && feed.wanted.takes(line.stream))
            .collect();
    if let Some(lines) = lines {
        backlog.drain(..backlog.len().saturating_sub(lines));
    }
    let follow = query.flag("follow");
    let (sender, response) = streamed(StatusCode::OK, RAW_STREAM);
    tokio::spawn(async move {
        for line in &backlog {
            if let Some(bytes) = feed.bytes(line)
                && sender.send(bytes).await.is_err()
            {
                return;
            }
        }
        if follow && !feed.over() {
            pump(&service, &full, feed, sender).await;
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::frame;
    use containerization::LogStream;

    #[test]
    fn frames_are_dockers_without_a_terminal_and_raw_with_one() {
        assert_eq!(
            &frame(LogStream::Stderr, b"hi\n", false)[..],
            &[2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
        assert_eq!(&frame(LogStream::Stdout, b"hi", true)[..], b"hi");
    }
}

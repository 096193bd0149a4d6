//! A minimal registry for push tests whose upload sessions can be resumed
//! (no signed `_state`, unlike docker-registry): it answers the upload
//! status `GET` with the `Range` it holds, and it breaks one chunk on
//! purpose, keeping half of its bytes and closing the connection unanswered.
//! It checks every finished blob against its digest, and counts what it saw.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the registry saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Upload sessions opened (`POST …/blobs/uploads/`).
    pub sessions: usize,
    /// Upload status requests (`GET …/blobs/uploads/<id>`).
    pub status_requests: usize,
    /// `PATCH`es refused because their range did not start where the upload stood.
    pub refused_ranges: usize,
    /// Bytes received in `PATCH` bodies, the broken one's half included.
    pub patched_bytes: usize,
    /// Blobs completed, each checked against its digest.
    pub blobs: Vec<String>,
    /// Manifests put.
    pub manifests: usize,
}

#[derive(Default)]
struct State {
    uploads: HashMap<String, Vec<u8>>,
    patches: usize,
    seen: Seen,
}

/// A running registry.
pub struct ResumableRegistry {
    /// Its port on 127.0.0.1.
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl ResumableRegistry {
    /// What it has seen so far.
    pub fn seen(&self) -> Seen {
        self.state.lock().expect("lock").seen.clone()
    }
}

/// Starts the registry; the `break_patch`-th `PATCH` (1-based) is broken.
pub async fn resumable_registry(break_patch: usize) -> ResumableRegistry {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let state = Arc::new(Mutex::new(State::default()));
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = shared.clone();
            tokio::spawn(async move { answer(stream, &state, break_patch).await });
        }
    });
    ResumableRegistry { port, state }
}

/// Reads one request (head and `Content-Length` body) and answers it.
async fn answer(mut stream: TcpStream, state: &Mutex<State>, break_patch: usize) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (method, target) = (
        request_line.next().unwrap_or("").to_owned(),
        request_line.next().unwrap_or("").to_owned(),
    );
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let upload_id = path
        .split("/blobs/uploads/")
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let (status, extra) = {
        let mut state = state.lock().expect("lock");
        match method.as_str() {
            "GET" if path == "/v2/" => ("200 OK", String::new()),
            "HEAD" => ("404 Not Found", String::new()),
            "POST" => {
                state.seen.sessions += 1;
                let id = format!("u{}", state.seen.sessions);
                state.uploads.insert(id.clone(), Vec::new());
                let repository = path
                    .trim_start_matches("/v2/")
                    .trim_end_matches("/blobs/uploads/");
                (
                    "202 Accepted",
                    format!("Location: /v2/{repository}/blobs/uploads/{id}\r\nRange: 0-0\r\n"),
                )
            }
            "PATCH" => {
                state.patches += 1;
                let held = state.uploads.get(&upload_id).map_or(0, Vec::len);
                let start: usize = headers
                    .get("content-range")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if start != held {
                    state.seen.refused_ranges += 1;
                    ("416 Range Not Satisfiable", String::new())
                } else if state.patches == break_patch {
                    // Half the chunk arrives, the answer never does.
                    let half = body.len() / 2;
                    state.seen.patched_bytes += half;
                    if let Some(upload) = state.uploads.get_mut(&upload_id) {
                        upload.extend_from_slice(&body[..half]);
                    }
                    return;
                } else {
                    state.seen.patched_bytes += body.len();
                    let upload = state.uploads.entry(upload_id.clone()).or_default();
                    upload.extend_from_slice(&body);
                    let held = upload.len();
                    (
                        "202 Accepted",
                        format!(
                            "Location: {path}\r\nRange: 0-{}\r\n",
                            held.saturating_sub(1)
                        ),
                    )
                }
            }
            "GET" if !upload_id.is_empty() => {
                state.seen.status_requests += 1;
                let held = state.uploads.get(&upload_id).map_or(0, Vec::len);
                (
                    "204 No Content",
                    format!(
                        "Location: {path}\r\nRange: 0-{}\r\n",
                        held.saturating_sub(1)
                    ),
                )
            }
            "PUT" if !upload_id.is_empty() => {
                let mut upload = state.uploads.remove(&upload_id).unwrap_or_default();
                upload.extend_from_slice(&body);
                let wanted = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("digest="))
                    .unwrap_or("")
                    .replace("%3A", ":");
                let actual = format!("sha256:{}", hex::encode(Sha256::digest(&upload)));
                if actual == wanted {
                    state.seen.blobs.push(actual);
                    ("201 Created", String::new())
                } else {
                    ("400 Bad Request", String::new())
                }
            }
            "PUT" => {
                state.seen.manifests += 1;
                ("201 Created", String::new())
            }
            _ => ("404 Not Found", String::new()),
        }
    };
    let response =
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
}

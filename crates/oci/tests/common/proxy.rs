//! Small loopback peers for failure tests: TCP proxies that cut one
//! connection in the middle of a response or of a request, and an HTTP server
//! that answers every path with a canned response.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which way a cutting proxy counts bytes.
#[derive(Clone, Copy)]
enum Cut {
    /// Registry to client: a download broken mid-body.
    Download,
    /// Client to registry: an upload broken mid-request.
    Upload,
}

/// A proxy to `upstream` that closes the first connection which carries more
/// than `cut_after` bytes back to the client. Returns its port and a flag that
/// turns true once it has cut.
pub async fn cutting_proxy(upstream: u16, cut_after: usize) -> (u16, Arc<AtomicBool>) {
    proxy_cutting(upstream, cut_after, Cut::Download).await
}

/// A proxy to `upstream` that closes the first connection which carries more
/// than `cut_after` bytes from the client (an upload broken mid-request).
/// Returns its port and a flag that turns true once it has cut.
pub async fn upload_cutting_proxy(upstream: u16, cut_after: usize) -> (u16, Arc<AtomicBool>) {
    proxy_cutting(upstream, cut_after, Cut::Upload).await
}

async fn proxy_cutting(upstream: u16, cut_after: usize, way: Cut) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let cut = Arc::new(AtomicBool::new(false));
    let flag = cut.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                match way {
                    Cut::Download => {
                        relay_then_cut(
                            server_read,
                            client_write,
                            client_read,
                            server_write,
                            cut_after,
                            &cut,
                        )
                        .await
                    }
                    Cut::Upload => {
                        relay_then_cut(
                            client_read,
                            server_write,
                            server_read,
                            client_write,
                            cut_after,
                            &cut,
                        )
                        .await
                    }
                }
            });
        }
    });
    (port, flag)
}

/// Copies `other_from` to `other_to` in the background and `from` to `to`
/// here, dropping both (the connection dies mid-body) once more than
/// `cut_after` bytes went through, the first time `cut` is claimed.
async fn relay_then_cut<R, W, OR, OW>(
    mut from: R,
    mut to: W,
    mut other_from: OR,
    mut other_to: OW,
    cut_after: usize,
    cut: &AtomicBool,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
    OR: tokio::io::AsyncRead + Unpin + Send + 'static,
    OW: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let other = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut other_from, &mut other_to).await;
    });
    let mut sent = 0usize;
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        sent += n;
        if sent > cut_after && !cut.swap(true, Ordering::SeqCst) {
            break;
        }
    }
    other.abort();
}

/// An HTTP server answering `GET /v2/` with 200 and every other request with
/// `content_type` and `body`. Returns its port.
pub async fn canned_registry(content_type: &'static str, body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let (ct, body) = if head.starts_with("GET /v2/ ") {
                    ("application/json", "{}")
                } else {
                    (content_type, body)
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

/// An HTTP server answering `GET /v2/` with 200 and other requests with the
/// given `(status line, extra headers, body)` answers in turn, the last one
/// for good. Returns its port.
pub async fn scripted_registry(answers: Vec<(&'static str, &'static str, &'static str)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let answers = Arc::new(answers);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (answers, next) = (answers.clone(), next.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, headers, body) = if request.starts_with(b"GET /v2/ ") {
                    ("200 OK", "", "{}")
                } else {
                    let i = next.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1);
                    answers[i]
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\n{headers}Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

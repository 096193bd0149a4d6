//! Small loopback peers for failure tests: TCP proxies that cut one
//! connection in the middle of a response or of a request, and an HTTP server
//! that answers every path with a canned response.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy to `upstream` that closes the first connection which carries more
/// than `cut_after` bytes back to the client. Returns its port and a flag that
/// turns true once it has cut.
pub async fn cutting_proxy(upstream: u16, cut_after: usize) -> (u16, Arc<AtomicBool>) {
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
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut sent = 0usize;
                let mut buf = vec![0u8; 16 << 10];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent += n;
                    if sent > cut_after && !cut.swap(true, Ordering::SeqCst) {
                        break; // drop both halves: the connection dies mid-body
                    }
                }
                up.abort();
            });
        }
    });
    (port, flag)
}

/// A proxy to `upstream` that closes the first connection which carries more
/// than `cut_after` bytes from the client (an upload broken mid-request).
/// Returns its port and a flag that turns true once it has cut.
pub async fn upload_cutting_proxy(upstream: u16, cut_after: usize) -> (u16, Arc<AtomicBool>) {
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
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let mut sent = 0usize;
                let mut buf = vec![0u8; 16 << 10];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent += n;
                    if sent > cut_after && !cut.swap(true, Ordering::SeqCst) {
                        break; // drop both halves: the request dies mid-body
                    }
                }
                down.abort();
            });
        }
    });
    (port, flag)
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

//! Exec: create (kept in the service until inspected or the service ends),
//! start (detached, or with the connection hijacked: standard input from
//! the client, output in Docker's frames, raw with a terminal), resize and
//! inspect.

use std::sync::Arc;

use bytes::Bytes;
use containerization::{LinuxProcess, LogStream, StdioConfig, spec};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex as AsyncMutex, mpsc};

use super::Service;
use super::body::{
    Answer, ApiError, error, from_error, json, nothing, read_json, upgraded, wants_upgrade,
};
use super::containers::{find, lock, running, strings};
use super::query::Query;
use super::streams::frame;

/// One exec instance.
pub(crate) struct Exec {
    container: String,
    options: spec::ProcessOptions,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    /// The process while it runs (for resize).
    process: Option<Arc<LinuxProcess>>,
    started: bool,
    exit_code: Option<i32>,
    /// When it ended: an ended exec is forgotten five minutes later (as
    /// Docker's daemon forgets them), or when its container goes.
    ended_at: Option<std::time::Instant>,
    pid: u32,
}

/// How long an ended exec can still be inspected.
const KEPT: std::time::Duration = std::time::Duration::from_secs(300);

/// Forgets the execs of container `id` (it was removed).
pub(crate) fn forget_container(service: &Service, id: &str) {
    lock(&service.execs).retain(|_, exec| exec.container != id);
}

/// A new id: 64 hex digits, as Docker's (execs, unnamed volumes).
pub(crate) fn new_id() -> Result<String, ApiError> {
    containerization::ContainerId::random()
        .map(|id| id.to_string())
        .map_err(|e| from_error(&e.into()))
}

fn no_such_exec(exec_id: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        format!("No such exec instance: {exec_id}"),
    )
}

/// `POST /containers/{id}/exec`.
pub(crate) async fn create(service: &Service, id: &str, request: Request<Incoming>) -> Answer {
    let container = find(service, id)?;
    let state = container.state().map_err(|e| from_error(&e.into()))?;
    if !running(&state) {
        return Err(error(
            StatusCode::CONFLICT,
            format!("Container {id} is not running"),
        ));
    }
    let body = read_json(request).await?;
    let args = strings(&body["Cmd"], "Cmd")?;
    if args.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "No exec command specified"));
    }
    if body["Privileged"].as_bool() == Some(true) {
        return Err(error(
            StatusCode::NOT_IMPLEMENTED,
            "privileged execs are not supported by containerization's Docker API yet",
        ));
    }
    let text = |field: &str| {
        body[field]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let tty = body["Tty"].as_bool().unwrap_or(false);
    let exec = Exec {
        container: container.id().to_string(),
        options: spec::ProcessOptions {
            args,
            env: strings(&body["Env"], "Env")?,
            workdir: text("WorkingDir"),
            user: text("User"),
            terminal: tty,
            ..spec::ProcessOptions::default()
        },
        stdin: body["AttachStdin"].as_bool().unwrap_or(false),
        stdout: body["AttachStdout"].as_bool().unwrap_or(false),
        stderr: body["AttachStderr"].as_bool().unwrap_or(false),
        tty,
        process: None,
        started: false,
        exit_code: None,
        ended_at: None,
        pid: 0,
    };
    let exec_id = new_id()?;
    let mut execs = lock(&service.execs);
    execs.retain(|_, exec| exec.ended_at.is_none_or(|ended| ended.elapsed() < KEPT));
    execs.insert(exec_id.clone(), exec);
    drop(execs);
    Ok(json(StatusCode::CREATED, &json!({ "Id": exec_id })))
}

/// `POST /exec/{id}/start` with `{"Detach": …, "Tty": …}`.
pub(crate) async fn start(
    service: Arc<Service>,
    exec_id: &str,
    mut request: Request<Incoming>,
) -> Answer {
    let on_upgrade = hyper::upgrade::on(&mut request);
    let upgrade = wants_upgrade(&request);
    let body = read_json(request).await?;
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let (container_id, options, wanted) = {
        let mut execs = lock(&service.execs);
        let exec = execs
            .get_mut(exec_id)
            .ok_or_else(|| no_such_exec(exec_id))?;
        if exec.started {
            return Err(error(
                StatusCode::CONFLICT,
                format!("exec {exec_id} has already started"),
            ));
        }
        exec.started = true;
        (
            exec.container.clone(),
            exec.options.clone(),
            (
                exec.stdin && !detach,
                exec.stdout && !detach,
                exec.stderr && !detach,
                exec.tty,
            ),
        )
    };
    let (stdin, stdout, stderr, tty) = wanted;
    let container = find(&service, &container_id)?;
    let stdio = StdioConfig {
        stdin,
        stdout,
        stderr,
        terminal: tty.then_some((24, 80)),
    };
    let mut process = container
        .exec(&options, stdio)
        .await
        .map_err(|e| from_error(&e.into()))?;
    let streams = process.take_streams();
    let process = Arc::new(process);
    {
        let mut execs = lock(&service.execs);
        if let Some(exec) = execs.get_mut(exec_id) {
            exec.pid = process.pid();
            exec.process = Some(Arc::clone(&process));
        }
    }
    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    let output = tokio::spawn(copy_output(streams.stdout, streams.stderr, tty, sender));
    let finishing = Arc::clone(&service);
    let finished_id = exec_id.to_owned();
    let waited = Arc::clone(&process);
    let ended = tokio::spawn(async move {
        let status = waited.wait().await;
        // Its output reaches the client before its end is known.
        let _ = output.await;
        let code = status.map_or(126, |s| s.code);
        let mut execs = lock(&finishing.execs);
        if let Some(exec) = execs.get_mut(&finished_id) {
            exec.exit_code = Some(code);
            exec.ended_at = Some(std::time::Instant::now());
            exec.process = None;
        }
    });
    if detach {
        drop(receiver);
        drop(ended);
        return Ok(nothing(StatusCode::OK));
    }
    let input = streams.stdin;
    if !upgrade {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "an attached exec start needs the connection upgraded (Upgrade: tcp)",
        ));
    }
    tokio::spawn(hijacked(on_upgrade, input, receiver, ended));
    upgraded()
}

/// Copies the process's output into `sender` as Docker's frames (raw with
/// a terminal) until both streams end.
async fn copy_output(
    stdout: Option<containerization::BoxedStream>,
    stderr: Option<containerization::BoxedStream>,
    tty: bool,
    sender: mpsc::Sender<Bytes>,
) {
    let pump = |stream: Option<containerization::BoxedStream>, which: LogStream| {
        let sender = sender.clone();
        async move {
            let Some(mut stream) = stream else { return };
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if sender.send(frame(which, &buffer[..n], tty)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    };
    tokio::join!(
        pump(stdout, LogStream::Stdout),
        pump(stderr, LogStream::Stderr)
    );
}

/// The hijacked connection: the client's bytes to the process's standard
/// input, its output back, closed once the process ended and its output
/// was sent.
async fn hijacked(
    on_upgrade: hyper::upgrade::OnUpgrade,
    input: Option<containerization::BoxedStream>,
    mut output: mpsc::Receiver<Bytes>,
    ended: tokio::task::JoinHandle<()>,
) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!("exec: the upgrade failed: {e}");
            return;
        }
    };
    let (mut from_client, mut to_client) = tokio::io::split(TokioIo::new(upgraded));
    let input = Arc::new(AsyncMutex::new(input));
    let feeding = Arc::clone(&input);
    let feeder = tokio::spawn(async move {
        let mut guard = feeding.lock().await;
        let Some(stdin) = guard.as_mut() else { return };
        let _ = tokio::io::copy(&mut from_client, stdin).await;
        let _ = stdin.shutdown().await;
    });
    while let Some(chunk) = output.recv().await {
        if to_client.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = ended.await;
    feeder.abort();
    let _ = to_client.flush().await;
    let _ = to_client.shutdown().await;
}

/// `POST /exec/{id}/resize?h=&w=`.
pub(crate) async fn resize(service: &Service, exec_id: &str, query: &Query) -> Answer {
    let process = {
        let execs = lock(&service.execs);
        let exec = execs.get(exec_id).ok_or_else(|| no_such_exec(exec_id))?;
        exec.process.clone()
    };
    let rows = query.number("h").and_then(|h| u16::try_from(h).ok());
    let columns = query.number("w").and_then(|w| u16::try_from(w).ok());
    let (Some(rows), Some(columns), Some(process)) = (rows, columns, process) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "resize needs h and w, and an exec that runs",
        ));
    };
    process
        .resize(rows, columns)
        .await
        .map_err(|e| from_error(&e.into()))?;
    Ok(nothing(StatusCode::OK))
}

/// `GET /exec/{id}/json`.
pub(crate) fn inspect(service: &Service, exec_id: &str) -> Answer {
    let execs = lock(&service.execs);
    let exec = execs.get(exec_id).ok_or_else(|| no_such_exec(exec_id))?;
    let running = exec.started && exec.exit_code.is_none();
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": exec_id,
            "Running": running,
            "ExitCode": exec.exit_code,
            "ProcessConfig": {
                "tty": exec.tty,
                "entrypoint": exec.options.args.first(),
                "arguments": exec.options.args.iter().skip(1).collect::<Vec<_>>(),
                "user": exec.options.user.clone().unwrap_or_default(),
            },
            "OpenStdin": exec.stdin,
            "OpenStdout": exec.stdout,
            "OpenStderr": exec.stderr,
            "ContainerID": exec.container,
            "Pid": exec.pid,
        }),
    ))
}

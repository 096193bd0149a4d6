//! A process's streams joined to this terminal: raw mode with `-it`
//! (restored on the way out), the window size followed with `-t`, signals
//! forwarded (the keyboard's too unless the keys go to the container),
//! standard input fed with `-i`, output copied (and logged).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerization::{ExitStatus, LinuxProcess, LogStream, LogWriter, ProcessStreams};
use rustix::termios::{OptionalActions, Termios};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

/// The terminal's size as (rows, columns); 24×80 when it has none.
pub fn terminal_size() -> (u16, u16) {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(size) if size.ws_row > 0 && size.ws_col > 0 => (size.ws_row, size.ws_col),
        _ => (24, 80),
    }
}

/// Standard input in raw mode until dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Puts standard input in raw mode when it is a terminal.
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Self { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return Self { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(&stdin, OptionalActions::Now, &raw);
        Self { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// How to join a process to this terminal.
pub struct Attach {
    /// Feed standard input.
    pub stdin: bool,
    /// It has a terminal.
    pub tty: bool,
    /// Copy its output into this log too.
    pub log: Option<LogWriter>,
}

/// Copies `process`'s streams to and from this process until it exits and
/// its output is drained; returns how it exited.
pub async fn attach(process: &mut LinuxProcess, options: Attach) -> anyhow::Result<ExitStatus> {
    let ProcessStreams {
        stdin,
        stdout,
        stderr,
    } = process.take_streams();
    let log = options.log.map(|log| Arc::new(Mutex::new(log)));
    // Raw only when this terminal's keys go to the container (`-it`): with
    // `-t` alone Ctrl-C stays a signal to cctl, which forwards it.
    let keys_to_container = options.tty && options.stdin;
    let _raw = keys_to_container.then(RawMode::enter);
    if let (true, Some(mut input)) = (options.stdin, stdin) {
        tokio::spawn(async move {
            let mut host = tokio::io::stdin();
            let _ = tokio::io::copy(&mut host, &mut input).await;
            let _ = input.shutdown().await;
        });
    }
    let out =
        stdout.map(|s| tokio::spawn(pump(s, tokio::io::stdout(), log.clone(), LogStream::Stdout)));
    let err =
        stderr.map(|s| tokio::spawn(pump(s, tokio::io::stderr(), log.clone(), LogStream::Stderr)));
    let forwarding = forward_signals(process, options.tty, keys_to_container);
    let status = tokio::select! {
        status = process.wait() => status?,
        never = forwarding => match never {},
    };
    for pump in [out, err].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
    }
    Ok(status)
}

/// What a signal to `cctl` becomes.
#[derive(Clone, Copy)]
enum Forward {
    /// The terminal's new size, sent as a resize.
    Resize,
    /// The signal, sent to the process.
    Signal(i32),
}

/// Forwards SIGWINCH as a resize with a terminal, and the usual signals to
/// the process; when the keys go to the container (`raw`), not those the
/// keyboard makes: Ctrl-C then reaches the process through its own
/// terminal. Never returns.
async fn forward_signals(process: &LinuxProcess, tty: bool, raw: bool) -> std::convert::Infallible {
    let mut wanted = Vec::new();
    if tty {
        wanted.push((SignalKind::window_change(), Forward::Resize));
    }
    if !raw {
        wanted.extend([
            (SignalKind::interrupt(), Forward::Signal(2)),
            (SignalKind::quit(), Forward::Signal(3)),
            (SignalKind::user_defined1(), Forward::Signal(10)),
            (SignalKind::user_defined2(), Forward::Signal(12)),
        ]);
    }
    wanted.push((SignalKind::hangup(), Forward::Signal(1)));
    wanted.push((SignalKind::terminate(), Forward::Signal(15)));
    let mut streams: Vec<_> = wanted
        .into_iter()
        .filter_map(|(kind, forward)| Some((signal(kind).ok()?, forward)))
        .collect();
    loop {
        match next_signal(&mut streams).await {
            Forward::Resize => {
                let (rows, columns) = terminal_size();
                let _ = process.resize(rows, columns).await;
            }
            Forward::Signal(number) => {
                let _ = process.kill(number).await;
            }
        }
    }
}

/// What the first of `streams` to fire asks for (pending forever when there
/// are none).
async fn next_signal(streams: &mut [(tokio::signal::unix::Signal, Forward)]) -> Forward {
    std::future::poll_fn(|cx| {
        for (stream, forward) in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*forward);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Copies `from` to `to` (flushing as it goes) and into `log`.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    log: Option<Arc<Mutex<LogWriter>>>,
    stream: LogStream,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(log) = &log
            && let Ok(mut log) = log.lock()
        {
            let _ = log.write(stream, &buffer[..n]);
        }
        if to.write_all(&buffer[..n]).await.is_err() || to.flush().await.is_err() {
            break;
        }
    }
}

/// Copies the container's output into its log until the streams end (the
/// detached monitor's job).
pub async fn log_only(
    process: &mut LinuxProcess,
    log: LogWriter,
    stdin_socket: Option<&Path>,
    terminal: bool,
) {
    let streams = process.take_streams();
    // Standard input, when it has one, comes from whoever attaches.
    let feeder = match (streams.stdin, stdin_socket) {
        (Some(stdin), Some(socket)) => Some(tokio::spawn(feed_stdin(
            socket.to_path_buf(),
            stdin,
            terminal,
        ))),
        _ => None,
    };
    let log = Arc::new(Mutex::new(log));
    let out = streams.stdout.map(|s| {
        tokio::spawn(pump(
            s,
            tokio::io::sink(),
            Some(log.clone()),
            LogStream::Stdout,
        ))
    });
    let err = streams.stderr.map(|s| {
        tokio::spawn(pump(
            s,
            tokio::io::sink(),
            Some(log.clone()),
            LogStream::Stderr,
        ))
    });
    for pump in [out, err].into_iter().flatten() {
        let _ = pump.await;
    }
    if let Some(feeder) = feeder {
        feeder.abort();
    }
    if let Some(socket) = stdin_socket {
        let _ = std::fs::remove_file(socket);
    }
}

/// Serves `socket` (0600, in the container's private run folder): a
/// connection's bytes go to the process's standard input. Without a
/// terminal the first connection's end closes it, as Docker's `StdinOnce`
/// does for `run -i`; with one (where the end of input is a typed
/// `ctrl-d`), a connection ends when its attacher detaches, and the next
/// attacher's bytes follow.
async fn feed_stdin(socket: PathBuf, mut stdin: containerization::BoxedStream, terminal: bool) {
    let _ = std::fs::remove_file(&socket);
    let listener = match tokio::net::UnixListener::bind(&socket) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(socket = %socket.display(), "no standard input for attachers: {e}");
            return;
        }
    };
    let _ = std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o600));
    while let Ok((mut input, _)) = listener.accept().await {
        let copied = tokio::io::copy(&mut input, &mut stdin).await;
        if !terminal || copied.is_err() {
            break;
        }
    }
    let _ = stdin.shutdown().await;
}

//! A process's standard streams, copied between containerd's FIFOs and the
//! streams the guest's agent dials back: what the process writes goes to
//! the stdout and stderr FIFOs, what containerd writes to the stdin FIFO
//! goes to the process, whose standard input closes at its end.

use std::path::Path;

use containerization::{ProcessStreams, StdioConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;

/// containerd's FIFO paths for one process (empty: none).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fifos {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

impl Fifos {
    /// The streams to ask the agent for.
    pub fn config(&self) -> StdioConfig {
        StdioConfig {
            stdin: !self.stdin.is_empty(),
            stdout: !self.stdout.is_empty(),
            stderr: !self.stderr.is_empty() && !self.terminal,
            terminal: self.terminal.then_some((24, 80)),
        }
    }

    /// Starts copying between `streams` and the FIFOs; the handle ends
    /// when the output streams have reached their ends (the process and
    /// everything holding its output are gone).
    pub fn copy(&self, mut streams: ProcessStreams) -> tokio::task::JoinHandle<()> {
        if let Some(mut input) = streams.stdin.take()
            && !self.stdin.is_empty()
        {
            let path = self.stdin.clone();
            tokio::spawn(async move {
                match pipe::OpenOptions::new().open_receiver(&path) {
                    Ok(mut fifo) => {
                        let _ = tokio::io::copy(&mut fifo, &mut input).await;
                    }
                    Err(error) => tracing::warn!(%error, path, "cannot open the stdin FIFO"),
                }
                let _ = input.shutdown().await;
            });
        }
        let stdout = output(streams.stdout.take(), self.stdout.clone());
        let stderr = output(streams.stderr.take(), self.stderr.clone());
        tokio::spawn(async move {
            tokio::join!(stdout, stderr);
        })
    }
}

/// Copies `stream` (if any) into the FIFO at `path` (if any) to its end.
async fn output(stream: Option<containerization::BoxedStream>, path: String) {
    let Some(mut stream) = stream.filter(|_| !path.is_empty()) else {
        return;
    };
    match open_sender(Path::new(&path)) {
        Ok(mut fifo) => {
            let _ = tokio::io::copy(&mut stream, &mut fifo).await;
            let _ = fifo.flush().await;
        }
        Err(error) => tracing::warn!(%error, path, "cannot open an output FIFO"),
    }
}

/// Opens a FIFO for writing even before its reader does.
fn open_sender(path: &Path) -> std::io::Result<pipe::Sender> {
    pipe::OpenOptions::new().read_write(true).open_sender(path)
}

//! A small client for QEMU's machine protocol (QMP) on a unix socket.
//!
//! QMP is JSON, one object per line. On connect QEMU sends a greeting; the
//! client must answer `qmp_capabilities` before any other command. Replies
//! are `{"return": …}` or `{"error": {"class", "desc"}}`; asynchronous
//! events (`{"event": "SHUTDOWN", …}`) may arrive between them at any time,
//! so they are kept aside for [`Qmp::wait_event`].
//!
//! A file descriptor travels with a command as `SCM_RIGHTS` ancillary data
//! ([`Qmp::execute_with_fd`]): `getfd` names it inside QEMU, and `fd:<name>`
//! migration URIs use it. That is how templates are saved and loaded without
//! `exec:` URIs, which make QEMU run a shell command and which its seccomp
//! sandbox (`spawn=deny`) forbids.

use std::io::{BufRead, BufReader, IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::VmmError;

/// An asynchronous event QEMU reported.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// The event's name, such as `SHUTDOWN` or `STOP`.
    pub name: String,
    /// Its `data` member (`null` when absent).
    pub data: Value,
}

/// The run state `query-status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpStatus {
    /// QEMU's run state name, such as `running`, `paused` or `shutdown`.
    pub status: String,
    /// Whether guest CPUs are running.
    pub running: bool,
}

/// A QMP connection that has done the capabilities handshake.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    events: Vec<QmpEvent>,
}

fn qmp_error(message: impl Into<String>) -> VmmError {
    VmmError::Qmp {
        message: message.into(),
    }
}

/// One request as QMP wants it: a JSON object and a newline.
fn request_line(command: &str, arguments: Option<Value>) -> String {
    let mut request = json!({ "execute": command });
    if let Some(arguments) = arguments {
        request["arguments"] = arguments;
    }
    let mut line = request.to_string();
    line.push('\n');
    line
}

impl Qmp {
    /// Connects to the QMP socket at `path`, retrying until `timeout` while
    /// QEMU creates it, and does the handshake.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, VmmError> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(err) if Instant::now() > deadline => {
                    return Err(qmp_error(format!(
                        "cannot connect to {} within {timeout:?}: {err}",
                        path.display()
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        Self::handshake(stream)
    }

    /// Does the handshake on a connected `stream`: QEMU's end of a socket
    /// pair given to it as `-chardev socket,fd=N`, or a connection to its
    /// QMP socket.
    pub fn handshake(stream: UnixStream) -> Result<Self, VmmError> {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| qmp_error(format!("socket option: {e}")))?;
        let writer = stream
            .try_clone()
            .map_err(|e| qmp_error(format!("socket clone: {e}")))?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(qmp_error(format!(
                "expected the QMP greeting, got {greeting}"
            )));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value, VmmError> {
        let mut line = String::new();
        let read = self
            .reader
            .read_line(&mut line)
            .map_err(|e| qmp_error(format!("read: {e}")))?;
        if read == 0 {
            return Err(qmp_error("QEMU closed the QMP socket"));
        }
        serde_json::from_str(&line).map_err(|e| qmp_error(format!("bad JSON {line:?}: {e}")))
    }

    /// Runs `command` with optional `arguments` and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, VmmError> {
        let line = request_line(command, arguments);
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| qmp_error(format!("{command}: write: {e}")))?;
        self.reply(command)
    }

    /// Runs `command` with `fd` passed along (`SCM_RIGHTS`), as `getfd` and
    /// `add-fd` want; QEMU keeps its own copy, the caller keeps `fd`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), containerization_vmm::VmmError> {
    /// # let mut qmp = containerization_vmm::Qmp::connect(
    /// #     std::path::Path::new("/run/vm/qmp.sock"), std::time::Duration::from_secs(5))?;
    /// use std::os::fd::AsFd;
    /// let file = std::fs::File::create("/tmp/state").expect("state file");
    /// let arguments = serde_json::json!({ "fdname": "state" });
    /// qmp.execute_with_fd("getfd", Some(arguments), file.as_fd())?;
    /// qmp.execute("migrate", Some(serde_json::json!({ "uri": "fd:state" })))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn execute_with_fd(
        &mut self,
        command: &str,
        arguments: Option<Value>,
        fd: BorrowedFd<'_>,
    ) -> Result<Value, VmmError> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let line = request_line(command, arguments);
        let fds = [fd];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(qmp_error(format!(
                "{command}: no room for a file descriptor in the control message"
            )));
        }
        // The descriptor rides on the first byte; the rest follows plainly.
        let bytes = line.as_bytes();
        let sent = rustix::net::sendmsg(
            &self.writer,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map_err(|e| qmp_error(format!("{command}: sendmsg: {e}")))?;
        self.writer
            .write_all(&bytes[sent..])
            .map_err(|e| qmp_error(format!("{command}: write: {e}")))?;
        self.reply(command)
    }

    /// Reads until the reply to `command`, keeping events aside.
    fn reply(&mut self, command: &str) -> Result<Value, VmmError> {
        loop {
            let message = self.read_message()?;
            if let Some(name) = message.get("event").and_then(Value::as_str) {
                self.events.push(QmpEvent {
                    name: name.to_owned(),
                    data: message.get("data").cloned().unwrap_or(Value::Null),
                });
                continue;
            }
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                let desc = error.get("desc").and_then(Value::as_str).unwrap_or("?");
                return Err(qmp_error(format!("{command} failed: {desc}")));
            }
            return Err(qmp_error(format!("{command}: unexpected reply {message}")));
        }
    }

    /// The VM's run state.
    pub fn status(&mut self) -> Result<QmpStatus, VmmError> {
        let value = self.execute("query-status", None)?;
        Ok(QmpStatus {
            status: value
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            running: value
                .get("running")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// Presses the virtual power button (works only for guests with ACPI).
    pub fn system_powerdown(&mut self) -> Result<(), VmmError> {
        self.execute("system_powerdown", None).map(drop)
    }

    /// Asks QEMU to exit at once.
    pub fn quit(&mut self) -> Result<(), VmmError> {
        match self.execute("quit", None) {
            Ok(_) => Ok(()),
            // QEMU may close the socket before its reply reaches us.
            Err(VmmError::Qmp { message }) if message.contains("closed") => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The events received so far.
    pub fn events(&self) -> &[QmpEvent] {
        &self.events
    }

    /// Waits up to `timeout` for an event named `name`, seen before or now.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<QmpEvent, VmmError> {
        self.wait_for(name, |_| true, timeout, false)
    }

    /// Waits up to `timeout` for an event named `name` whose data `matches`,
    /// seen before or now, and takes it out of [`Qmp::events`], so a later
    /// wait for the same name does not find it again.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), containerization_vmm::VmmError> {
    /// # let mut qmp = containerization_vmm::Qmp::connect(
    /// #     std::path::Path::new("/run/vm/qmp.sock"), std::time::Duration::from_secs(5))?;
    /// qmp.execute("device_del", Some(serde_json::json!({ "id": "disk1" })))?;
    /// qmp.take_event(
    ///     "DEVICE_DELETED",
    ///     |data| data["device"] == "disk1",
    ///     std::time::Duration::from_secs(5),
    /// )?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn take_event(
        &mut self,
        name: &str,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Result<QmpEvent, VmmError> {
        self.wait_for(name, matches, timeout, true)
    }

    fn wait_for(
        &mut self,
        name: &str,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
        take: bool,
    ) -> Result<QmpEvent, VmmError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self
                .events
                .iter()
                .position(|e| e.name == name && matches(&e.data))
            {
                // Later replies are read without a deadline again.
                let _ = self.reader.get_ref().set_read_timeout(None);
                return Ok(match take {
                    true => self.events.remove(at),
                    false => self.events[at].clone(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(qmp_error(format!("no {name} event within {timeout:?}")));
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| qmp_error(format!("socket option: {e}")))?;
            let message = self.read_message()?;
            if let Some(event) = message.get("event").and_then(Value::as_str) {
                self.events.push(QmpEvent {
                    name: event.to_owned(),
                    data: message.get("data").cloned().unwrap_or(Value::Null),
                });
            }
        }
    }
}

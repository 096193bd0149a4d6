//! Pseudo-terminals for processes that ask for one.
//!
//! The process gets the terminal's secondary end as stdin, stdout and stderr
//! and as its controlling terminal. vminitd relays the primary end to the
//! host's streams with one thread per direction.
//!
//! Where the terminal is opened matters: a terminal lives in one `devpts`
//! instance, and a process can name it (`tty`, `ps`, `/dev/pts/N`) only when
//! that instance is the one mounted on its `/dev/pts`. A process in the
//! guest itself gets one from vminitd's `devpts` ([`open`]); a container
//! mounts a `devpts` of its own, so the launcher's last stage opens the
//! terminal there ([`open_in_container`]) and passes the primary end back,
//! as runc does.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use tokio::sync::watch;

/// Both ends of a new terminal.
pub(crate) struct Pty {
    /// The end vminitd keeps.
    pub(crate) primary: OwnedFd,
    /// The end the process gets; vminitd drops it once the process has it.
    pub(crate) secondary: Option<OwnedFd>,
}

/// A process's terminal, from its creation to its end.
pub(crate) enum Terminal {
    /// To be opened by the launcher inside the container, with this size.
    Pending {
        /// Lines.
        rows: u32,
        /// Characters per line.
        columns: u32,
    },
    /// Open.
    Open(Pty),
}

impl Terminal {
    /// Resizes the open terminal, or sets the size a pending one will get.
    pub(crate) fn resize(&mut self, rows: u32, columns: u32) -> std::io::Result<()> {
        match self {
            Terminal::Pending {
                rows: pending_rows,
                columns: pending_columns,
            } => {
                (*pending_rows, *pending_columns) = (rows, columns);
                Ok(())
            }
            Terminal::Open(pty) => resize(&pty.primary, rows, columns),
        }
    }

    /// Takes the primary end the launcher opened; a size set meanwhile is
    /// applied to it.
    pub(crate) fn opened(&mut self, primary: OwnedFd) -> std::io::Result<&Pty> {
        if let Terminal::Pending { rows, columns } = *self {
            resize(&primary, rows, columns)?;
        }
        *self = Terminal::Open(Pty {
            primary,
            secondary: None,
        });
        match self {
            Terminal::Open(pty) => Ok(pty),
            Terminal::Pending { .. } => Err(std::io::Error::other("terminal not open")),
        }
    }

    /// The open terminal, if it is.
    pub(crate) fn pty(&self) -> Option<&Pty> {
        match self {
            Terminal::Open(pty) => Some(pty),
            Terminal::Pending { .. } => None,
        }
    }

    /// The open terminal, mutably, if it is.
    pub(crate) fn pty_mut(&mut self) -> Option<&mut Pty> {
        match self {
            Terminal::Open(pty) => Some(pty),
            Terminal::Pending { .. } => None,
        }
    }
}

/// Opens a terminal of `rows` × `columns` in vminitd's own `devpts`.
pub(crate) fn open(rows: u32, columns: u32) -> std::io::Result<Pty> {
    let primary = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&primary)?;
    unlockpt(&primary)?;
    let name = ptsname(&primary, Vec::new())?;
    let secondary = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    resize(&primary, rows, columns)?;
    Ok(Pty {
        primary,
        secondary: Some(secondary),
    })
}

/// Opens a terminal of `rows` × `columns` in the `devpts` on this process's
/// `/dev/pts` (through `/dev/ptmx`, a link to `pts/ptmx`), makes its
/// secondary end this process's stdin, stdout, stderr and controlling
/// terminal, and returns the primary end (close-on-exec). For the launcher's
/// last stage, inside the container's mount namespace and a new session.
pub(crate) fn open_in_container(rows: u32, columns: u32) -> std::io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let primary = rustix::fs::open(
        "/dev/ptmx",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| {
        std::io::Error::new(
            std::io::Error::from(errno).kind(),
            format!("open /dev/ptmx (is devpts mounted on the container's /dev/pts?): {errno}"),
        )
    })?;
    unlockpt(&primary)?;
    // The secondary end of this very terminal, found from the primary end
    // rather than by a path another mount could shadow.
    let secondary =
        rustix::pty::ioctl_tiocgptpeer(&primary, OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    resize(&primary, rows, columns)?;
    rustix::stdio::dup2_stdin(&secondary)?;
    rustix::stdio::dup2_stdout(&secondary)?;
    rustix::stdio::dup2_stderr(&secondary)?;
    drop(secondary);
    rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
    Ok(primary)
}

/// Sets the terminal's size; the process gets SIGWINCH.
pub(crate) fn resize(primary: &impl AsFd, rows: u32, columns: u32) -> std::io::Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: u16::try_from(rows).unwrap_or(u16::MAX),
        ws_col: u16::try_from(columns).unwrap_or(u16::MAX),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(primary, size)?;
    Ok(())
}

/// Relays the terminal to the host: `input` → terminal and terminal →
/// `output`. The receiver turns true once all output has been written, which
/// is when the last holder of the secondary end has closed it.
pub(crate) fn relay(
    primary: &OwnedFd,
    input: Option<OwnedFd>,
    output: Option<OwnedFd>,
) -> std::io::Result<watch::Receiver<bool>> {
    let (done_tx, done_rx) = watch::channel(false);
    let reader = std::fs::File::from(primary.try_clone()?);
    if let Some(output) = output {
        std::thread::Builder::new()
            .name("pty-out".into())
            .spawn(move || {
                copy(reader, std::fs::File::from(output));
                let _ = done_tx.send(true);
            })?;
    } else {
        let _ = done_tx.send(true);
    }
    if let Some(input) = input {
        let writer = std::fs::File::from(primary.try_clone()?);
        std::thread::Builder::new()
            .name("pty-in".into())
            .spawn(move || {
                let mut writer = writer;
                copy(std::fs::File::from(input), &mut writer);
                // End of input: the terminal's end-of-file character (^D).
                let _ = writer.write_all(&[4]);
            })?;
    }
    Ok(done_rx)
}

/// Copies until end of file or an error (EIO once the terminal closes).
fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

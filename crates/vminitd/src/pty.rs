//! Pseudo-terminals for processes that ask for one.
//!
//! The process gets the terminal's secondary end as stdin, stdout and stderr
//! and as its controlling terminal. vminitd relays the primary end to the
//! host's streams with one thread per direction.

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

/// Opens a terminal of `rows` × `columns`.
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

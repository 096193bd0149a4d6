//! A writer of `newc` cpio archives, the format the kernel unpacks as an
//! initramfs.
//!
//! Each entry is a 110-byte ASCII header (magic `070701`, then thirteen
//! 8-digit hexadecimal fields), the NUL-terminated name padded to four bytes,
//! and the data padded to four bytes; the archive ends with `TRAILER!!!`.

use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

/// Writes a cpio archive entry by entry.
pub(crate) struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    /// A writer into `out`.
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    /// A folder.
    pub(crate) fn dir(&mut self, name: &str, mode: u32) -> io::Result<()> {
        self.entry(name, S_IFDIR | (mode & 0o7777), 2, 0, &[])
    }

    /// A regular file holding `data`.
    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | (mode & 0o7777), 1, 0, data)
    }

    /// A character device.
    pub(crate) fn char_device(
        &mut self,
        name: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        self.entry(
            name,
            S_IFCHR | (mode & 0o7777),
            1,
            (major << 8) | minor,
            &[],
        )
    }

    /// Writes the trailer and returns the output.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.next_ino = 0;
        self.entry("TRAILER!!!", 0, 1, 0, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{name} is over 4 GiB"))
        })?;
        let name_len = u32::try_from(name.len() + 1)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        let ino = self.next_ino;
        self.next_ino = self.next_ino.wrapping_add(1);
        let (rmajor, rminor) = (rdev >> 8, rdev & 0xff);
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, name_len, 0,
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.write(&[0u8; 3][..pad])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_cpio_lists_what_we_write() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("dev", 0o755).unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let mut child = std::process::Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cpio is installed by scripts/setup");
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success());
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 3, "{listing}");
        assert!(lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" dev"));
        assert!(
            lines[1].starts_with("crw-------") && lines[1].contains("5,   1"),
            "{listing}"
        );
        assert!(lines[2].starts_with("-rwxr-xr-x") && lines[2].ends_with(" init"));
    }
}

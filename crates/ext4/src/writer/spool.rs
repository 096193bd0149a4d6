//! Writes blocks into the image file, merging neighbouring writes into large
//! sequential ones, and gives freed blocks back to the host as holes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Largest write the spool gathers before it goes to the file.
const BATCH: usize = 4 << 20;

/// A write-behind buffer for one contiguous run of blocks.
#[derive(Debug)]
pub(crate) struct Spool {
    file: File,
    block_size: u64,
    start: u64,
    buf: Vec<u8>,
}

impl Spool {
    pub fn new(file: File, block_size: u64) -> Self {
        Self {
            file,
            block_size,
            start: 0,
            buf: Vec::with_capacity(BATCH),
        }
    }

    /// The image file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Writes whole blocks `data` at block `block`.
    pub fn write(&mut self, block: u64, data: &[u8]) -> io::Result<()> {
        let contiguous = self.start + (self.buf.len() as u64) / self.block_size == block;
        if !self.buf.is_empty() && (!contiguous || self.buf.len() + data.len() > BATCH) {
            self.flush()?;
        }
        if data.len() >= BATCH {
            return self.file.write_all_at(data, block * self.block_size);
        }
        if self.buf.is_empty() {
            self.start = block;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Sends what is gathered to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file
                .write_all_at(&self.buf, self.start * self.block_size)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Turns `len` blocks from `block` back into a hole of the image file,
    /// so blocks a later layer freed take no space on the host. Where the
    /// host file system cannot punch holes the blocks keep their old bytes:
    /// they are free in the image all the same.
    pub fn punch(&mut self, block: u64, len: u64) -> io::Result<()> {
        self.flush()?;
        match rustix::fs::fallocate(
            &self.file,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            block * self.block_size,
            len * self.block_size,
        ) {
            Ok(()) | Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

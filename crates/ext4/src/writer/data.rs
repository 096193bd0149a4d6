//! File data: read in large chunks, zero blocks left as holes, the rest
//! written to freshly allocated blocks and recorded as extents.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use super::{Formatter, display};
use crate::format::EXTENT_MAX_LEN;
use crate::format::extent::Extent;
use crate::{Error, Result};

/// Largest logical block an extent can address (32-bit block numbers).
const MAX_LOGICAL_BLOCKS: u64 = 1 << 32;

fn is_zero(block: &[u8]) -> bool {
    block
        .chunks_exact(16)
        .all(|c| u128::from_ne_bytes(c.try_into().unwrap_or([1; 16])) == 0)
}

/// Fills `buf` from `reader`; returns how many bytes it got (short only at
/// the end of the data).
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Appends a run to `extents`, merging it into the last extent when both
/// are contiguous, and splitting runs longer than an extent can hold.
fn push_run(extents: &mut Vec<Extent>, mut logical: u64, mut physical: u64, mut len: u64) {
    while len > 0 {
        if let Some(last) = extents.last_mut() {
            let last_len = u64::from(last.len);
            if u64::from(last.logical) + last_len == logical
                && last.physical + last_len == physical
                && last_len < u64::from(EXTENT_MAX_LEN)
            {
                let add = len.min(u64::from(EXTENT_MAX_LEN) - last_len);
                last.len += add as u16;
                logical += add;
                physical += add;
                len -= add;
                continue;
            }
        }
        let take = len.min(u64::from(EXTENT_MAX_LEN));
        extents.push(Extent {
            logical: logical as u32,
            len: take as u16,
            physical,
        });
        logical += take;
        physical += take;
        len -= take;
    }
}

impl Formatter {
    /// Copies `reader` to its end into the file whose data starts at byte
    /// `offset` (block aligned); returns the end offset.
    pub(super) fn write_stream(
        &mut self,
        path: &[u8],
        reader: &mut dyn Read,
        offset: u64,
        extents: &mut Vec<Extent>,
    ) -> Result<u64> {
        let mut chunk = std::mem::take(&mut self.chunk);
        let result = self.copy_chunks(path, reader, offset, extents, &mut chunk);
        self.chunk = chunk;
        result
    }

    fn copy_chunks(
        &mut self,
        path: &[u8],
        reader: &mut dyn Read,
        offset: u64,
        extents: &mut Vec<Extent>,
        chunk: &mut [u8],
    ) -> Result<u64> {
        let bs = self.blocks.size as usize;
        let mut pos = offset;
        loop {
            let got = fill(reader, chunk).map_err(|source| Error::Data {
                path: display(path),
                source,
            })?;
            if got == 0 {
                return Ok(pos);
            }
            // Zeros become holes, so an endless stream of them would run
            // until the extents' 2^32 blocks; the image's size stops it.
            if pos + got as u64 > self.capacity() {
                return Err(Error::FileBeyondImage {
                    layer: usize::from(self.layer),
                    path: display(path),
                    size: pos + got as u64,
                    capacity: self.capacity(),
                });
            }
            let blocks = got.div_ceil(bs);
            chunk[got..blocks * bs].fill(0);
            let first = pos / self.blocks.size;
            if first + blocks as u64 > MAX_LOGICAL_BLOCKS {
                return Err(Error::FileTooLarge {
                    path: display(path),
                    size: pos + got as u64,
                });
            }
            let mut i = 0;
            while i < blocks {
                if is_zero(&chunk[i * bs..(i + 1) * bs]) {
                    i += 1;
                    continue;
                }
                let mut end = i + 1;
                while end < blocks && !is_zero(&chunk[end * bs..(end + 1) * bs]) {
                    end += 1;
                }
                self.store(path, first + i as u64, &chunk[i * bs..end * bs], extents)?;
                i = end;
            }
            pos += got as u64;
            if got < chunk.len() {
                return Ok(pos);
            }
        }
    }

    /// Writes whole blocks `data` as logical blocks from `logical`.
    fn store(
        &mut self,
        path: &[u8],
        logical: u64,
        data: &[u8],
        extents: &mut Vec<Extent>,
    ) -> Result<()> {
        let mut done = 0u64;
        let bs = self.blocks.size;
        let total = (data.len() as u64) / bs;
        while done < total {
            let Some((start, len)) = self.alloc.alloc(self.goal, total - done) else {
                return Err(self.out_of_space(path));
            };
            let bytes = &data[(done * bs) as usize..((done + len) * bs) as usize];
            let write = self.spool.write(start, bytes);
            write.map_err(self.io_error("cannot write to"))?;
            push_run(extents, logical + done, start, len);
            self.goal = start + len;
            done += len;
        }
        Ok(())
    }

    /// Copies the data segments of a host file (skipping its holes).
    pub(super) fn write_host_file(
        &mut self,
        path: &[u8],
        file: &File,
        extents: &mut Vec<Extent>,
    ) -> Result<u64> {
        let read_error = |source| Error::Data {
            path: display(path),
            source,
        };
        let size = file.metadata().map_err(read_error)?.len();
        let mut reader = file;
        let mut pos = 0u64;
        while pos < size {
            let data = match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(pos)) {
                Ok(at) => at,
                Err(rustix::io::Errno::NXIO) => break,
                Err(e) => return Err(read_error(e.into())),
            };
            let bs = self.blocks.size;
            let data = (data / bs * bs).max(pos);
            let hole = match rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(data)) {
                Ok(at) => at.min(size),
                Err(e) => return Err(read_error(e.into())),
            };
            let end = hole.div_ceil(bs).saturating_mul(bs).min(size);
            reader.seek(SeekFrom::Start(data)).map_err(read_error)?;
            let mut segment = reader.take(end - data);
            pos = self.write_stream(path, &mut segment, data, extents)?;
            if pos < end {
                return Err(read_error(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was read",
                )));
            }
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::push_run;

    #[test]
    fn runs_merge_until_an_extent_is_full() {
        let mut extents = Vec::new();
        push_run(&mut extents, 0, 100, 10);
        push_run(&mut extents, 10, 110, 32_760);
        push_run(&mut extents, 40_000, 50_000, 1);
        let lens: Vec<u16> = extents.iter().map(|e| e.len).collect();
        assert_eq!(lens, [32_768, 2, 1]);
        assert_eq!(extents[1].logical, 32_768);
    }
}

//! What one layer may unpack to: no more than the image being built can
//! hold ([`Formatter::capacity`](crate::Formatter)).
//!
//! A 122-byte layer can claim a 1 PiB sparse file, whose holes the tar
//! reader hands out as zeros for ever; zeros become holes in the image, so
//! neither the disk nor the block allocator would ever stop it. So a file
//! whose size is beyond the image is refused from its header, before any of
//! its data is read; the sizes of a layer's files may not add up to more
//! than the image either; and the decompressed stream itself ends with an
//! error past that many bytes, so a compression bomb made of headers stops
//! too.
//!
//! Not bounded more tightly: the tar crate reads a GNU long name or a PAX
//! header whole into memory before the entry reaches the writer, so one
//! claiming gigabytes is only stopped by the stream's cap, in memory.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use crate::{Error, Result};

/// The file data a layer has claimed so far, against the image's capacity.
#[derive(Debug)]
pub(crate) struct Budget {
    layer: usize,
    capacity: u64,
    claimed: u64,
}

impl Budget {
    /// A budget of `capacity` bytes for layer `layer`.
    pub fn new(layer: usize, capacity: u64) -> Self {
        Self {
            layer,
            capacity,
            claimed: 0,
        }
    }

    /// Claims `size` bytes for the file `path`, before its data is read.
    pub fn claim(&mut self, path: &Path, size: u64) -> Result<()> {
        if size > self.capacity {
            return Err(Error::FileBeyondImage {
                layer: self.layer,
                path: path.to_path_buf(),
                size,
                capacity: self.capacity,
            });
        }
        self.claimed = self.claimed.saturating_add(size);
        if self.claimed > self.capacity {
            return Err(Error::LayerBeyondImage {
                layer: self.layer,
                path: path.to_path_buf(),
                capacity: self.capacity,
            });
        }
        Ok(())
    }
}

/// A decompressed layer stream that fails once it yields more than `left`
/// bytes, and says so in `tripped`.
pub(crate) struct Capped<R> {
    inner: R,
    left: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Capped<R> {
    /// `inner`, cut off after `limit` bytes; `tripped` turns true when it
    /// is.
    pub fn new(inner: R, limit: u64, tripped: Rc<Cell<bool>>) -> Self {
        Self {
            inner,
            left: limit,
            tripped,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than is left tells a stream that ends right at the
        // limit from one that goes on.
        let want = (buf.len() as u64).min(self.left.saturating_add(1)) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.tripped.set(true);
            return Err(io::Error::other(
                "the layer unpacks to more than the image can hold",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::Read;
    use std::path::Path;
    use std::rc::Rc;

    use super::{Budget, Capped};
    use crate::Error;

    #[test]
    fn a_stream_may_reach_the_limit_but_not_pass_it() {
        let tripped = Rc::new(Cell::new(false));
        let mut exact = Capped::new(&[7u8; 10][..], 10, tripped.clone());
        let mut out = Vec::new();
        assert_eq!(exact.read_to_end(&mut out).expect("fits"), 10);
        assert!(!tripped.get());
        let mut over = Capped::new(&[7u8; 11][..], 10, tripped.clone());
        assert!(over.read_to_end(&mut Vec::new()).is_err());
        assert!(tripped.get());
    }

    #[test]
    fn files_are_refused_alone_or_when_they_add_up_past_the_capacity() {
        let mut budget = Budget::new(2, 100);
        let big = budget.claim(Path::new("big"), 101);
        assert!(matches!(big, Err(Error::FileBeyondImage { size: 101, .. })));
        budget.claim(Path::new("a"), 60).expect("fits");
        let sum = budget.claim(Path::new("b"), 60);
        assert!(matches!(sum, Err(Error::LayerBeyondImage { layer: 2, .. })));
    }
}

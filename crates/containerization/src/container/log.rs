//! A detached container's output log: records of `[stream: u8][length: u32
//! little-endian][bytes]`, appended as output arrives, so `logs` can replay
//! standard output and standard error apart and in order.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output (or the terminal).
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
}

/// Appends records to a log.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    path: PathBuf,
}

impl LogWriter {
    /// Opens (or creates) the log at `path` for appending.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(crate::private_dir::PRIVATE_FILE)
            .open(path)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends `bytes` from `stream` as one record.
    pub fn write(&mut self, stream: LogStream, bytes: &[u8]) -> Result<(), Error> {
        let mut record = Vec::with_capacity(bytes.len() + 5);
        record.push(stream as u8);
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&bytes[..len as usize]);
        self.file.write_all(&record).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads the records of a log from some offset on.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    offset: u64,
}

impl LogReader {
    /// A reader of the log at `path`, from its start.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
        }
    }

    /// The complete records written since the last call (none when the log
    /// does not exist yet).
    pub fn read_new(&mut self) -> Result<Vec<(LogStream, Vec<u8>)>, Error> {
        use std::io::Seek;
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        file.seek(std::io::SeekFrom::Start(self.offset))
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut records = Vec::new();
        let mut at = 0usize;
        while bytes.len() >= at + 5 {
            let stream = match bytes[at] {
                2 => LogStream::Stderr,
                _ => LogStream::Stdout,
            };
            let mut len = [0u8; 4];
            len.copy_from_slice(&bytes[at + 1..at + 5]);
            let len = u32::from_le_bytes(len) as usize;
            if bytes.len() < at + 5 + len {
                break;
            }
            records.push((stream, bytes[at + 5..at + 5 + len].to_vec()));
            at += 5 + len;
        }
        self.offset += at as u64;
        Ok(records)
    }
}

/// The last `lines` lines of `records`, each kept with its stream (a line
/// split across records is joined).
pub fn tail(records: Vec<(LogStream, Vec<u8>)>, lines: usize) -> Vec<(LogStream, Vec<u8>)> {
    let mut split: Vec<(LogStream, Vec<u8>)> = Vec::new();
    let mut open = [false; 3];
    for (stream, bytes) in records {
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            match split.iter_mut().rev().find(|(s, _)| *s == stream) {
                Some((_, line)) if open[stream as usize] => line.extend_from_slice(piece),
                _ => split.push((stream, piece.to_vec())),
            }
            open[stream as usize] = !piece.ends_with(b"\n");
        }
    }
    let skip = split.len().saturating_sub(lines);
    split.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_reader_sees_only_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut reader = LogReader::new(&path);
        assert!(reader.read_new().unwrap().is_empty());
        let mut writer = LogWriter::open(&path).unwrap();
        writer.write(LogStream::Stdout, b"one\n").unwrap();
        writer.write(LogStream::Stderr, b"oops\n").unwrap();
        assert_eq!(
            reader.read_new().unwrap(),
            [
                (LogStream::Stdout, b"one\n".to_vec()),
                (LogStream::Stderr, b"oops\n".to_vec())
            ]
        );
        writer.write(LogStream::Stdout, b"two\n").unwrap();
        assert_eq!(
            reader.read_new().unwrap(),
            [(LogStream::Stdout, b"two\n".to_vec())]
        );
    }

    #[test]
    fn tail_counts_lines_across_records() {
        let records = vec![
            (LogStream::Stdout, b"a\nb".to_vec()),
            (LogStream::Stdout, b"c\nd\n".to_vec()),
            (LogStream::Stderr, b"e\n".to_vec()),
        ];
        let last: Vec<_> = tail(records, 2)
            .into_iter()
            .map(|(s, b)| (s, String::from_utf8(b).unwrap()))
            .collect();
        assert_eq!(
            last,
            [
                (LogStream::Stdout, "d\n".to_owned()),
                (LogStream::Stderr, "e\n".to_owned())
            ]
        );
    }
}

//! A detached container's output log: records of `[tag: u8][length: u32
//! little-endian][time: u64 little-endian, nanoseconds since the Unix
//! epoch][bytes]`, appended as output arrives, so `logs` can replay
//! standard output and standard error apart, in order and with the time
//! each arrived. The tag is the stream (1 or 2) with bit 7 set; a tag
//! without it (a log written before times were kept) has no time field.

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

/// Bit 7 of a record's tag: a time follows its length.
const TIMED: u8 = 0x80;

/// One record of a log: bytes from one stream, and when they arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The stream they came from.
    pub stream: LogStream,
    /// When they were logged, in nanoseconds since the Unix epoch (`None`
    /// in a log written before times were kept).
    pub time_ns: Option<u64>,
    /// The bytes.
    pub bytes: Vec<u8>,
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

    /// Appends `bytes` from `stream` as one record, timed now.
    pub fn write(&mut self, stream: LogStream, bytes: &[u8]) -> Result<(), Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut record = Vec::with_capacity(bytes.len() + 13);
        record.push(stream as u8 | TIMED);
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&now.to_le_bytes());
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
    /// does not exist yet), each with its stream.
    pub fn read_new(&mut self) -> Result<Vec<(LogStream, Vec<u8>)>, Error> {
        Ok(self
            .read_records()?
            .into_iter()
            .map(|record| (record.stream, record.bytes))
            .collect())
    }

    /// The complete records written since the last call (none when the log
    /// does not exist yet), with their times.
    pub fn read_records(&mut self) -> Result<Vec<LogRecord>, Error> {
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
            let tag = bytes[at];
            let stream = match tag & !TIMED {
                2 => LogStream::Stderr,
                _ => LogStream::Stdout,
            };
            let mut len = [0u8; 4];
            len.copy_from_slice(&bytes[at + 1..at + 5]);
            let len = u32::from_le_bytes(len) as usize;
            let head = if tag & TIMED != 0 { 13 } else { 5 };
            if bytes.len() < at + head + len {
                break;
            }
            let time_ns = (head == 13).then(|| {
                let mut time = [0u8; 8];
                time.copy_from_slice(&bytes[at + 5..at + 13]);
                u64::from_le_bytes(time)
            });
            records.push(LogRecord {
                stream,
                time_ns,
                bytes: bytes[at + head..at + head + len].to_vec(),
            });
            at += head + len;
        }
        self.offset += at as u64;
        Ok(records)
    }
}

/// `records` split into lines, each kept with its stream and the time of
/// the record it began in (a line split across records is joined; one
/// still open at the end is kept as it is).
pub fn lines(records: Vec<LogRecord>) -> Vec<LogRecord> {
    let mut split: Vec<LogRecord> = Vec::new();
    let mut open = [false; 3];
    for record in records {
        let stream = record.stream;
        for piece in record.bytes.split_inclusive(|b| *b == b'\n') {
            match split.iter_mut().rev().find(|line| line.stream == stream) {
                Some(line) if open[stream as usize] => line.bytes.extend_from_slice(piece),
                _ => split.push(LogRecord {
                    stream,
                    time_ns: record.time_ns,
                    bytes: piece.to_vec(),
                }),
            }
            open[stream as usize] = !piece.ends_with(b"\n");
        }
    }
    split
}

/// The last `lines` lines of `records`, each kept with its stream (a line
/// split across records is joined).
pub fn tail(records: Vec<(LogStream, Vec<u8>)>, lines: usize) -> Vec<(LogStream, Vec<u8>)> {
    let records = records
        .into_iter()
        .map(|(stream, bytes)| LogRecord {
            stream,
            time_ns: None,
            bytes,
        })
        .collect();
    let split = self::lines(records);
    let skip = split.len().saturating_sub(lines);
    split
        .into_iter()
        .skip(skip)
        .map(|line| (line.stream, line.bytes))
        .collect()
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
    fn records_keep_their_times_and_old_untimed_records_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        // A record as logs were written before times were kept.
        let mut old = vec![1u8];
        old.extend_from_slice(&3u32.to_le_bytes());
        old.extend_from_slice(b"old");
        std::fs::write(&path, &old).unwrap();
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        LogWriter::open(&path)
            .unwrap()
            .write(LogStream::Stderr, b"new\n")
            .unwrap();
        let records = LogReader::new(&path).read_records().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (records[0].time_ns, &records[0].bytes[..]),
            (None, &b"old"[..])
        );
        assert_eq!(records[1].stream, LogStream::Stderr);
        assert!(records[1].time_ns.unwrap() >= before);
        assert_eq!(records[1].bytes, b"new\n");
    }

    #[test]
    fn lines_keep_the_time_they_began_at() {
        let record = |time, bytes: &[u8]| LogRecord {
            stream: LogStream::Stdout,
            time_ns: Some(time),
            bytes: bytes.to_vec(),
        };
        let split = lines(vec![record(1, b"a\nb"), record(2, b"c\nd\n")]);
        let seen: Vec<_> = split
            .iter()
            .map(|l| {
                (
                    l.time_ns.unwrap(),
                    String::from_utf8_lossy(&l.bytes).into_owned(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, "a\n".to_owned()),
                (1, "bc\n".to_owned()),
                (2, "d\n".to_owned())
            ]
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

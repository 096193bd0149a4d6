//! What every entry carries besides its data: permissions, owner, times and
//! extended attributes.

/// A point in time with nanoseconds, seconds counted from the Unix epoch.
///
/// ext4 keeps 34 bits of seconds (1901 to 2446) and 30 bits of nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub seconds: i64,
    /// Nanoseconds within the second, below 1,000,000,000.
    pub nanoseconds: u32,
}

impl Timestamp {
    /// A whole number of seconds.
    pub fn from_seconds(seconds: i64) -> Self {
        Self {
            seconds,
            nanoseconds: 0,
        }
    }

    /// The current time.
    pub fn now() -> Self {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => Self {
                seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
                nanoseconds: since.subsec_nanos(),
            },
            Err(_) => Self::default(),
        }
    }
}

/// One extended attribute: a full name such as `user.comment` or
/// `security.capability`, and its value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xattr {
    /// The full name, namespace prefix included.
    pub name: String,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// A device number, as `mknod` takes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DeviceNumber {
    /// The major number (the driver).
    pub major: u32,
    /// The minor number (the unit).
    pub minor: u32,
}

/// Permissions, owner, times and extended attributes of one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Permission bits with set-user-ID, set-group-ID and sticky
    /// (`0o7777` at most); the file type comes from the entry kind.
    pub permissions: u16,
    /// Owner user ID.
    pub uid: u32,
    /// Owner group ID.
    pub gid: u32,
    /// Last access.
    pub atime: Timestamp,
    /// Last content change.
    pub mtime: Timestamp,
    /// Last status change.
    pub ctime: Timestamp,
    /// Creation.
    pub crtime: Timestamp,
    /// Extended attributes.
    pub xattrs: Vec<Xattr>,
}

impl Metadata {
    /// Root-owned, `permissions`, every time set to `time`, no xattrs.
    pub fn new(permissions: u16, time: Timestamp) -> Self {
        Self {
            permissions: permissions & 0o7777,
            uid: 0,
            gid: 0,
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            xattrs: Vec::new(),
        }
    }
}

//! The one error type of this crate, with the kernel's answers mapped to
//! variants a caller can match.

use rtnetlink::packet_core::ErrorMessage;

/// Everything that can go wrong talking netlink.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The object to create exists already.
    #[error("{what} already exists")]
    AlreadyExists {
        /// The interface, address or route, as a user would name it.
        what: String,
    },
    /// The object does not exist.
    #[error("{what} does not exist")]
    NotFound {
        /// The interface, address or route, as a user would name it.
        what: String,
    },
    /// The caller lacks the privilege (CAP_NET_ADMIN) for the change.
    #[error("permission denied for {what}: changing the network needs root (CAP_NET_ADMIN)")]
    PermissionDenied {
        /// What was being changed.
        what: String,
    },
    /// The kernel refused the request for another reason.
    #[error("{what}: the kernel refused: {source}")]
    Kernel {
        /// What was being done.
        what: String,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
    /// A value given by the caller is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The netlink socket or a device file could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The kernel answered something this crate does not understand.
    #[error("{what}: unexpected netlink answer: {detail}")]
    Protocol {
        /// What was being done.
        what: String,
        /// The answer.
        detail: String,
    },
}

impl NetlinkError {
    /// Maps an rtnetlink error for the operation on `what`.
    pub(crate) fn from_rtnetlink(what: impl Into<String>, error: rtnetlink::Error) -> Self {
        let what = what.into();
        match error {
            rtnetlink::Error::NetlinkError(message) => Self::from_errno(what, &message),
            other => Self::Protocol {
                what,
                detail: other.to_string(),
            },
        }
    }

    fn from_errno(what: String, message: &ErrorMessage) -> Self {
        Self::from_io(what, message.to_io())
    }

    /// Maps an I/O error (an errno) for the operation on `what`.
    pub(crate) fn from_io(what: String, source: std::io::Error) -> Self {
        const EPERM: i32 = 1;
        const ENOENT: i32 = 2;
        const ESRCH: i32 = 3;
        const EACCES: i32 = 13;
        const EEXIST: i32 = 17;
        const ENODEV: i32 = 19;
        const EADDRNOTAVAIL: i32 = 99;
        match source.raw_os_error().map(i32::abs) {
            Some(EEXIST) => Self::AlreadyExists { what },
            Some(ENOENT | ESRCH | ENODEV | EADDRNOTAVAIL) => Self::NotFound { what },
            Some(EPERM | EACCES) => Self::PermissionDenied { what },
            _ => Self::Kernel { what, source },
        }
    }
}

//! The one error type of this crate.

use std::io;

/// Everything that can go wrong talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The transport could not reach the agent.
    #[error("cannot reach the agent at {target}: {source}")]
    Connect {
        /// Where the agent was looked for.
        target: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The hybrid vsock handshake got an answer other than `OK <port>`.
    #[error("vsock handshake with {target} for port {port} failed: {answer}")]
    Handshake {
        /// The unix socket dialled.
        target: String,
        /// The guest port asked for.
        port: u32,
        /// What came back instead of `OK <port>`.
        answer: String,
    },
    /// The gRPC channel could not be set up over a connected stream.
    #[error("cannot open the agent channel: {0}")]
    Channel(#[from] tonic::transport::Error),
    /// A call did not answer within its deadline.
    #[error("{call}: the agent did not answer within {seconds:.1} s")]
    Timeout {
        /// The RPC.
        call: &'static str,
        /// The deadline.
        seconds: f64,
    },
    /// The agent is there but does not offer the call (an older vminitd).
    #[error("{call}: the agent does not implement it ({message}); update vminitd")]
    Unimplemented {
        /// The RPC.
        call: &'static str,
        /// The agent's message.
        message: String,
    },
    /// What the call named does not exist in the guest.
    #[error("{call}: not found: {message}")]
    NotFound {
        /// The RPC.
        call: &'static str,
        /// The agent's message.
        message: String,
    },
    /// What the call would create exists already (a process id, an address,
    /// a route).
    #[error("{call}: already exists: {message}")]
    AlreadyExists {
        /// The RPC.
        call: &'static str,
        /// The agent's message.
        message: String,
    },
    /// The call's arguments were refused.
    #[error("{call}: invalid argument: {message}")]
    InvalidArgument {
        /// The RPC.
        call: &'static str,
        /// The agent's message.
        message: String,
    },
    /// The guest refused for lack of permission (a program that is not
    /// executable, say).
    #[error("{call}: permission denied: {message}")]
    PermissionDenied {
        /// The RPC.
        call: &'static str,
        /// The agent's message.
        message: String,
    },
    /// The call conflicts with the current state (a second start, say).
    #[error("{call}: {message}")]
    FailedPrecondition {
        /// The RPC.
        call: &'static str,
        /// The agent's message.
        message: String,
    },
    /// The connection to the agent broke.
    #[error("{call}: the agent is unavailable: {message}")]
    Unavailable {
        /// The RPC.
        call: &'static str,
        /// Details.
        message: String,
    },
    /// Any other failure the agent reported.
    #[error("{call}: {message} (gRPC status {code:?})")]
    Failed {
        /// The RPC.
        call: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The agent's message.
        message: String,
    },
}

impl AgentError {
    /// Maps a gRPC status from call `call` to a typed error.
    pub(crate) fn from_status(call: &'static str, status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            tonic::Code::Unimplemented => Self::Unimplemented { call, message },
            tonic::Code::NotFound => Self::NotFound { call, message },
            tonic::Code::InvalidArgument => Self::InvalidArgument { call, message },
            tonic::Code::AlreadyExists => Self::AlreadyExists { call, message },
            tonic::Code::PermissionDenied => Self::PermissionDenied { call, message },
            tonic::Code::FailedPrecondition => Self::FailedPrecondition { call, message },
            tonic::Code::Unavailable => Self::Unavailable { call, message },
            code => Self::Failed {
                call,
                code,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_become_variants_that_keep_the_message() {
        let err = AgentError::from_status(
            "address_add",
            tonic::Status::already_exists("address 10.0.0.2/24 on eth0 already exists"),
        );
        assert!(matches!(err, AgentError::AlreadyExists { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "address_add: already exists: address 10.0.0.2/24 on eth0 already exists"
        );
        let err = AgentError::from_status(
            "link_set",
            tonic::Status::not_found("interface eth9 does not exist"),
        );
        assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("eth9"), "{err}");
        let err = AgentError::from_status("start_process", tonic::Status::failed_precondition("x"));
        assert!(
            matches!(err, AgentError::FailedPrecondition { .. }),
            "{err:?}"
        );
    }
}

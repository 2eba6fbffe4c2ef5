//! The client's error type.

use ferrisdb_proto::{ErrorCode, TlsError};
use std::net::SocketAddr;

/// Why a call failed. [`Error::is_retryable`] says whether sending the same
/// call again may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The [`crate::ClientConfig`] is invalid.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// A certificate or key file could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The call's arguments break a protocol limit (key or value size,
    /// batch size, bounds); checked before anything is sent.
    #[error("invalid argument ({code}): {message}")]
    InvalidArgument {
        /// The code a node would have answered with.
        code: ErrorCode,
        /// What is wrong.
        message: String,
    },
    /// An atomic batch names keys of more than one shard.
    #[error("batch spans shards {first} and {other}; an atomic batch must stay within one shard")]
    CrossShardBatch {
        /// Shard of the batch's first operation.
        first: u32,
        /// Shard of an operation outside it.
        other: u32,
    },
    /// No connection could be made to a node core.
    #[error("connect to {addr}: {reason}")]
    Connect {
        /// The core's address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
        /// False when retrying cannot help (a TLS handshake refused, a bad
        /// address), true for timeouts and network failures.
        retryable: bool,
    },
    /// The connection broke while the call was in flight. Whether a write
    /// took effect is unknown; writes are idempotent, so retrying is safe.
    #[error("connection to {addr} lost: {reason}")]
    ConnectionLost {
        /// The core's address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The call's deadline passed. Whether a write took effect is unknown.
    #[error("request timed out after {timeout_ms} ms")]
    Timeout {
        /// The deadline the call had.
        timeout_ms: u64,
    },
    /// The node answered with an error.
    #[error("node replied {code}: {message}")]
    Server {
        /// What kind of failure.
        code: ErrorCode,
        /// The node's explanation.
        message: String,
    },
    /// The node sent something the protocol does not allow (an undecodable
    /// frame, an answer of the wrong kind, a malformed shard map).
    #[error("protocol violation by {addr}: {reason}")]
    Protocol {
        /// The core's address.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Whether the same call may succeed if made again (possibly after a
    /// pause): connection failures and timeouts, and node errors whose code
    /// is retryable ([`ErrorCode::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { retryable, .. } => *retryable,
            Error::ConnectionLost { .. } | Error::Timeout { .. } => true,
            Error::Server { code, .. } => code.is_retryable(),
            Error::Config(_)
            | Error::Tls(_)
            | Error::InvalidArgument { .. }
            | Error::CrossShardBatch { .. }
            | Error::Protocol { .. } => false,
        }
    }

    /// The node's error code, when the node answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } | Error::InvalidArgument { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The same failure for another call that shared its request (a
    /// combined group of writes). The configuration and certificate
    /// variants are never the outcome of a request; they are kept as text.
    pub(crate) fn for_another_caller(&self) -> Error {
        match self {
            Error::Config(message) => Error::Config(message.clone()),
            Error::Tls(err) => Error::Config(err.to_string()),
            Error::InvalidArgument { code, message } => Error::InvalidArgument {
                code: *code,
                message: message.clone(),
            },
            Error::CrossShardBatch { first, other } => Error::CrossShardBatch {
                first: *first,
                other: *other,
            },
            Error::Connect {
                addr,
                reason,
                retryable,
            } => Error::Connect {
                addr: *addr,
                reason: reason.clone(),
                retryable: *retryable,
            },
            Error::ConnectionLost { addr, reason } => Error::ConnectionLost {
                addr: *addr,
                reason: reason.clone(),
            },
            Error::Timeout { timeout_ms } => Error::Timeout {
                timeout_ms: *timeout_ms,
            },
            Error::Server { code, message } => Error::Server {
                code: *code,
                message: message.clone(),
            },
            Error::Protocol { addr, reason } => Error::Protocol {
                addr: *addr,
                reason: reason.clone(),
            },
        }
    }

    pub(crate) fn invalid((code, message): (ErrorCode, String)) -> Self {
        Error::InvalidArgument { code, message }
    }
}

/// Whether a failed connection attempt may succeed later: not when the TLS
/// handshake was refused (certificates, ALPN) or the peer speaks another
/// QUIC version.
pub(crate) fn connection_error_retryable(err: &quinn::ConnectionError) -> bool {
    match err {
        quinn::ConnectionError::VersionMismatch => false,
        quinn::ConnectionError::TransportError(e) => !is_crypto(e.code),
        quinn::ConnectionError::ConnectionClosed(close) => !is_crypto(close.error_code),
        _ => true,
    }
}

/// QUIC carries TLS alerts as transport error codes 0x100..=0x1ff.
fn is_crypto(code: quinn::TransportErrorCode) -> bool {
    (0x100..=0x1ff).contains(&u64::from(code))
}

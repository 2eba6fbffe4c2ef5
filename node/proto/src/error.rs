//! Typed error codes carried in responses, and errors of decoding.

use rkyv::{Archive, Deserialize, Serialize};

/// Why a request failed. Sent to the client in [`crate::Response::Error`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[rkyv(derive(Debug))]
#[repr(u16)]
pub enum ErrorCode {
    /// The request is malformed (could not be decoded, bad bounds, ...).
    BadRequest = 1,
    /// A key is longer than [`crate::KEY_BYTES_MAX`] or empty.
    KeyTooLarge = 2,
    /// A value is longer than [`crate::VALUE_BYTES_MAX`].
    ValueTooLarge = 3,
    /// A batch has more than [`crate::BATCH_OPS_MAX`] operations.
    BatchTooLarge = 4,
    /// A frame is longer than [`crate::FRAME_PAYLOAD_BYTES_MAX`].
    FrameTooLarge = 5,
    /// The frame's protocol version is not one this node speaks.
    UnsupportedVersion = 6,
    /// The request reached a core that does not own the key's shard and
    /// could not be forwarded; refresh the shard map and retry.
    WrongShard = 7,
    /// The node has too much work queued; retry later.
    Overloaded = 8,
    /// The request's deadline passed before it completed. Whether a write
    /// took effect is unknown.
    Timeout = 9,
    /// The node is shutting down; retry against it after restart or another node.
    ShuttingDown = 10,
    /// The storage engine failed (I/O error, corruption); the shard is
    /// poisoned and refuses writes until it is reopened.
    StorageFailed = 11,
    /// A bug in the node.
    Internal = 12,
    /// A scan's bounds or options are invalid.
    InvalidRange = 13,
}

impl ErrorCode {
    /// Whether the same request may succeed if sent again (possibly to
    /// another core or after a delay). Writes are idempotent (put, delete,
    /// delete_range, batches of those), so retrying them is safe.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::WrongShard
                | ErrorCode::Overloaded
                | ErrorCode::Timeout
                | ErrorCode::ShuttingDown
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A frame that could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// The header declares (or an encoder produced) a payload above
    /// [`crate::FRAME_PAYLOAD_BYTES_MAX`]: `len` bytes, `max` allowed.
    #[error("frame payload of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    /// The header's version `got` is not [`crate::PROTOCOL_VERSION`].
    #[error("frame has protocol version {got}; this side speaks version {expected}")]
    UnsupportedVersion { got: u16, expected: u16 },
    /// The header's kind `got` is not the one expected in this direction.
    #[error("frame kind {got} is not the expected {expected}")]
    WrongKind { got: u16, expected: u16 },
    /// The stream ended after `have` of the frame's `need` bytes.
    #[error("stream ended inside a frame ({have} of {need} bytes)")]
    Truncated { have: usize, need: usize },
    /// The payload failed validation (bytecheck) or could not be encoded.
    #[error("frame payload is not a valid archive: {0}")]
    Malformed(String),
}

impl ProtoError {
    /// The error code a node replies with for this decoding failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtoError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            ProtoError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            _ => ErrorCode::BadRequest,
        }
    }
}

//! The FerrisDB wire protocol, shared by the node and the client.
//!
//! A client talks to a node over QUIC (ALPN [`ALPN`]). On a bidirectional
//! stream it sends request frames and reads response frames; many requests
//! may be in flight on one stream, matched by request id, and responses may
//! arrive in any order. A frame is an 8-byte header followed by an rkyv
//! archive that the receiver validates (bytecheck) before it trusts it:
//!
//! ```text
//! offset size field
//! 0      4    payload length in bytes, u32 LE (<= FRAME_PAYLOAD_BYTES_MAX)
//! 4      2    protocol version, u16 LE (= PROTOCOL_VERSION)
//! 6      2    frame kind, u16 LE (1 = request, 2 = response)
//! 8      len  rkyv archive of RequestFrame or ResponseFrame
//! ```
//!
//! `docs/protocol.md` describes every message and limit.

#![forbid(unsafe_code)]

pub mod error;
pub mod frame;
pub mod limits;
pub mod message;
pub mod tls;

pub use error::{ErrorCode, ProtoError};
pub use frame::{FRAME_HEADER_BYTES, Frame, FrameDecoder, FrameHeader, FrameKind};
pub use limits::*;
pub use message::*;
pub use tls::TlsError;

/// ALPN protocol id: the major version of the wire protocol is part of it,
/// so a client and a node that do not speak the same version fail the
/// handshake with a clear TLS alert instead of exchanging garbage.
pub const ALPN: &[u8] = b"ferrisdb/1";

/// Version carried in every frame header.
pub const PROTOCOL_VERSION: u16 = 1;

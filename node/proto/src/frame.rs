//! Frame header, encoding, and validated decoding.

use crate::PROTOCOL_VERSION;
use crate::error::ProtoError;
use crate::limits::FRAME_PAYLOAD_BYTES_MAX;
use crate::message::{RequestFrame, ResponseFrame};
use rkyv::util::AlignedVec;

pub const FRAME_HEADER_BYTES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum FrameKind {
    Request = 1,
    Response = 2,
}

/// The 8-byte header in front of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub payload_len: u32,
    pub version: u16,
    pub kind: u16,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut out = [0u8; FRAME_HEADER_BYTES];
        out[0..4].copy_from_slice(&self.payload_len.to_le_bytes());
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[6..8].copy_from_slice(&self.kind.to_le_bytes());
        out
    }

    /// Parses and checks a header: the version must be ours, the kind the
    /// expected one and the length within [`FRAME_PAYLOAD_BYTES_MAX`], all
    /// before the caller allocates anything for the payload.
    pub fn decode(
        bytes: &[u8; FRAME_HEADER_BYTES],
        expected: FrameKind,
    ) -> Result<Self, ProtoError> {
        let header = FrameHeader {
            payload_len: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            version: u16::from_le_bytes([bytes[4], bytes[5]]),
            kind: u16::from_le_bytes([bytes[6], bytes[7]]),
        };
        if header.version != PROTOCOL_VERSION {
            return Err(ProtoError::UnsupportedVersion {
                got: header.version,
                expected: PROTOCOL_VERSION,
            });
        }
        if header.kind != expected as u16 {
            return Err(ProtoError::WrongKind {
                got: header.kind,
                expected: expected as u16,
            });
        }
        if header.payload_len as usize > FRAME_PAYLOAD_BYTES_MAX {
            return Err(ProtoError::FrameTooLarge {
                len: header.payload_len as usize,
                max: FRAME_PAYLOAD_BYTES_MAX,
            });
        }
        Ok(header)
    }
}

fn encode<T>(kind: FrameKind, value: &T) -> Result<Vec<u8>, ProtoError>
where
    T: for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<
                AlignedVec,
                rkyv::ser::allocator::ArenaHandle<'a>,
                rkyv::rancor::Error,
            >,
        >,
{
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(value)
        .map_err(|e| ProtoError::Malformed(e.to_string()))?;
    if payload.len() > FRAME_PAYLOAD_BYTES_MAX {
        return Err(ProtoError::FrameTooLarge {
            len: payload.len(),
            max: FRAME_PAYLOAD_BYTES_MAX,
        });
    }
    let header = FrameHeader {
        payload_len: payload.len() as u32,
        version: PROTOCOL_VERSION,
        kind: kind as u16,
    };
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Header + archive of a request, ready to write to a stream.
pub fn encode_request(frame: &RequestFrame) -> Result<Vec<u8>, ProtoError> {
    encode(FrameKind::Request, frame)
}

/// Header + archive of a response, ready to write to a stream.
pub fn encode_response(frame: &ResponseFrame) -> Result<Vec<u8>, ProtoError> {
    encode(FrameKind::Response, frame)
}

/// Copies `payload` into an aligned buffer (rkyv archives need alignment and
/// stream bytes have none).
fn aligned(payload: &[u8]) -> AlignedVec {
    let mut buf = AlignedVec::with_capacity(payload.len());
    buf.extend_from_slice(payload);
    buf
}

/// Validates (bytecheck) and deserializes a request payload.
pub fn decode_request(payload: &[u8]) -> Result<RequestFrame, ProtoError> {
    rkyv::from_bytes::<RequestFrame, rkyv::rancor::Error>(&aligned(payload))
        .map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// Validates (bytecheck) and deserializes a response payload.
pub fn decode_response(payload: &[u8]) -> Result<ResponseFrame, ProtoError> {
    rkyv::from_bytes::<ResponseFrame, rkyv::rancor::Error>(&aligned(payload))
        .map_err(|e| ProtoError::Malformed(e.to_string()))
}

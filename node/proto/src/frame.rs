//! Frame header, encoding, and validated decoding.

use crate::PROTOCOL_VERSION;
use crate::error::ProtoError;
use crate::limits::FRAME_PAYLOAD_BYTES_MAX;
use crate::message::{RequestFrame, ResponseFrame};
use rkyv::util::AlignedVec;

/// Bytes of the header in front of every frame.
pub const FRAME_HEADER_BYTES: usize = 8;

/// What a frame carries, by direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum FrameKind {
    /// A [`RequestFrame`], client to node.
    Request = 1,
    /// A [`ResponseFrame`], node to client.
    Response = 2,
}

/// The 8-byte header in front of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes of payload after the header (u32 LE at offset 0).
    pub payload_len: u32,
    /// [`PROTOCOL_VERSION`] of the sender (u16 LE at offset 4).
    pub version: u16,
    /// [`FrameKind`] as a number (u16 LE at offset 6).
    pub kind: u16,
}

impl FrameHeader {
    /// The header's 8 bytes.
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
    decode_aligned_request(&aligned(payload))
}

/// Validates (bytecheck) and deserializes a response payload.
pub fn decode_response(payload: &[u8]) -> Result<ResponseFrame, ProtoError> {
    decode_aligned_response(&aligned(payload))
}

fn decode_aligned_request(payload: &AlignedVec) -> Result<RequestFrame, ProtoError> {
    rkyv::from_bytes::<RequestFrame, rkyv::rancor::Error>(payload)
        .map_err(|e| ProtoError::Malformed(e.to_string()))
}

fn decode_aligned_response(payload: &AlignedVec) -> Result<ResponseFrame, ProtoError> {
    rkyv::from_bytes::<ResponseFrame, rkyv::rancor::Error>(payload)
        .map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// A message that travels in a frame: [`RequestFrame`] or [`ResponseFrame`].
pub trait Frame: Sized {
    /// The kind its frame header carries.
    const KIND: FrameKind;

    /// Validates (bytecheck) and deserializes a payload held in an aligned
    /// buffer.
    fn decode_payload(payload: &AlignedVec) -> Result<Self, ProtoError>;

    /// Header + archive, ready to write to a stream.
    fn encode_frame(&self) -> Result<Vec<u8>, ProtoError>;
}

impl Frame for RequestFrame {
    const KIND: FrameKind = FrameKind::Request;

    fn decode_payload(payload: &AlignedVec) -> Result<Self, ProtoError> {
        decode_aligned_request(payload)
    }

    fn encode_frame(&self) -> Result<Vec<u8>, ProtoError> {
        encode_request(self)
    }
}

impl Frame for ResponseFrame {
    const KIND: FrameKind = FrameKind::Response;

    fn decode_payload(payload: &AlignedVec) -> Result<Self, ProtoError> {
        decode_aligned_response(payload)
    }

    fn encode_frame(&self) -> Result<Vec<u8>, ProtoError> {
        encode_response(self)
    }
}

/// Payload bytes a [`FrameDecoder`] reserves on a header alone; beyond
/// this the buffer grows as payload bytes arrive. Bounds what a peer that
/// sends only headers (on many streams) makes a node hold.
const PAYLOAD_RESERVED_UPFRONT_BYTES_MAX: usize = 64 * 1024;

/// Where a [`FrameDecoder`] stands in the current frame.
#[derive(Debug)]
enum DecodeState {
    /// Collecting the 8 header bytes; `have` of them are in `header`.
    Header {
        header: [u8; FRAME_HEADER_BYTES],
        have: usize,
    },
    /// The header was checked; collecting exactly `payload_len` bytes into a
    /// buffer that grows as they arrive and never beyond that many.
    Payload {
        payload_len: usize,
        payload: AlignedVec,
    },
    /// A header was refused: frame boundaries are lost, so nothing more on
    /// this stream can be decoded.
    Failed(ProtoError),
}

/// Incremental decoder of a stream of frames of one kind.
///
/// Push the bytes as they arrive from the stream ([`FrameDecoder::push`]
/// returns how many it took), pop complete frames ([`FrameDecoder::pop`]),
/// and at the end of the stream call [`FrameDecoder::finish`] to learn
/// whether it ended inside a frame. A typical loop:
///
/// ```
/// # use ferrisdb_proto::{frame::FrameDecoder, RequestFrame};
/// # fn f(mut chunk: &[u8]) -> Result<(), ferrisdb_proto::ProtoError> {
/// let mut decoder = FrameDecoder::<RequestFrame>::new();
/// while !chunk.is_empty() {
///     let taken = decoder.push(chunk)?;
///     chunk = &chunk[taken..];
///     if let Some(frame) = decoder.pop() {
///         let _request = frame?;
///     }
/// }
/// # Ok(()) }
/// ```
///
/// # Invariants
///
/// - The header (version, kind, length ≤ [`FRAME_PAYLOAD_BYTES_MAX`]) is
///   checked before any buffer is reserved for the payload. The payload
///   buffer starts at no more than 64 KiB and grows (doubling) as payload
///   bytes arrive, never beyond the header-declared length.
/// - At most one complete frame is held: `push` takes no bytes while a
///   decoded frame waits to be popped, so memory stays bounded by one frame
///   whatever the peer sends.
/// - A refused header poisons the decoder (every later call returns the
///   same error); a payload that fails validation is reported once by `pop`
///   and decoding continues with the next frame, since its boundaries are
///   known.
#[derive(Debug)]
pub struct FrameDecoder<F> {
    state: DecodeState,
    ready: Option<Result<F, ProtoError>>,
}

impl<F: Frame> Default for FrameDecoder<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Frame> FrameDecoder<F> {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        FrameDecoder {
            state: DecodeState::Header {
                header: [0; FRAME_HEADER_BYTES],
                have: 0,
            },
            ready: None,
        }
    }

    /// Takes bytes from the front of `input` up to the end of the current
    /// frame and returns how many it took (0 while a decoded frame waits to
    /// be popped). Fails, and keeps failing, once a header is refused.
    pub fn push(&mut self, input: &[u8]) -> Result<usize, ProtoError> {
        let mut taken = 0;
        while taken < input.len() && self.ready.is_none() {
            taken += self.step(&input[taken..])?;
        }
        Ok(taken)
    }

    /// The next complete frame, decoded and validated, if one is ready.
    pub fn pop(&mut self) -> Option<Result<F, ProtoError>> {
        self.ready.take()
    }

    /// Whether the stream may end here: no partial frame is buffered and no
    /// decoded frame waits. Errors with [`ProtoError::Truncated`] when the
    /// stream ended inside a frame.
    pub fn finish(&self) -> Result<(), ProtoError> {
        match &self.state {
            DecodeState::Failed(err) => Err(err.clone()),
            DecodeState::Header { have: 0, .. } => Ok(()),
            DecodeState::Header { have, .. } => Err(ProtoError::Truncated {
                have: *have,
                need: FRAME_HEADER_BYTES,
            }),
            DecodeState::Payload {
                payload_len,
                payload,
            } => Err(ProtoError::Truncated {
                have: FRAME_HEADER_BYTES + payload.len(),
                need: FRAME_HEADER_BYTES + payload_len,
            }),
        }
    }

    /// Consumes bytes of the current frame; returns how many.
    fn step(&mut self, input: &[u8]) -> Result<usize, ProtoError> {
        match &mut self.state {
            DecodeState::Failed(err) => Err(err.clone()),
            DecodeState::Header { header, have } => {
                let n = (FRAME_HEADER_BYTES - *have).min(input.len());
                header[*have..*have + n].copy_from_slice(&input[..n]);
                *have += n;
                if *have == FRAME_HEADER_BYTES {
                    let decoded = match FrameHeader::decode(header, F::KIND) {
                        Ok(decoded) => decoded,
                        Err(err) => {
                            self.state = DecodeState::Failed(err.clone());
                            return Err(err);
                        }
                    };
                    let payload_len = decoded.payload_len as usize;
                    assert!(payload_len <= FRAME_PAYLOAD_BYTES_MAX, "header was checked");
                    self.state = DecodeState::Payload {
                        payload_len,
                        payload: AlignedVec::with_capacity(
                            payload_len.min(PAYLOAD_RESERVED_UPFRONT_BYTES_MAX),
                        ),
                    };
                    self.complete_if_full();
                }
                Ok(n)
            }
            DecodeState::Payload {
                payload_len,
                payload,
            } => {
                let n = (*payload_len - payload.len()).min(input.len());
                let needed = payload.len() + n;
                if needed > payload.capacity() {
                    // Geometric growth keeps copying linear; the cap keeps
                    // the buffer within the declared length.
                    let target = (payload.capacity() * 2).max(needed).min(*payload_len);
                    payload.reserve_exact(target - payload.len());
                }
                payload.extend_from_slice(&input[..n]);
                self.complete_if_full();
                Ok(n)
            }
        }
    }

    /// Decodes the payload once all of it has arrived and starts the next
    /// frame.
    fn complete_if_full(&mut self) {
        let DecodeState::Payload {
            payload_len,
            payload,
        } = &self.state
        else {
            return;
        };
        if payload.len() < *payload_len {
            return;
        }
        assert_eq!(payload.len(), *payload_len, "never more than declared");
        self.ready = Some(F::decode_payload(payload));
        self.state = DecodeState::Header {
            header: [0; FRAME_HEADER_BYTES],
            have: 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::message::*;
    use proptest::prelude::*;

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..max)
    }

    fn key_bound() -> impl Strategy<Value = KeyBound> {
        prop_oneof![
            Just(KeyBound::Unbounded),
            bytes(16).prop_map(KeyBound::Included),
            bytes(16).prop_map(KeyBound::Excluded),
        ]
    }

    fn write_op() -> impl Strategy<Value = WriteOp> {
        prop_oneof![
            (bytes(16), bytes(64)).prop_map(|(key, value)| WriteOp::Put { key, value }),
            bytes(16).prop_map(|key| WriteOp::Delete { key }),
            (bytes(16), bytes(16)).prop_map(|(start, end)| WriteOp::DeleteRange { start, end }),
        ]
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            bytes(16).prop_map(|key| Request::Get { key }),
            (bytes(16), bytes(64)).prop_map(|(key, value)| Request::Put { key, value }),
            bytes(16).prop_map(|key| Request::Delete { key }),
            (bytes(16), bytes(16)).prop_map(|(start, end)| Request::DeleteRange { start, end }),
            prop::collection::vec(write_op(), 0..8).prop_map(|ops| Request::Batch { ops }),
            (key_bound(), key_bound(), any::<u32>(), any::<bool>()).prop_map(
                |(start, end, limit, reverse)| Request::Scan {
                    start,
                    end,
                    limit,
                    reverse
                }
            ),
            Just(Request::ShardMap),
            Just(Request::Status),
        ]
    }

    fn error_code() -> impl Strategy<Value = ErrorCode> {
        prop::sample::select(vec![
            ErrorCode::BadRequest,
            ErrorCode::KeyTooLarge,
            ErrorCode::ValueTooLarge,
            ErrorCode::BatchTooLarge,
            ErrorCode::FrameTooLarge,
            ErrorCode::UnsupportedVersion,
            ErrorCode::WrongShard,
            ErrorCode::Overloaded,
            ErrorCode::Timeout,
            ErrorCode::ShuttingDown,
            ErrorCode::StorageFailed,
            ErrorCode::Internal,
            ErrorCode::InvalidRange,
        ])
    }

    fn shard_map() -> impl Strategy<Value = ShardMap> {
        let shard = (
            any::<u32>(),
            bytes(8),
            prop::option::of(bytes(8)),
            any::<u32>(),
        )
            .prop_map(|(id, start, end, core)| ShardInfo {
                id,
                start,
                end,
                core,
            });
        (
            any::<u64>(),
            prop::collection::vec(any::<u16>(), 0..4),
            prop::collection::vec(shard, 0..4),
        )
            .prop_map(|(version, core_ports, shards)| ShardMap {
                version,
                core_ports,
                shards,
            })
    }

    fn response() -> impl Strategy<Value = Response> {
        let kv = (bytes(16), bytes(32)).prop_map(|(key, value)| KeyValue { key, value });
        prop_oneof![
            prop::option::of(bytes(64)).prop_map(Response::Value),
            any::<u64>().prop_map(|version| Response::Written { version }),
            (
                prop::collection::vec(kv, 0..6),
                any::<bool>(),
                prop::option::of(key_bound())
            )
                .prop_map(|(entries, done, resume)| Response::ScanChunk {
                    entries,
                    done,
                    resume
                }),
            shard_map().prop_map(Response::ShardMap),
            ".{0,40}".prop_map(Response::Status),
            (error_code(), ".{0,40}")
                .prop_map(|(code, message)| Response::Error(ErrorReply { code, message })),
        ]
    }

    fn request_frame() -> impl Strategy<Value = RequestFrame> {
        (any::<u64>(), any::<u64>(), any::<u32>(), request()).prop_map(
            |(id, shard_map_version, timeout_ms, request)| RequestFrame {
                id,
                shard_map_version,
                timeout_ms,
                request,
            },
        )
    }

    fn response_frame() -> impl Strategy<Value = ResponseFrame> {
        (any::<u64>(), any::<u64>(), response()).prop_map(|(id, shard_map_version, response)| {
            ResponseFrame {
                id,
                shard_map_version,
                response,
            }
        })
    }

    /// Feeds `bytes` to a fresh decoder in pieces of `piece` bytes and
    /// collects every frame it yields.
    fn decode_all<F: Frame>(
        bytes: &[u8],
        piece: usize,
    ) -> (Vec<Result<F, ProtoError>>, Result<(), ProtoError>) {
        let mut decoder = FrameDecoder::<F>::new();
        let mut frames = Vec::new();
        for mut chunk in bytes.chunks(piece.max(1)) {
            while !chunk.is_empty() {
                match decoder.push(chunk) {
                    Ok(taken) => chunk = &chunk[taken..],
                    Err(err) => return (frames, Err(err)),
                }
                frames.extend(decoder.pop());
            }
        }
        let end = decoder.finish();
        (frames, end)
    }

    proptest! {
        #[test]
        fn requests_round_trip(frames in prop::collection::vec(request_frame(), 1..5), piece in 1usize..64) {
            let mut stream = Vec::new();
            for frame in &frames {
                let bytes = encode_request(frame).expect("encode");
                let header = FrameHeader::decode(
                    bytes[..FRAME_HEADER_BYTES].try_into().expect("8 bytes"),
                    FrameKind::Request,
                ).expect("header");
                prop_assert_eq!(header.payload_len as usize, bytes.len() - FRAME_HEADER_BYTES);
                prop_assert_eq!(&decode_request(&bytes[FRAME_HEADER_BYTES..]).expect("decode"), frame);
                stream.extend_from_slice(&bytes);
            }
            let (decoded, end) = decode_all::<RequestFrame>(&stream, piece);
            prop_assert_eq!(end, Ok(()));
            let decoded: Vec<_> = decoded.into_iter().map(|f| f.expect("valid")).collect();
            prop_assert_eq!(decoded, frames);
        }

        #[test]
        fn responses_round_trip(frames in prop::collection::vec(response_frame(), 1..5), piece in 1usize..64) {
            let mut stream = Vec::new();
            for frame in &frames {
                let bytes = encode_response(frame).expect("encode");
                prop_assert_eq!(&decode_response(&bytes[FRAME_HEADER_BYTES..]).expect("decode"), frame);
                stream.extend_from_slice(&bytes);
            }
            let (decoded, end) = decode_all::<ResponseFrame>(&stream, piece);
            prop_assert_eq!(end, Ok(()));
            let decoded: Vec<_> = decoded.into_iter().map(|f| f.expect("valid")).collect();
            prop_assert_eq!(decoded, frames);
        }

        #[test]
        fn truncated_streams_are_reported(frame in request_frame(), cut_seed in any::<usize>()) {
            let bytes = encode_request(&frame).expect("encode");
            let cut = 1 + cut_seed % (bytes.len() - 1);
            let (decoded, end) = decode_all::<RequestFrame>(&bytes[..cut], 7);
            prop_assert!(decoded.is_empty());
            let truncated = matches!(end, Err(ProtoError::Truncated { have, need }) if have == cut && need == if cut < FRAME_HEADER_BYTES { FRAME_HEADER_BYTES } else { bytes.len() });
            prop_assert!(truncated, "{:?}", end);
        }

        #[test]
        fn bit_flips_in_payloads_never_panic(frame in response_frame(), flips in prop::collection::vec(any::<prop::sample::Index>(), 1..8)) {
            let mut bytes = encode_response(&frame).expect("encode");
            let payload_len = bytes.len() - FRAME_HEADER_BYTES;
            for flip in flips {
                let bit = flip.index(payload_len * 8);
                bytes[FRAME_HEADER_BYTES + bit / 8] ^= 1 << (bit % 8);
            }
            // bytecheck either rejects the payload or yields some value; the
            // decoder then stands at the next frame.
            let (decoded, end) = decode_all::<ResponseFrame>(&bytes, 5);
            prop_assert_eq!(decoded.len(), 1);
            prop_assert_eq!(end, Ok(()));
            let _ = decode_response(&bytes[FRAME_HEADER_BYTES..]);
        }

        #[test]
        fn garbage_never_panics(garbage in bytes(256), piece in 1usize..32) {
            let _ = decode_all::<RequestFrame>(&garbage, piece);
            let _ = decode_all::<ResponseFrame>(&garbage, piece);
            let _ = decode_request(&garbage);
            let _ = decode_response(&garbage);
        }
    }

    fn header_bytes(payload_len: u32, version: u16, kind: u16) -> [u8; FRAME_HEADER_BYTES] {
        FrameHeader {
            payload_len,
            version,
            kind,
        }
        .encode()
    }

    #[test]
    fn wrong_version_poisons_the_decoder() {
        let mut decoder = FrameDecoder::<RequestFrame>::new();
        let err = decoder
            .push(&header_bytes(
                4,
                PROTOCOL_VERSION + 1,
                FrameKind::Request as u16,
            ))
            .expect_err("version 2");
        let expected = ProtoError::UnsupportedVersion {
            got: PROTOCOL_VERSION + 1,
            expected: PROTOCOL_VERSION,
        };
        assert_eq!(err, expected);
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
        assert_eq!(decoder.push(b"more"), Err(expected.clone()));
        assert_eq!(decoder.finish(), Err(expected));
        assert!(decoder.pop().is_none());
    }

    #[test]
    fn wrong_kind_is_refused() {
        let frame = ResponseFrame {
            id: 1,
            shard_map_version: 1,
            response: Response::Status(String::new()),
        };
        let bytes = encode_response(&frame).expect("encode");
        let mut decoder = FrameDecoder::<RequestFrame>::new();
        assert_eq!(
            decoder.push(&bytes),
            Err(ProtoError::WrongKind {
                got: FrameKind::Response as u16,
                expected: FrameKind::Request as u16
            })
        );
    }

    #[test]
    fn oversized_header_is_refused_before_any_payload() {
        let len = FRAME_PAYLOAD_BYTES_MAX as u32 + 1;
        let mut decoder = FrameDecoder::<RequestFrame>::new();
        let err = decoder
            .push(&header_bytes(
                len,
                PROTOCOL_VERSION,
                FrameKind::Request as u16,
            ))
            .expect_err("too large");
        assert_eq!(
            err,
            ProtoError::FrameTooLarge {
                len: len as usize,
                max: FRAME_PAYLOAD_BYTES_MAX
            }
        );
        assert_eq!(err.code(), ErrorCode::FrameTooLarge);
        let huge = header_bytes(u32::MAX, PROTOCOL_VERSION, FrameKind::Request as u16);
        assert!(FrameHeader::decode(&huge, FrameKind::Request).is_err());
    }

    #[test]
    fn payload_memory_follows_the_bytes_received() {
        /// Capacity of the payload buffer in progress, if one is.
        fn capacity(decoder: &FrameDecoder<RequestFrame>) -> Option<usize> {
            match &decoder.state {
                DecodeState::Payload { payload, .. } => Some(payload.capacity()),
                _ => None,
            }
        }
        let len = FRAME_PAYLOAD_BYTES_MAX;
        let mut decoder = FrameDecoder::<RequestFrame>::new();
        let header = header_bytes(len as u32, PROTOCOL_VERSION, FrameKind::Request as u16);
        assert_eq!(decoder.push(&header), Ok(FRAME_HEADER_BYTES));
        let upfront = capacity(&decoder).expect("payload in progress");
        assert!(upfront <= PAYLOAD_RESERVED_UPFRONT_BYTES_MAX, "{upfront}");
        let piece = vec![0u8; 100_000];
        let mut received = 0;
        while received < len {
            let n = piece.len().min(len - received);
            assert_eq!(decoder.push(&piece[..n]), Ok(n));
            received += n;
            if let Some(cap) = capacity(&decoder) {
                assert!(cap <= len, "never beyond the declared length");
                assert!(cap <= 2 * received.max(PAYLOAD_RESERVED_UPFRONT_BYTES_MAX));
            }
        }
        assert!(matches!(decoder.pop(), Some(Err(ProtoError::Malformed(_)))));
    }

    #[test]
    fn push_stops_at_a_frame_boundary_until_popped() {
        let frame = RequestFrame {
            id: 7,
            shard_map_version: 3,
            timeout_ms: 100,
            request: Request::Get { key: b"k".to_vec() },
        };
        let one = encode_request(&frame).expect("encode");
        let two = [one.clone(), one.clone()].concat();
        let mut decoder = FrameDecoder::<RequestFrame>::new();
        assert_eq!(decoder.push(&two), Ok(one.len()));
        assert_eq!(decoder.push(&two[one.len()..]), Ok(0), "a frame waits");
        assert_eq!(decoder.pop(), Some(Ok(frame.clone())));
        assert_eq!(decoder.push(&two[one.len()..]), Ok(one.len()));
        assert_eq!(decoder.pop(), Some(Ok(frame)));
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn malformed_payload_is_reported_and_decoding_continues() {
        let garbage = [0xffu8; 16];
        let good = RequestFrame {
            id: 1,
            shard_map_version: 0,
            timeout_ms: 0,
            request: Request::Status,
        };
        let mut stream = header_bytes(16, PROTOCOL_VERSION, FrameKind::Request as u16).to_vec();
        stream.extend_from_slice(&garbage);
        stream.extend_from_slice(&encode_request(&good).expect("encode"));
        let (decoded, end) = decode_all::<RequestFrame>(&stream, 3);
        assert_eq!(end, Ok(()));
        assert_eq!(decoded.len(), 2);
        assert!(
            matches!(decoded[0], Err(ProtoError::Malformed(_))),
            "{:?}",
            decoded[0]
        );
        assert_eq!(decoded[1], Ok(good));
    }

    #[test]
    fn empty_payload_is_malformed_not_a_panic() {
        let mut decoder = FrameDecoder::<ResponseFrame>::new();
        let header = header_bytes(0, PROTOCOL_VERSION, FrameKind::Response as u16);
        assert_eq!(decoder.push(&header), Ok(FRAME_HEADER_BYTES));
        assert!(matches!(decoder.pop(), Some(Err(ProtoError::Malformed(_)))));
    }
}

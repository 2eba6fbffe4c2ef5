//! Limits of the protocol. Each is checked before anything is allocated for
//! the thing it bounds (a frame's length is read from its header and refused
//! before its payload is buffered).

/// Largest user key, in bytes (FoundationDB's limit).
pub const KEY_BYTES_MAX: usize = 10_000;
/// Largest value, in bytes (FoundationDB's limit).
pub const VALUE_BYTES_MAX: usize = 100_000;
/// Most write operations in one atomic batch.
pub const BATCH_OPS_MAX: usize = 10_000;
/// Largest frame payload (the rkyv archive after the 8-byte header).
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 4 << 20;
/// Most entries a scan may ask for in one request (0 = this many).
pub const SCAN_LIMIT_MAX: u32 = 1_000_000;
/// A scan's entries are sent in chunks of at most this many payload bytes.
pub const SCAN_CHUNK_BYTES_MAX: usize = 1 << 20;
/// Concurrent bidirectional streams a client may open on one connection
/// (QUIC transport parameter `initial_max_streams_bidi`).
pub const STREAMS_PER_CONNECTION_MAX: u32 = 64;
/// Requests in flight on one connection; a node stops reading request frames
/// past this and QUIC flow control pushes back on the client.
pub const IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX: usize = 4096;
/// Longest deadline a request may carry, in milliseconds.
pub const REQUEST_TIMEOUT_MS_MAX: u32 = 600_000;

const _: () = assert!(KEY_BYTES_MAX + VALUE_BYTES_MAX + 1024 < FRAME_PAYLOAD_BYTES_MAX);
const _: () = assert!(SCAN_CHUNK_BYTES_MAX + 64 * 1024 < FRAME_PAYLOAD_BYTES_MAX);

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
/// Bytes asked for each UDP socket's receive and send buffer, on the node's
/// cores and in the client. Linux's default (208 KiB) holds about 90 full
/// datagrams: the replies to 64 streamed scans overflowed it, and every
/// dropped datagram cost a QUIC loss recovery (YCSB workload E ran at 1.5k
/// scans/s). Linux caps the request at `net.core.rmem_max` / `wmem_max`;
/// a smaller grant is logged.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;
/// Largest UDP payload QUIC's path MTU discovery probes for (quinn's
/// default stops at 1452, Ethernet's). On loopback and jumbo-frame networks
/// larger datagrams carry a scan's reply in a few packets instead of one
/// per 1.4 KB, each a system call and a decryption; on a 1500-byte path the
/// probes above it are lost and the search settles where it would have.
pub const MTU_UPPER_BOUND: u16 = 65_527;

const _: () = assert!(KEY_BYTES_MAX + VALUE_BYTES_MAX + 1024 < FRAME_PAYLOAD_BYTES_MAX);
const _: () = assert!(SCAN_CHUNK_BYTES_MAX + 64 * 1024 < FRAME_PAYLOAD_BYTES_MAX);

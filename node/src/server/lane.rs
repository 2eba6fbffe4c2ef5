//! A client connection and its lanes (bidirectional streams carrying
//! request frames one way and response frames the other).

use super::core::{Core, Out, Sink};
use super::exec::error;
use ferrisdb_io::mesh::{LocalReceiver, new_bounded};
use ferrisdb_io::notify::Notify;
use ferrisdb_io::quic::{Connection, RecvStream, SendStream};
use ferrisdb_proto::frame::{decode_request, encode_response};
use ferrisdb_proto::{
    ErrorCode, FRAME_HEADER_BYTES, FrameHeader, FrameKind, IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX,
    ResponseFrame,
};
use std::cell::Cell;
use std::rc::Rc;

/// Encoded response frames queued for one lane's writer.
const LANE_QUEUE_FRAMES: usize = 1024;
/// Bytes read from a stream at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// QUIC application error code sent when a lane is closed for a protocol error.
pub const PROTOCOL_ERROR_CODE: u32 = 1;

/// Requests in flight on one connection, shared by its lanes.
struct Budget {
    inflight: Cell<usize>,
    freed: Notify,
}

/// Serves `conn` until the client or the node closes it.
pub async fn serve_connection(core: Rc<Core>, conn: Connection) {
    let budget = Rc::new(Budget {
        inflight: Cell::new(0),
        freed: Notify::new(),
    });
    while let Ok((send, recv)) = conn.accept_bi().await {
        ferrisdb_io::executor::spawn(serve_lane(core.clone(), send, recv, budget.clone())).detach();
    }
}

async fn serve_lane(core: Rc<Core>, send: SendStream, mut recv: RecvStream, budget: Rc<Budget>) {
    let (tx, rx) = new_bounded::<Vec<u8>>(LANE_QUEUE_FRAMES);
    let tx = Rc::new(tx);
    let writer = ferrisdb_io::executor::spawn(write_lane(send, rx));
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0usize;
    'read: loop {
        // Every complete frame in the buffer.
        while buf.len() - start >= FRAME_HEADER_BYTES {
            let header_bytes: [u8; FRAME_HEADER_BYTES] = buf[start..start + FRAME_HEADER_BYTES]
                .try_into()
                .expect("length checked");
            let header = match FrameHeader::decode(&header_bytes, FrameKind::Request) {
                Ok(h) => h,
                Err(err) => {
                    // The stream cannot be re-synchronised: say why, stop reading.
                    reply_error(&tx, &core, err.code(), err.to_string()).await;
                    recv.stop(PROTOCOL_ERROR_CODE);
                    break 'read;
                }
            };
            let end = start + FRAME_HEADER_BYTES + header.payload_len as usize;
            if buf.len() < end {
                buf.reserve(end - buf.len());
                break;
            }
            let payload = &buf[start + FRAME_HEADER_BYTES..end];
            match decode_request(payload) {
                Ok(frame) => {
                    while budget.inflight.get() >= IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX {
                        budget.freed.notified().await;
                    }
                    budget.inflight.set(budget.inflight.get() + 1);
                    let core = core.clone();
                    let out = Out::new(Sink::Lane(tx.clone()));
                    let budget = budget.clone();
                    ferrisdb_io::executor::spawn(async move {
                        core.handle(frame, out).await;
                        budget.inflight.set(budget.inflight.get() - 1);
                        budget.freed.notify_all();
                    })
                    .detach();
                }
                // The frame boundary is known, so the lane goes on.
                Err(err) => reply_error(&tx, &core, err.code(), err.to_string()).await,
            }
            start = end;
        }
        if start > 0 && start == buf.len() {
            buf.clear();
            start = 0;
        } else if start > READ_CHUNK_BYTES {
            buf.drain(..start);
            start = 0;
        }
        match recv.read_chunk(READ_CHUNK_BYTES).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) => {
                if buf.len() > start {
                    let have = buf.len() - start;
                    reply_error(
                        &tx,
                        &core,
                        ErrorCode::BadRequest,
                        format!("stream ended inside a frame ({have} bytes)"),
                    )
                    .await;
                }
                break;
            }
            Err(_) => break,
        }
    }
    drop(tx);
    writer.await;
}

/// An error that belongs to no request (the frame could not be read): sent
/// with request id 0.
async fn reply_error(
    tx: &Rc<ferrisdb_io::mesh::LocalSender<Vec<u8>>>,
    core: &Core,
    code: ErrorCode,
    message: String,
) {
    let frame = ResponseFrame {
        id: 0,
        shard_map_version: core.node.map.version,
        response: error(code, message),
    };
    if let Ok(bytes) = encode_response(&frame) {
        let _ = tx.send(bytes).await;
    }
}

/// Writes queued frames to the stream, several at a time when they pile up,
/// and finishes the stream once every sender is gone.
async fn write_lane(mut send: SendStream, rx: LocalReceiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if send.write_all(&frame).await.is_err() {
            // The client is gone; drain so senders do not block.
            while rx.recv().await.is_some() {}
            return;
        }
    }
    let _ = send.finish();
}

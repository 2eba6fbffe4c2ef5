//! A client connection and its lanes (bidirectional streams carrying
//! request frames one way and response frames the other).

use super::core::{Core, LaneTx, Out, Sink};
use ferrisdb_io::mesh::{LocalReceiver, new_bounded};
use ferrisdb_io::notify::Notify;
use ferrisdb_io::quic::{Connection, RecvStream, SendStream};
use ferrisdb_proto::frame::encode_response;
use ferrisdb_proto::{
    FrameDecoder, IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX, ProtoError, RequestFrame, ResponseFrame,
};
use std::cell::Cell;
use std::rc::Rc;

/// Encoded response frames queued for one lane's writer.
const LANE_QUEUE_FRAMES: usize = 1024;
/// Bytes read from a stream at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes of queued response frames gathered into one stream write.
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;
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
    let closed = Rc::new(Cell::new(false));
    let tx = Rc::new(LaneTx {
        tx,
        closed: closed.clone(),
    });
    let writer = ferrisdb_io::executor::spawn(write_lane(send, rx, closed));
    // The decoder checks each header before it buffers a payload and holds
    // at most one frame, whatever the client sends.
    let mut decoder = FrameDecoder::<RequestFrame>::new();
    'read: loop {
        let chunk = match recv.read_chunk(READ_CHUNK_BYTES).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                if let Err(err) = decoder.finish() {
                    reply_stream_error(&tx, &core, &err).await;
                }
                break;
            }
            Err(_) => break,
        };
        let mut input = &chunk[..];
        loop {
            let taken = match decoder.push(input) {
                Ok(taken) => taken,
                Err(err) => {
                    // A refused header: the stream cannot be re-synchronised.
                    reply_stream_error(&tx, &core, &err).await;
                    recv.stop(PROTOCOL_ERROR_CODE);
                    break 'read;
                }
            };
            input = &input[taken..];
            match decoder.pop() {
                Some(Ok(frame)) => start_request(&core, frame, &tx, &budget).await,
                // The frame's boundaries are known, so the lane goes on.
                Some(Err(err)) => reply_stream_error(&tx, &core, &err).await,
                None if input.is_empty() => break,
                None => {}
            }
        }
    }
    drop(tx);
    writer.await;
}

/// Runs `frame` once the connection has room for it.
async fn start_request(core: &Rc<Core>, frame: RequestFrame, tx: &Rc<LaneTx>, budget: &Rc<Budget>) {
    while budget.inflight.get() >= IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX {
        budget.freed.notified().await;
    }
    budget.inflight.set(budget.inflight.get() + 1);
    let core = core.clone();
    let out = Out::new(Sink::Lane(tx.clone()));
    let budget = budget.clone();
    let mut request = Box::pin(async move {
        core.handle(frame, out).await;
        budget.inflight.set(budget.inflight.get() - 1);
        budget.freed.notify_all();
    });
    // A request that completes at once (a read served from memory) runs
    // right here; only one that waits (the disk, a group commit, another
    // core) becomes a task of its own, so the lane reads on meanwhile.
    if futures_lite::future::poll_once(&mut request)
        .await
        .is_none()
    {
        ferrisdb_io::executor::spawn(request).detach();
    }
}

/// An error that belongs to no request (a frame could not be read): sent
/// with request id 0.
async fn reply_stream_error(lane: &LaneTx, core: &Core, err: &ProtoError) {
    let frame = ResponseFrame::stream_error(err, core.node.map.version);
    if let Ok(bytes) = encode_response(&frame) {
        let _ = lane.tx.send(bytes).await;
    }
}

/// Writes queued frames to the stream, several at a time when they pile up,
/// and finishes the stream once every sender is gone.
async fn write_lane(mut send: SendStream, rx: LocalReceiver<Vec<u8>>, closed: Rc<Cell<bool>>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        // Frames already queued go out in the same write (one pass through
        // the connection's state instead of one per response).
        let mut frame = first;
        while batch.len() + frame.len() < WRITE_BATCH_BYTES_MAX {
            match futures_lite::future::poll_once(rx.recv()).await {
                Some(Some(next)) => {
                    batch.extend_from_slice(&frame);
                    frame = next;
                }
                _ => break,
            }
        }
        let bytes = if batch.is_empty() {
            &frame[..]
        } else {
            batch.extend_from_slice(&frame);
            &batch[..]
        };
        let written = send.write_all(bytes).await;
        batch.clear();
        if written.is_err() {
            closed.set(true);
            // The client is gone; drain so senders do not block.
            while rx.recv().await.is_some() {}
            return;
        }
    }
    let _ = send.finish();
}

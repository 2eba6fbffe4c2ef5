//! A client connection and its lanes (bidirectional streams carrying
//! request frames one way and response frames the other).

use super::core::{Core, LaneTx, Out, Sink};
use ferrisdb_io::mesh::{LocalReceiver, new_bounded};
use ferrisdb_io::notify::Notify;
use ferrisdb_io::quic::{Connection, RecvStream, SendStream};
use ferrisdb_proto::frame::encode_response;
use ferrisdb_proto::{
    FrameDecoder, IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX, ProtoError, Request, RequestFrame,
    ResponseFrame,
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
/// Most single-key writes of a lane coalesced into one engine batch.
const COALESCE_OPS_MAX: usize = 256;
/// Most key and value bytes coalesced into one engine batch (well under the
/// log's record limit, whatever the keys and values).
const COALESCE_BYTES_MAX: usize = 1 << 20;

/// Single-key writes to one shard read from a lane one after the other,
/// waiting to be handled together ([`Core::handle_writes`]).
#[derive(Default)]
struct Coalesced {
    shard: Option<u32>,
    frames: Vec<RequestFrame>,
    bytes: usize,
}

impl Coalesced {
    /// Whether a write of `bytes` of key and value for `shard` may join.
    fn admits(&self, shard: u32, bytes: usize) -> bool {
        self.shard.is_none_or(|s| s == shard)
            && self.frames.len() < COALESCE_OPS_MAX
            && self.bytes + bytes <= COALESCE_BYTES_MAX
    }
}

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
    // Puts and deletes read from one chunk, one after the other, for one
    // shard of this core become one engine batch: one log record and one
    // wait for durability instead of one per request.
    let mut writes = Coalesced::default();
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
                    start_writes(&core, &mut writes, &tx, &budget).await;
                    reply_stream_error(&tx, &core, &err).await;
                    recv.stop(PROTOCOL_ERROR_CODE);
                    break 'read;
                }
            };
            input = &input[taken..];
            match decoder.pop() {
                Some(Ok(frame)) => match core.coalescable_shard(&frame) {
                    Some(shard) => {
                        let bytes = write_bytes(&frame.request);
                        if !writes.admits(shard, bytes) || budget.is_full() {
                            // A full batch, or one that would sit idle while
                            // the connection waits for room, starts now.
                            start_writes(&core, &mut writes, &tx, &budget).await;
                        }
                        // Each write is counted in as it is read, in
                        // arrival order, like any request.
                        budget.admit().await;
                        writes.shard = Some(shard);
                        writes.bytes += bytes;
                        writes.frames.push(frame);
                    }
                    None => {
                        start_writes(&core, &mut writes, &tx, &budget).await;
                        start_request(&core, frame, &tx, &budget).await;
                    }
                },
                // The frame's boundaries are known, so the lane goes on.
                Some(Err(err)) => {
                    start_writes(&core, &mut writes, &tx, &budget).await;
                    reply_stream_error(&tx, &core, &err).await;
                }
                None if input.is_empty() => break,
                None => {}
            }
        }
        start_writes(&core, &mut writes, &tx, &budget).await;
    }
    drop(tx);
    writer.await;
}

/// Key and value bytes of a put or delete.
fn write_bytes(request: &Request) -> usize {
    match request {
        Request::Put { key, value } => key.len() + value.len(),
        Request::Delete { key } => key.len(),
        _ => 0,
    }
}

impl Budget {
    fn is_full(&self) -> bool {
        self.inflight.get() >= IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX
    }

    /// Waits until the connection has room for one more request, then
    /// counts it in.
    async fn admit(&self) {
        while self.is_full() {
            self.freed.notified().await;
        }
        self.inflight.set(self.inflight.get() + 1);
    }

    /// `count` requests are over.
    fn release(&self, count: usize) {
        self.inflight.set(self.inflight.get() - count);
        self.freed.notify_all();
    }
}

/// Starts the coalesced writes (if any; already counted in) as one task; a
/// single one goes the way of any request.
async fn start_writes(
    core: &Rc<Core>,
    writes: &mut Coalesced,
    tx: &Rc<LaneTx>,
    budget: &Rc<Budget>,
) {
    let Coalesced {
        shard, mut frames, ..
    } = std::mem::take(writes);
    let Some(shard) = shard else { return };
    if frames.len() == 1 {
        let frame = frames.pop().expect("one frame");
        return run_request(core, frame, tx, budget).await;
    }
    let count = frames.len();
    let core = core.clone();
    let out = Out::new(Sink::Lane(tx.clone()));
    let budget = budget.clone();
    run_or_spawn(async move {
        core.handle_writes(shard, frames, out).await;
        budget.release(count);
    })
    .await;
}

/// Polls `request` once right here, so requests begin in the order they
/// were read (a write takes its version in that order); one that has to
/// wait (the disk, a group commit, another core) becomes a task of its own
/// and the lane reads on meanwhile. A request that completes at once (a
/// read served from memory) needs no task at all.
async fn run_or_spawn(request: impl std::future::Future<Output = ()> + 'static) {
    let mut request = Box::pin(request);
    if futures_lite::future::poll_once(&mut request)
        .await
        .is_none()
    {
        ferrisdb_io::executor::spawn(request).detach();
    }
}

/// Runs `frame` once the connection has room for it.
async fn start_request(core: &Rc<Core>, frame: RequestFrame, tx: &Rc<LaneTx>, budget: &Rc<Budget>) {
    budget.admit().await;
    run_request(core, frame, tx, budget).await;
}

/// Runs `frame`, already counted in the connection's budget.
async fn run_request(core: &Rc<Core>, frame: RequestFrame, tx: &Rc<LaneTx>, budget: &Rc<Budget>) {
    let core = core.clone();
    let out = Out::new(Sink::Lane(tx.clone()));
    let budget = budget.clone();
    run_or_spawn(async move {
        core.handle(frame, out).await;
        budget.release(1);
    })
    .await;
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

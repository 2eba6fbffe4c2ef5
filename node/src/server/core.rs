//! One core of a running node: its shards' engines, its QUIC endpoint, the
//! requests in flight on it, and its links to the other cores.

use super::NodeShared;
use super::exec::{self, error};
use crate::metrics::Op;
use ferrisdb_io::RealDisk;
use ferrisdb_io::mesh::{LocalSender, MeshReceiver, MeshSenders};
use ferrisdb_io::notify::Notify;
use ferrisdb_lsm::Engine;
use ferrisdb_proto::frame::encode_response;
use ferrisdb_proto::{
    ErrorCode, Request, RequestFrame, Response, ResponseFrame, ShardInfo, WriteOp,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// What crosses between cores: a misrouted request, and its replies.
pub enum MeshMsg {
    Forward { tag: u64, frame: RequestFrame },
    Reply { tag: u64, frame: ResponseFrame },
}

/// Where a request's responses go.
pub enum Sink {
    /// Encoded frames to a lane's writer task on this core.
    Lane(Rc<LaneTx>),
    /// Back to the core that forwarded the request.
    Mesh { core: usize, tag: u64 },
    /// To a local task waiting for a sub-request (delete_range fan-out).
    Local(Rc<LocalSender<ResponseFrame>>),
}

/// The sending side of a lane's writer queue; `closed` is set once the
/// stream failed (the client went away), so long scans can stop.
pub struct LaneTx {
    pub tx: LocalSender<Vec<u8>>,
    pub closed: Rc<Cell<bool>>,
}

/// A request's response channel, remembering whether it answered an error
/// (for the metrics).
pub struct Out {
    sink: Sink,
    failed: Cell<bool>,
    /// Set once the request was answered for good ([`Out::end_with`]):
    /// whatever its work still emits is dropped.
    ended: Cell<bool>,
}

impl Out {
    pub fn new(sink: Sink) -> Out {
        Out {
            sink,
            failed: Cell::new(false),
            ended: Cell::new(false),
        }
    }

    pub async fn emit(&self, core: &Core, id: u64, response: Response) {
        if !self.ended.get() {
            self.send(core, id, response).await;
        }
    }

    /// Answers with `response` and nothing after it: the request's deadline
    /// passed while its work goes on (a write is never cancelled halfway),
    /// and the client must not see a second answer when the work ends.
    pub async fn end_with(&self, core: &Core, id: u64, response: Response) {
        self.ended.set(true);
        self.send(core, id, response).await;
    }

    async fn send(&self, core: &Core, id: u64, response: Response) {
        if matches!(response, Response::Error(_)) {
            self.failed.set(true);
        }
        let frame = ResponseFrame {
            id,
            shard_map_version: core.node.map.version,
            response,
        };
        match &self.sink {
            Sink::Lane(lane) => match encode_response(&frame) {
                // A closed lane means the client went away: nothing to tell.
                Ok(bytes) => drop(lane.tx.send(bytes).await),
                Err(err) => tracing::error!(%err, id, "cannot encode a response"),
            },
            Sink::Mesh { core: to, tag } => {
                if let Some(mesh) = &core.mesh {
                    let _ = mesh.send_to(*to, MeshMsg::Reply { tag: *tag, frame }).await;
                }
            }
            Sink::Local(tx) => drop(tx.send(frame).await),
        }
    }

    /// Whether nobody listens any more (a long scan stops early).
    pub fn is_closed(&self) -> bool {
        if self.ended.get() {
            return true;
        }
        match &self.sink {
            Sink::Lane(lane) => lane.closed.get(),
            Sink::Mesh { .. } | Sink::Local(_) => false,
        }
    }
}

/// Waits for `work` at most `timeout`; whether it finished.
async fn finishes_within(work: &mut (impl Future + Unpin), timeout: Duration) -> bool {
    futures_lite::future::or(
        async {
            work.await;
            true
        },
        async {
            ferrisdb_io::executor::sleep(timeout).await;
            false
        },
    )
    .await
}

/// The answer to a request whose deadline passed.
fn timed_out(timeout_ms: u32) -> Response {
    error(
        ErrorCode::Timeout,
        format!("no result within {timeout_ms} ms"),
    )
}

/// Whether `response` ends its request (scans send several).
fn is_final(response: &Response) -> bool {
    !matches!(response, Response::ScanChunk { done: false, .. })
}

pub struct Core {
    index: usize,
    pub node: Arc<NodeShared>,
    engines: RefCell<HashMap<u32, Rc<Engine<RealDisk>>>>,
    mesh: Option<MeshSenders<MeshMsg>>,
    /// Forwarded requests waiting for replies from another core, by tag.
    pending: RefCell<HashMap<u64, Rc<LocalSender<ResponseFrame>>>>,
    next_tag: Cell<u64>,
    inflight: Cell<usize>,
    idle: Notify,
    stopping: Cell<bool>,
}

impl Core {
    pub fn new(
        index: usize,
        node: Arc<NodeShared>,
        engines: HashMap<u32, Rc<Engine<RealDisk>>>,
        mesh: Option<MeshSenders<MeshMsg>>,
    ) -> Core {
        Core {
            index,
            node,
            engines: RefCell::new(engines),
            mesh,
            pending: RefCell::new(HashMap::new()),
            next_tag: Cell::new(1),
            inflight: Cell::new(0),
            idle: Notify::new(),
            stopping: Cell::new(false),
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn metrics(&self) -> &crate::metrics::CoreMetrics {
        self.node.metrics.core(self.index)
    }

    pub fn engine(&self, shard: u32) -> Option<Rc<Engine<RealDisk>>> {
        self.engines.borrow().get(&shard).cloned()
    }

    /// This core's shards and their engines, by shard id.
    pub fn engines(&self) -> Vec<(u32, Rc<Engine<RealDisk>>)> {
        let mut all: Vec<_> = self
            .engines
            .borrow()
            .iter()
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// Flushes and closes every engine (after the requests have drained).
    /// An engine still referenced by a straggling task is flushed only; its
    /// WAL holds everything acknowledged either way.
    pub async fn close_engines(&self) -> anyhow::Result<()> {
        let engines: Vec<_> = self.engines.borrow_mut().drain().collect();
        let mut first_error = None;
        for (id, engine) in engines {
            let result = match Rc::try_unwrap(engine) {
                Ok(engine) => engine.close().await,
                Err(shared) => shared.flush().await,
            };
            if let Err(err) = result {
                tracing::error!(shard = id, %err, "closing the shard failed");
                first_error.get_or_insert(anyhow::anyhow!("close shard {id}: {err}"));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub fn inflight(&self) -> usize {
        self.inflight.get()
    }

    /// New requests are refused with `ShuttingDown` from now on.
    pub fn begin_stop(&self) {
        self.stopping.set(true);
    }

    /// Waits until no request is in flight, or `grace` passes.
    pub async fn drain(&self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        while self.inflight.get() > 0 && std::time::Instant::now() < deadline {
            let idle = self.idle.notified();
            futures_lite::future::or(
                idle,
                ferrisdb_io::executor::sleep(Duration::from_millis(20)),
            )
            .await;
        }
    }

    /// Handles one request from a client: validates it, runs it here or on
    /// the core that owns its shard, and emits its response(s), all within
    /// the request's deadline.
    pub async fn handle(self: &Rc<Self>, frame: RequestFrame, out: Out) {
        let id = frame.id;
        let op = op_of(&frame.request);
        let started = std::time::Instant::now();
        if self.stopping.get() {
            return out
                .emit(
                    self,
                    id,
                    error(ErrorCode::ShuttingDown, "the node is shutting down"),
                )
                .await;
        }
        if let Err((code, message)) = frame.request.validate() {
            return out.emit(self, id, error(code, message)).await;
        }
        let timeout_ms = self.timeout_ms(&frame);
        self.inflight.set(self.inflight.get() + 1);
        let out = Rc::new(out);
        let done = Rc::new(Cell::new(false));
        let mut work = {
            let core = self.clone();
            let out = out.clone();
            let done = done.clone();
            Box::pin(async move {
                core.route(frame, &out).await;
                done.set(true);
            })
        };
        // Most reads finish without waiting for anything: they need no task
        // and no timer. Work still running when the deadline passed is kept
        // in `overdue`.
        let mut overdue = None;
        if futures_lite::future::poll_once(&mut work).await.is_none() {
            // The rest runs as its own task: a write that has begun is never
            // cancelled halfway (the deadline only stops the waiting). The
            // task is detached, since dropping a glommio task cancels it: a
            // write cancelled while leading its shard's group commit would
            // leave the log marked busy and every later write waiting.
            let mut work = ferrisdb_io::executor::spawn(work).detach();
            let timeout = Duration::from_millis(u64::from(timeout_ms));
            if !finishes_within(&mut work, timeout).await {
                if !done.get() {
                    out.end_with(self, id, timed_out(timeout_ms)).await;
                }
                overdue = Some(work);
            }
        }
        // The latency recorded is the answer's (a `Timeout`'s when overdue).
        self.metrics()
            .record_request(op, started.elapsed(), !out.failed.get());
        if let Some(work) = overdue {
            // The request keeps its place in the core's and the
            // connection's counts until its work is over, so a client
            // cannot pile up abandoned writes and a draining core waits
            // for them.
            work.await;
        }
        self.done_inflight(1);
    }

    /// The deadline a request carries, in ms: the node's default for 0,
    /// clamped to the protocol's limit.
    fn timeout_ms(&self, frame: &RequestFrame) -> u32 {
        match frame.timeout_ms {
            0 => self.node.config.request_timeout_ms,
            t => t.min(ferrisdb_proto::REQUEST_TIMEOUT_MS_MAX),
        }
    }

    /// `count` requests left the core's in-flight count.
    fn done_inflight(&self, count: usize) {
        self.inflight.set(self.inflight.get() - count);
        if self.inflight.get() == 0 {
            self.idle.notify_all();
        }
    }

    /// The shard a request may be coalesced with other single-key writes
    /// on: a put or delete that is valid, owned by this core and arrives
    /// while the core is serving. Anything else takes [`Core::handle`].
    pub fn coalescable_shard(&self, frame: &RequestFrame) -> Option<u32> {
        let key = match &frame.request {
            Request::Put { key, .. } | Request::Delete { key } => key,
            _ => return None,
        };
        if self.stopping.get() || frame.request.validate().is_err() {
            return None;
        }
        self.node
            .map
            .shard_for(key)
            .filter(|shard| shard.core as usize == self.index)
            .map(|shard| shard.id)
    }

    /// Handles single-key writes to `shard` that arrived together on one
    /// lane (each one [`Core::coalescable_shard`]) as one engine batch: one
    /// version, one log record, one wait for durability. Each request still
    /// gets its own response, its own metrics and its own deadline (one
    /// that passes answers that request with `Timeout`; the others go on
    /// waiting); a later put of a key in the batch wins over an earlier
    /// one, as if applied in arrival order.
    pub async fn handle_writes(self: &Rc<Self>, shard: u32, frames: Vec<RequestFrame>, out: Out) {
        let started = std::time::Instant::now();
        let count = frames.len();
        if self.stopping.get() {
            // Shutdown began while the batch waited for room on its connection.
            for frame in frames {
                let message = "the node is shutting down";
                out.emit(self, frame.id, error(ErrorCode::ShuttingDown, message))
                    .await;
                let op = op_of(&frame.request);
                self.metrics().record_request(op, started.elapsed(), false);
            }
            return;
        }
        // (id, op, deadline in ms from `started`), soonest deadline first.
        let mut requests = Vec::with_capacity(count);
        let mut ops = Vec::with_capacity(count);
        for frame in frames {
            requests.push((frame.id, op_of(&frame.request), self.timeout_ms(&frame)));
            ops.push(match frame.request {
                Request::Put { key, value } => WriteOp::Put { key, value },
                Request::Delete { key } => WriteOp::Delete { key },
                other => unreachable!("not a coalescable write: {other:?}"),
            });
        }
        requests.sort_by_key(|&(_, _, timeout_ms)| timeout_ms);
        self.inflight.set(self.inflight.get() + count);
        // As in `handle`: polled once here (the batch takes its version in
        // arrival order), then a detached task; deadlines only stop the
        // waiting.
        let result = Rc::new(RefCell::new(None));
        let mut work = {
            let core = self.clone();
            let result = result.clone();
            Box::pin(async move {
                let response = exec::write_ops(&core, shard, ops).await;
                *result.borrow_mut() = Some(response);
            })
        };
        // Requests before `answered` have had their answer.
        let mut answered = 0;
        if futures_lite::future::poll_once(&mut work).await.is_none() {
            let mut work = ferrisdb_io::executor::spawn(work).detach();
            while answered < count {
                let timeout_ms = requests[answered].2;
                let until = started + Duration::from_millis(u64::from(timeout_ms));
                let left = until.saturating_duration_since(std::time::Instant::now());
                if finishes_within(&mut work, left).await {
                    break;
                }
                while answered < count && requests[answered].2 <= timeout_ms {
                    let (id, op, _) = requests[answered];
                    out.emit(self, id, timed_out(timeout_ms)).await;
                    self.metrics().record_request(op, started.elapsed(), false);
                    answered += 1;
                }
            }
            if answered == count {
                // Every deadline passed: the requests keep their place in the
                // counts until the write is over (as in `handle`).
                work.await;
            }
        }
        if answered < count {
            // The work finished (a cancelled or panicked task leaves no
            // result: the requests are answered as timed out).
            let response = result.borrow_mut().take();
            let response = response.unwrap_or_else(|| timed_out(requests[answered].2));
            let ok = !matches!(response, Response::Error(_));
            for &(id, op, _) in &requests[answered..] {
                out.emit(self, id, response.clone()).await;
                self.metrics().record_request(op, started.elapsed(), ok);
            }
        }
        self.done_inflight(count);
    }

    async fn route(self: &Rc<Self>, frame: RequestFrame, out: &Out) {
        let id = frame.id;
        let map = &self.node.map;
        match &frame.request {
            Request::ShardMap => return out.emit(self, id, Response::ShardMap(map.clone())).await,
            Request::Status => {
                let status = self.node.status().to_string();
                return out.emit(self, id, Response::Status(status)).await;
            }
            Request::DeleteRange { start, end } => {
                let first = map.shard_for(start).map(|s| s.id);
                let last = map.shard_for(end).map(|s| s.id);
                if first != last {
                    return self
                        .delete_range_across_shards(id, start.clone(), end.clone(), out)
                        .await;
                }
            }
            Request::Batch { ops } => {
                if let Err(spans) = map.batch_shard(ops) {
                    let message = format!(
                        "a batch must stay within one shard; it has keys in shards {} and {}",
                        spans.first, spans.other
                    );
                    return out
                        .emit(self, id, error(ErrorCode::BadRequest, message))
                        .await;
                }
            }
            _ => {}
        }
        let Some(shard) = self.owner(&frame.request).cloned() else {
            return out
                .emit(
                    self,
                    id,
                    error(ErrorCode::InvalidRange, "the scan range is empty"),
                )
                .await;
        };
        if shard.core as usize == self.index {
            exec::execute(self, &shard, frame.request, out, id).await;
        } else {
            self.forward(shard.core as usize, frame, out).await;
        }
    }

    /// The shard that serves `request` (scans by the protocol's routing rule).
    fn owner(&self, request: &Request) -> Option<&ShardInfo> {
        let map = &self.node.map;
        match request {
            Request::Scan {
                start,
                end,
                reverse,
                ..
            } => map.shard_for_scan(start, end, *reverse),
            other => map.shard_for(other.routing_key().unwrap_or(&[])),
        }
    }

    /// Sends `frame` to core `to` and relays its replies to `out`.
    async fn forward(&self, to: usize, frame: RequestFrame, out: &Out) {
        let id = frame.id;
        let Some(mesh) = &self.mesh else {
            return out
                .emit(self, id, error(ErrorCode::WrongShard, "no such core"))
                .await;
        };
        let tag = self.next_tag.get();
        self.next_tag.set(tag + 1);
        let (tx, rx) = ferrisdb_io::mesh::new_unbounded();
        self.pending.borrow_mut().insert(tag, Rc::new(tx));
        if mesh
            .send_to(to, MeshMsg::Forward { tag, frame })
            .await
            .is_err()
        {
            self.pending.borrow_mut().remove(&tag);
            return out
                .emit(
                    self,
                    id,
                    error(ErrorCode::ShuttingDown, "the owning core has stopped"),
                )
                .await;
        }
        while let Some(reply) = rx.recv().await {
            let last = is_final(&reply.response);
            out.emit(self, id, reply.response).await;
            if last {
                break;
            }
        }
        self.pending.borrow_mut().remove(&tag);
    }

    /// Serves what other cores send here, until they go away.
    pub async fn serve_mesh(self: Rc<Self>, from: usize, rx: MeshReceiver<MeshMsg>) {
        while let Some(msg) = rx.recv().await {
            match msg {
                MeshMsg::Forward { tag, frame } => {
                    let core = self.clone();
                    ferrisdb_io::executor::spawn(async move {
                        let Some(shard) = core.owner(&frame.request).cloned() else {
                            return;
                        };
                        let out = Out::new(Sink::Mesh { core: from, tag });
                        exec::execute(&core, &shard, frame.request, &out, frame.id).await;
                    })
                    .detach();
                }
                MeshMsg::Reply { tag, frame } => {
                    let waiter = self.pending.borrow().get(&tag).cloned();
                    if let Some(tx) = waiter {
                        let _ = tx.send(frame).await;
                    }
                }
            }
        }
    }

    /// A delete_range over several shards: one sub-range per shard, each on
    /// its owning core. Atomic per shard, not across shards (documented).
    async fn delete_range_across_shards(
        self: &Rc<Self>,
        id: u64,
        start: Vec<u8>,
        end: Vec<u8>,
        out: &Out,
    ) {
        let map = &self.node.map;
        let mut version = 0;
        for shard in map.shards.iter() {
            let (sub_start, sub_end) = exec::clamp_range(shard, start.clone(), end.clone());
            if sub_start >= sub_end {
                continue;
            }
            let frame = RequestFrame {
                id,
                shard_map_version: map.version,
                timeout_ms: 0,
                request: Request::DeleteRange {
                    start: sub_start,
                    end: sub_end,
                },
            };
            let (tx, rx) = ferrisdb_io::mesh::new_bounded(1);
            let sub = Out::new(Sink::Local(Rc::new(tx)));
            if shard.core as usize == self.index {
                exec::execute(self, shard, frame.request, &sub, id).await;
            } else {
                self.forward(shard.core as usize, frame, &sub).await;
            }
            drop(sub);
            match rx.recv().await.map(|f| f.response) {
                Some(Response::Written { version: v }) => version = version.max(v),
                Some(other) => return out.emit(self, id, other).await,
                None => {
                    return out
                        .emit(self, id, error(ErrorCode::Internal, "sub-request lost"))
                        .await;
                }
            }
        }
        out.emit(self, id, Response::Written { version }).await;
    }
}

fn op_of(request: &Request) -> Op {
    match request {
        Request::Get { .. } => Op::Get,
        Request::Put { .. } => Op::Put,
        Request::Delete { .. } => Op::Delete,
        Request::DeleteRange { .. } => Op::DeleteRange,
        Request::Batch { .. } => Op::Batch,
        Request::Scan { .. } => Op::Scan,
        Request::ShardMap => Op::ShardMap,
        Request::Status => Op::Status,
    }
}

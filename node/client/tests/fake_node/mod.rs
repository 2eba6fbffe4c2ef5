//! `FakeNode`: a **test double of a FerrisDB node, for the client's tests
//! only**. It speaks the real protocol (QUIC, mutual TLS, frames, rkyv
//! messages) on real loopback sockets, one port per fake core, over a
//! `BTreeMap` instead of an engine. It is not the node: no durability, no
//! forwarding, no limits beyond decoding. The knobs it has (delays,
//! injected `WrongShard` replies, dropping connections, changing the shard
//! map) are the situations the client must handle.

pub mod certs;

use ferrisdb_proto::frame::{FrameDecoder, encode_response};
use ferrisdb_proto::{
    ErrorCode, ErrorReply, KeyBound, KeyValue, ProtoError, Request, RequestFrame, Response,
    ResponseFrame, SCAN_LIMIT_MAX, ShardInfo, ShardMap, WriteOp,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use certs::{TestCerts, make_certs, test_dir};

/// A request as a fake core received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub core: u32,
    pub frame: RequestFrame,
}

#[derive(Default)]
struct State {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    map: Option<ShardMap>,
    commit_version: u64,
    /// Replies held back this long, by routing key.
    delays: HashMap<Vec<u8>, Duration>,
    /// This many keyed requests are answered `WrongShard` whatever their key.
    wrong_shard_replies: u32,
    /// Entries per scan chunk.
    scan_chunk_entries: usize,
    seen: Vec<Seen>,
    connections: Vec<quinn::Connection>,
    /// When set, the next request read on any lane is answered with this
    /// stream-level error (id 0) and the lane is closed.
    stream_error: Option<ProtoError>,
    /// When set, the next scan sends this many chunks and then nothing more
    /// (no last chunk): the client sees it stall mid-part.
    scan_stall_after_chunks: Option<usize>,
}

/// A fake node: `cores` QUIC endpoints on 127.0.0.1 sharing one key-value
/// map, its key space split at `split_keys` with shards dealt to cores in
/// turn.
pub struct FakeNode {
    endpoints: Vec<quinn::Endpoint>,
    state: Arc<Mutex<State>>,
}

impl FakeNode {
    /// A node requiring client certificates signed by `certs.ca`.
    pub async fn start(certs: &TestCerts, cores: u32, split_keys: &[&[u8]]) -> FakeNode {
        let tls = ferrisdb_proto::tls::server_config(&certs.ca, &certs.node_cert, &certs.node_key)
            .expect("node TLS config");
        Self::start_with(tls, cores, split_keys).await
    }

    /// A node started like `ferrisdb start --insecure`: no client
    /// authentication.
    pub async fn start_insecure(certs: &TestCerts, cores: u32, split_keys: &[&[u8]]) -> FakeNode {
        use ferrisdb_proto::tls;
        let cert = tls::load_certs(&certs.node_cert)
            .expect("node cert")
            .remove(0);
        let key = tls::load_private_key(&certs.node_key).expect("node key");
        let tls = tls::insecure_server_config(cert, key).expect("insecure TLS config");
        Self::start_with(tls, cores, split_keys).await
    }

    async fn start_with(tls: rustls::ServerConfig, cores: u32, split_keys: &[&[u8]]) -> FakeNode {
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("QUIC TLS");
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let state = Arc::new(Mutex::new(State {
            scan_chunk_entries: 2,
            ..State::default()
        }));
        let mut endpoints = Vec::new();
        for core in 0..cores {
            let endpoint = quinn::Endpoint::server(config.clone(), "127.0.0.1:0".parse().unwrap())
                .expect("bind fake core");
            tokio::spawn(accept(endpoint.clone(), core, state.clone()));
            endpoints.push(endpoint);
        }
        let ports = endpoints
            .iter()
            .map(|e| e.local_addr().expect("bound").port())
            .collect();
        state.lock().unwrap().map = Some(split_map(1, ports, split_keys));
        FakeNode { endpoints, state }
    }

    pub fn addr(&self, core: usize) -> SocketAddr {
        self.endpoints[core].local_addr().expect("bound")
    }

    pub fn map(&self) -> ShardMap {
        self.state
            .lock()
            .unwrap()
            .map
            .clone()
            .expect("set at start")
    }

    /// Splits the key space anew at `split_keys` under a newer map version.
    pub fn resplit(&self, split_keys: &[&[u8]]) -> ShardMap {
        let mut state = self.state.lock().unwrap();
        let old = state.map.take().expect("set at start");
        let map = split_map(old.version + 1, old.core_ports, split_keys);
        state.map = Some(map.clone());
        map
    }

    /// Replies to requests whose routing key is `key` are held back `delay`.
    pub fn delay(&self, key: &[u8], delay: Duration) {
        self.state
            .lock()
            .unwrap()
            .delays
            .insert(key.to_vec(), delay);
    }

    /// The next `count` keyed requests are answered `WrongShard`.
    pub fn reply_wrong_shard(&self, count: u32) {
        self.state.lock().unwrap().wrong_shard_replies = count;
    }

    /// The next request read is answered with a stream-level error (id 0),
    /// as a node does when it cannot read a frame header.
    pub fn refuse_next_stream(&self, err: ProtoError) {
        self.state.lock().unwrap().stream_error = Some(err);
    }

    /// The next scan stops answering after `chunks` chunks.
    pub fn stall_next_scan_after(&self, chunks: usize) {
        self.state.lock().unwrap().scan_stall_after_chunks = Some(chunks);
    }

    /// Every request received so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn clear_seen(&self) {
        self.state.lock().unwrap().seen.clear();
    }

    /// Closes every open client connection (as a node restart would).
    pub fn drop_connections(&self) {
        for connection in self.state.lock().unwrap().connections.drain(..) {
            connection.close(1u32.into(), b"fake node dropped the connection");
        }
    }

    pub fn insert(&self, key: &[u8], value: &[u8]) {
        self.state
            .lock()
            .unwrap()
            .data
            .insert(key.to_vec(), value.to_vec());
    }

    pub fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.lock().unwrap().data.get(key).cloned()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        for endpoint in &self.endpoints {
            endpoint.close(0u32.into(), b"fake node stopped");
        }
    }
}

/// Shards `[k_i, k_i+1)` split at `split_keys`, dealt to cores in turn.
fn split_map(version: u64, core_ports: Vec<u16>, split_keys: &[&[u8]]) -> ShardMap {
    let cores = core_ports.len() as u32;
    let mut starts: Vec<Vec<u8>> = vec![Vec::new()];
    starts.extend(split_keys.iter().map(|k| k.to_vec()));
    let shards = (0..starts.len())
        .map(|i| ShardInfo {
            id: i as u32,
            start: starts[i].clone(),
            end: starts.get(i + 1).cloned(),
            core: i as u32 % cores,
        })
        .collect();
    let map = ShardMap {
        version,
        core_ports,
        shards,
    };
    assert!(map.is_well_formed());
    map
}

async fn accept(endpoint: quinn::Endpoint, core: u32, state: Arc<Mutex<State>>) {
    while let Some(incoming) = endpoint.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            // A refused handshake (wrong CA) ends here.
            let Ok(connection) = incoming.await else {
                return;
            };
            state.lock().unwrap().connections.push(connection.clone());
            while let Ok((send, recv)) = connection.accept_bi().await {
                tokio::spawn(serve_lane(core, send, recv, state.clone()));
            }
        });
    }
}

/// Reads request frames from a lane and answers each in a task of its own,
/// so that a delayed request does not hold up those behind it.
async fn serve_lane(
    core: u32,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    state: Arc<Mutex<State>>,
) {
    let (replies, mut outgoing) = mpsc::unbounded_channel::<ResponseFrame>();
    tokio::spawn(async move {
        while let Some(reply) = outgoing.recv().await {
            let bytes = encode_response(&reply).expect("encode reply");
            if send.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut decoder = FrameDecoder::<RequestFrame>::new();
    while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await {
        let mut bytes = &chunk.bytes[..];
        while !bytes.is_empty() {
            let taken = decoder.push(bytes).expect("client sends valid headers");
            bytes = &bytes[taken..];
            if let Some(frame) = decoder.pop() {
                let frame = frame.expect("client sends valid frames");
                let refuse = state.lock().unwrap().stream_error.take();
                if let Some(err) = refuse {
                    let _ = replies.send(ResponseFrame::stream_error(&err, 0));
                    return; // the writer finishes the stream after the reply
                }
                tokio::spawn(answer(core, frame, state.clone(), replies.clone()));
            }
        }
    }
}

async fn answer(
    core: u32,
    frame: RequestFrame,
    state: Arc<Mutex<State>>,
    replies: mpsc::UnboundedSender<ResponseFrame>,
) {
    let delay = {
        let mut state = state.lock().unwrap();
        state.seen.push(Seen {
            core,
            frame: frame.clone(),
        });
        frame
            .request
            .routing_key()
            .and_then(|key| state.delays.get(key).copied())
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut state = state.lock().unwrap();
    let version = state.map.as_ref().expect("set at start").version;
    let reply = |response| ResponseFrame {
        id: frame.id,
        shard_map_version: version,
        response,
    };
    let mut responses = state.execute(core, frame.request.clone());
    if matches!(frame.request, Request::Scan { .. })
        && let Some(chunks) = state.scan_stall_after_chunks.take()
    {
        responses.truncate(chunks);
    }
    for response in responses {
        let _ = replies.send(reply(response));
    }
}

fn error(code: ErrorCode, message: &str) -> Vec<Response> {
    vec![Response::Error(ErrorReply {
        code,
        message: message.into(),
    })]
}

impl State {
    fn execute(&mut self, core: u32, request: Request) -> Vec<Response> {
        let map = self.map.clone().expect("set at start");
        if let Err((code, message)) = request.validate() {
            return error(code, &message);
        }
        let shard = match &request {
            Request::ShardMap => return vec![Response::ShardMap(map)],
            Request::Status => {
                let json = format!(r#"{{"core":{core},"keys":{}}}"#, self.data.len());
                return vec![Response::Status(json)];
            }
            Request::Scan {
                start,
                end,
                reverse,
                ..
            } => map.shard_for_scan(start, end, *reverse),
            keyed => map.shard_for(keyed.routing_key().expect("keyed request")),
        }
        .expect("well-formed map")
        .clone();
        if self.wrong_shard_replies > 0 {
            self.wrong_shard_replies -= 1;
            return error(ErrorCode::WrongShard, "injected by the fake node");
        }
        if shard.core != core {
            return error(ErrorCode::WrongShard, "this core does not own the key");
        }
        // As the node: an atomic batch must stay within one shard.
        if let Request::Batch { ops } = &request
            && map.batch_shard(ops).is_err()
        {
            return error(ErrorCode::BadRequest, "the batch spans shards");
        }
        match request {
            Request::Get { key } => vec![Response::Value(self.data.get(&key).cloned())],
            Request::Put { key, value } => self.apply(vec![WriteOp::Put { key, value }]),
            Request::Delete { key } => self.apply(vec![WriteOp::Delete { key }]),
            Request::DeleteRange { start, end } => {
                self.apply(vec![WriteOp::DeleteRange { start, end }])
            }
            Request::Batch { ops } => self.apply(ops),
            Request::Scan {
                start,
                end,
                limit,
                reverse,
            } => self.scan(&shard, start, end, limit, reverse),
            Request::ShardMap | Request::Status => unreachable!("answered above"),
        }
    }

    fn apply(&mut self, ops: Vec<WriteOp>) -> Vec<Response> {
        for op in ops {
            match op {
                WriteOp::Put { key, value } => {
                    self.data.insert(key, value);
                }
                WriteOp::Delete { key } => {
                    self.data.remove(&key);
                }
                WriteOp::DeleteRange { start, end } => {
                    self.data.retain(|k, _| *k < start || *k >= end);
                }
            }
        }
        self.commit_version += 1;
        vec![Response::Written {
            version: self.commit_version,
        }]
    }

    /// The part of a scan that `shard` holds, in chunks; the last says
    /// where to resume when the range goes on past the shard.
    fn scan(
        &self,
        shard: &ShardInfo,
        start: KeyBound,
        end: KeyBound,
        limit: u32,
        reverse: bool,
    ) -> Vec<Response> {
        let limit = if limit == 0 { SCAN_LIMIT_MAX } else { limit } as usize;
        let lower = tighter_lower(bound(start.clone()), Bound::Included(shard.start.clone()));
        let upper = match &shard.end {
            Some(e) => tighter_upper(bound(end.clone()), Bound::Excluded(e.clone())),
            None => bound(end.clone()),
        };
        // BTreeMap::range panics on inverted or empty-excluded ranges.
        let empty = match (&lower, &upper) {
            (Bound::Included(l), Bound::Included(u)) => l > u,
            (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) => {
                l >= u
            }
            _ => false,
        };
        let mut entries: Vec<KeyValue> = Vec::new();
        if !empty {
            let range = self.data.range::<Vec<u8>, _>((lower, upper));
            let pairs: Box<dyn Iterator<Item = _>> = if reverse {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            entries = pairs
                .take(limit)
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect();
        }
        let resume = if entries.len() == limit {
            None
        } else if reverse {
            let more_below = !shard.start.is_empty()
                && match &start {
                    KeyBound::Unbounded => true,
                    KeyBound::Included(k) | KeyBound::Excluded(k) => *k < shard.start,
                };
            more_below.then(|| KeyBound::Excluded(shard.start.clone()))
        } else {
            let beyond = shard.end.clone().filter(|e| match &end {
                KeyBound::Unbounded => true,
                KeyBound::Included(k) => k >= e,
                KeyBound::Excluded(k) => k > e,
            });
            beyond.map(KeyBound::Included)
        };
        let mut chunks: Vec<Response> = entries
            .chunks(self.scan_chunk_entries)
            .map(|c| Response::ScanChunk {
                entries: c.to_vec(),
                done: false,
                resume: None,
            })
            .collect();
        chunks.push(Response::ScanChunk {
            entries: Vec::new(),
            done: true,
            resume,
        });
        chunks
    }
}

fn bound(b: KeyBound) -> Bound<Vec<u8>> {
    match b {
        KeyBound::Unbounded => Bound::Unbounded,
        KeyBound::Included(k) => Bound::Included(k),
        KeyBound::Excluded(k) => Bound::Excluded(k),
    }
}

fn tighter_lower(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    let key = |x: &Bound<Vec<u8>>| match x {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
        Bound::Unbounded => None,
    };
    match (key(&a), key(&b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(ka), Some(kb)) if ka > kb => a,
        (Some(ka), Some(kb)) if kb > ka => b,
        _ if matches!(a, Bound::Excluded(_)) => a,
        _ => b,
    }
}

fn tighter_upper(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    let key = |x: &Bound<Vec<u8>>| match x {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
        Bound::Unbounded => None,
    };
    match (key(&a), key(&b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(ka), Some(kb)) if ka < kb => a,
        (Some(ka), Some(kb)) if kb < ka => b,
        _ if matches!(a, Bound::Excluded(_)) => a,
        _ => b,
    }
}

//! The client: shard map, connections per core, routing, deadlines.

use crate::batch::Batch;
use crate::combine::Combiner;
use crate::config::ClientConfig;
use crate::connection::{ConnectParams, CoreConnection, Responses};
use crate::error::Error;
use crate::scan::{Scan, ScanOptions};
use ferrisdb_proto::{
    ErrorCode, ErrorReply, KeyValue, MTU_UPPER_BOUND, REQUEST_TIMEOUT_MS_MAX, Request,
    RequestFrame, Response, SOCKET_BUFFER_BYTES, ShardInfo, ShardMap, SpansShards, WriteOp,
};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// Times a call is sent again after a `WrongShard` answer and a map refresh.
const WRONG_SHARD_RETRIES_MAX: u32 = 3;

/// A FerrisDB client: cheap to clone (clones share connections), usable
/// from many tasks at once.
///
/// Each call is routed to the core that owns its key's shard, carries a
/// deadline (the configured `request_timeout`, or the one given to
/// [`Client::with_timeout`]) and fails with [`Error::Timeout`] when it
/// passes.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.config.endpoints)
            .field("shard_map_version", &self.shard_map().version)
            .field("timeout", &self.timeout)
            .finish()
    }
}

struct Inner {
    config: ClientConfig,
    endpoint: quinn::Endpoint,
    quic: quinn::ClientConfig,
    /// Host of the node (the endpoint that answered the first map request).
    node_ip: IpAddr,
    /// Where maps are fetched from.
    map_source: SocketAddr,
    map: RwLock<Arc<ShardMap>>,
    /// Serializes map refreshes, so a burst of stale replies fetches once.
    map_refresh: tokio::sync::Mutex<()>,
    cores: Mutex<HashMap<SocketAddr, CoreEntry>>,
    next_id: AtomicU64,
    /// Open groups of single-key writes (`ClientConfig::combine_writes`).
    combiner: Combiner,
}

/// One core in the core table: its live connection, if any (the fast path
/// of every request: one lock of the table), and the slot that serializes
/// connecting to it.
#[derive(Default)]
struct CoreEntry {
    live: Option<Arc<CoreConnection>>,
    slot: Arc<CoreSlot>,
}

/// The reconnection state of one core (its connection is `CoreEntry::live`),
/// locked by whoever connects to it.
type CoreSlot = tokio::sync::Mutex<SlotState>;

#[derive(Default)]
struct SlotState {
    /// Connection attempts failed in a row.
    failures: u32,
    /// No attempt before this instant (exponential backoff).
    retry_at: Option<Instant>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.endpoint.close(0u32.into(), b"client dropped");
    }
}

impl Client {
    /// Connects to the cluster: asks the configured endpoints, in order, for
    /// the shard map and keeps the first well-formed answer. Connections to
    /// the other cores are made on first use.
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        config.validate()?;
        let quic = config.quic()?;
        let timeout = config.request_timeout;
        let mut last_error = None;
        for &seed in &config.endpoints {
            // One UDP socket per client, shared by its connections to every
            // core. Made per attempt: a failed attempt closes its own.
            let bind: SocketAddr = match seed {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let endpoint = bind_endpoint(bind)
                .map_err(|e| Error::Config(format!("bind a UDP socket on {bind}: {e}")))?;
            let inner = Arc::new(Inner {
                config: config.clone(),
                endpoint,
                quic: quic.clone(),
                node_ip: seed.ip(),
                map_source: seed,
                map: RwLock::new(Arc::new(ShardMap {
                    version: 0,
                    core_ports: Vec::new(),
                    shards: Vec::new(),
                })),
                map_refresh: tokio::sync::Mutex::new(()),
                cores: Mutex::new(HashMap::new()),
                // 0 is `STREAM_ERROR_ID`.
                next_id: AtomicU64::new(1),
                combiner: Combiner::default(),
            });
            let client = Client { inner, timeout };
            match client.refresh_shard_map().await {
                Ok(_) => return Ok(client),
                Err(err) => {
                    tracing::warn!(%seed, error = %err, "endpoint did not give a shard map");
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.expect("at least one endpoint was tried"))
    }

    /// A handle sharing this client's connections whose calls have
    /// `timeout` as their deadline.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// The shard map the client routes by (the newest it has seen).
    pub fn shard_map(&self) -> Arc<ShardMap> {
        self.inner.map.read().expect("map lock poisoned").clone()
    }

    /// Fetches the shard map from the node and routes by it from now on
    /// (unless the client already holds a newer one).
    pub async fn refresh_shard_map(&self) -> Result<Arc<ShardMap>, Error> {
        let deadline = self.deadline();
        let _refreshing = self.within(deadline, self.inner.map_refresh.lock()).await?;
        self.fetch_map(deadline).await
    }

    /// The value of `key`, or `None` when it has none.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        let key = key.as_ref().to_vec();
        match self.call(Request::Get { key }).await? {
            Response::Value(value) => Ok(value),
            other => Err(self.unexpected("a value", &other)),
        }
    }

    /// Sets `key` to `value`; returns the write's commit version once it is
    /// durable. Puts and deletes made at about the same time for one shard
    /// may travel as one atomic batch and then share a commit version
    /// (`ClientConfig::combine_writes`).
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<u64, Error> {
        self.write_one(WriteOp::Put {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        })
        .await
    }

    /// Removes `key` (no error when it has no value); returns the commit
    /// version (shared as for [`Client::put`]).
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<u64, Error> {
        self.write_one(WriteOp::Delete {
            key: key.as_ref().to_vec(),
        })
        .await
    }

    /// Removes every key in `[start, end)`; returns the commit version of
    /// the last part.
    ///
    /// A range that spans shards is split at their boundaries and each part
    /// is deleted in turn: the whole is **not** atomic (use a [`Batch`] of
    /// one shard's keys for that). On an error some parts may be deleted.
    pub async fn delete_range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
    ) -> Result<u64, Error> {
        let (start, end) = (start.as_ref(), end.as_ref());
        Request::DeleteRange {
            start: start.to_vec(),
            end: end.to_vec(),
        }
        .validate()
        .map_err(Error::invalid)?;
        let mut version = 0;
        let mut from = start.to_vec();
        while from.as_slice() < end {
            let map = self.shard_map();
            let shard = shard_of(&map, &from);
            let to = match &shard.end {
                Some(shard_end) if shard_end.as_slice() < end => shard_end.clone(),
                _ => end.to_vec(),
            };
            let request = Request::DeleteRange {
                start: from,
                end: to.clone(),
            };
            version = self.write(request).await?;
            from = to;
        }
        Ok(version)
    }

    /// Applies every operation of `batch` atomically: all or none. Every key
    /// (and every range) must lie in one shard, otherwise the call fails
    /// with [`Error::CrossShardBatch`] before anything is sent.
    pub async fn batch(&self, batch: Batch) -> Result<u64, Error> {
        let ops = batch.into_ops();
        if ops.is_empty() {
            return Err(Error::InvalidArgument {
                code: ErrorCode::BadRequest,
                message: "empty batch".into(),
            });
        }
        let request = Request::Batch { ops };
        request.validate().map_err(Error::invalid)?;
        let Request::Batch { ops } = &request else {
            unreachable!("built above")
        };
        check_one_shard(&self.shard_map(), ops)?;
        written(self, self.call_valid(request).await?)
    }

    /// A scan over `options`' bounds, streamed: entries are fetched chunk by
    /// chunk as [`Scan::next`] is called, across shard boundaries, up to the
    /// limit.
    pub fn scan(&self, options: ScanOptions) -> Result<Scan, Error> {
        Scan::new(self.clone(), options)
    }

    /// Every entry of a scan, collected.
    pub async fn scan_collect(&self, options: ScanOptions) -> Result<Vec<KeyValue>, Error> {
        let mut scan = self.scan(options)?;
        let mut entries = Vec::new();
        while let Some(entry) = scan.next().await? {
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The node's status, as a JSON document.
    pub async fn status(&self) -> Result<String, Error> {
        match self.call(Request::Status).await? {
            Response::Status(json) => Ok(json),
            other => Err(self.unexpected("a status", &other)),
        }
    }

    async fn write(&self, request: Request) -> Result<u64, Error> {
        written(self, self.call(request).await?)
    }

    /// A put or delete: joins its shard's open group of writes when
    /// combining is on, else goes out on its own.
    async fn write_one(&self, op: WriteOp) -> Result<u64, Error> {
        op.validate().map_err(Error::invalid)?;
        if !self.inner.config.combine_writes {
            return self.write_alone(op).await;
        }
        let deadline = self.deadline();
        let map = self.shard_map();
        let shard = shard_of(&map, op.key()).id;
        let outcome = self.inner.combiner.join(self, shard, map.version, op);
        match self.within(deadline, outcome).await? {
            Ok(outcome) => outcome,
            // The group's sender was dropped unanswered: only when the
            // runtime shuts down.
            Err(_) => Err(Error::ConnectionLost {
                addr: self.inner.map_source,
                reason: "the runtime stopped before the write was answered".into(),
            }),
        }
    }

    /// A single put or delete (already validated) as its own request.
    pub(crate) async fn write_alone(&self, op: WriteOp) -> Result<u64, Error> {
        let request = match op {
            WriteOp::Put { key, value } => Request::Put { key, value },
            WriteOp::Delete { key } => Request::Delete { key },
            WriteOp::DeleteRange { start, end } => Request::DeleteRange { start, end },
        };
        written(self, self.call_valid(request).await?)
    }

    /// A combined group of writes (a valid [`Request::Batch`]): its outcome,
    /// and the request back, for sending its writes one by one if the node
    /// refused the batch.
    pub(crate) async fn write_combined(&self, request: Request) -> (Result<u64, Error>, Request) {
        let mut frame = unstamped(request);
        let outcome = match self.call_frame(&mut frame).await {
            Ok(response) => written(self, response),
            Err(err) => Err(err),
        };
        (outcome, frame.request)
    }

    /// The deadline length of this handle's calls.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn combiner(&self) -> &Combiner {
        &self.inner.combiner
    }

    /// Validates, routes and sends a single-response request.
    async fn call(&self, request: Request) -> Result<Response, Error> {
        request.validate().map_err(Error::invalid)?;
        self.call_valid(request).await
    }

    /// Routes and sends a single-response request already validated;
    /// follows `WrongShard` answers with a map refresh and another attempt.
    async fn call_valid(&self, request: Request) -> Result<Response, Error> {
        self.call_frame(&mut unstamped(request)).await
    }

    /// [`Client::call_valid`] for a frame the caller keeps.
    async fn call_frame(&self, frame: &mut RequestFrame) -> Result<Response, Error> {
        let deadline = self.deadline();
        let mut attempt = 0;
        loop {
            let map = self.shard_map();
            let core = match frame.request.routing_key() {
                Some(key) => shard_of(&map, key).core,
                None => 0,
            };
            // One deadline timer for sending and the reply.
            let reply = self
                .within(deadline, async {
                    let mut responses = self.send_unbounded(core, &map, frame, deadline).await?;
                    responses.next().await
                })
                .await??;
            self.observe_map_version(reply.shard_map_version, deadline)
                .await;
            match reply.response {
                Response::Error(ErrorReply { code, message }) => {
                    if code == ErrorCode::WrongShard && attempt < WRONG_SHARD_RETRIES_MAX {
                        attempt += 1;
                        let _refreshing =
                            self.within(deadline, self.inner.map_refresh.lock()).await?;
                        // Unless a newer map came meanwhile (say, with this reply).
                        if self.shard_map().version == map.version {
                            self.fetch_map(deadline).await?;
                        }
                        continue;
                    }
                    return Err(Error::Server { code, message });
                }
                response => return Ok(response),
            }
        }
    }

    /// Sends `frame` to `core`'s connection (connecting if needed) and
    /// returns the stream of its responses; all within `deadline`. Stamps
    /// the frame first (a fresh id, `map`'s version, the time left), so a
    /// frame can be sent again after a `WrongShard` answer.
    pub(crate) async fn send(
        &self,
        core: u32,
        map: &ShardMap,
        frame: &mut RequestFrame,
        deadline: Instant,
    ) -> Result<Responses, Error> {
        self.within(deadline, self.send_unbounded(core, map, frame, deadline))
            .await?
    }

    /// [`Client::send`] without its own deadline timer, for callers that
    /// bound the whole exchange with one.
    async fn send_unbounded(
        &self,
        core: u32,
        map: &ShardMap,
        frame: &mut RequestFrame,
        deadline: Instant,
    ) -> Result<Responses, Error> {
        let addr = self.core_addr(core, map)?;
        self.stamp(frame, map.version, deadline);
        self.connection(addr).await?.send(frame).await
    }

    /// Reads the next response of a scan part within `deadline` and notes
    /// its map version.
    pub(crate) async fn next_response(
        &self,
        responses: &mut Responses,
        deadline: Instant,
    ) -> Result<Response, Error> {
        let frame = self.within(deadline, responses.next()).await??;
        self.observe_map_version(frame.shard_map_version, deadline)
            .await;
        Ok(frame.response)
    }

    /// Gives `frame` a fresh id, the map version it is routed by and the
    /// time left until `deadline`.
    fn stamp(&self, frame: &mut RequestFrame, shard_map_version: u64, deadline: Instant) {
        let remaining_ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .clamp(1, u128::from(REQUEST_TIMEOUT_MS_MAX));
        frame.id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        frame.shard_map_version = shard_map_version;
        frame.timeout_ms = u32::try_from(remaining_ms).expect("clamped to a u32 limit");
    }

    /// The deadline of a call starting now.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Runs `work` until `deadline`, failing with [`Error::Timeout`] after.
    pub(crate) async fn within<T>(
        &self,
        deadline: Instant,
        work: impl Future<Output = T>,
    ) -> Result<T, Error> {
        tokio::time::timeout_at(deadline, work)
            .await
            .map_err(|_| Error::Timeout {
                timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            })
    }

    pub(crate) fn unexpected(&self, wanted: &str, got: &Response) -> Error {
        if let Response::Error(ErrorReply { code, message }) = got {
            return Error::Server {
                code: *code,
                message: message.clone(),
            };
        }
        Error::Protocol {
            addr: self.inner.map_source,
            reason: format!("expected {wanted}, got {got:?}"),
        }
    }

    /// Refreshes the map when a reply says the node holds a newer one.
    /// A failed refresh is logged, not returned: the reply itself was good.
    async fn observe_map_version(&self, version: u64, deadline: Instant) {
        if version <= self.shard_map().version {
            return;
        }
        let Ok(_refreshing) = self.within(deadline, self.inner.map_refresh.lock()).await else {
            return;
        };
        if version <= self.shard_map().version {
            return; // another task refreshed meanwhile
        }
        if let Err(err) = self.fetch_map(deadline).await {
            tracing::warn!(error = %err, "shard map refresh failed");
        }
    }

    /// Fetches the map from the map source and installs it unless older
    /// than the one held. The caller holds `map_refresh`.
    async fn fetch_map(&self, deadline: Instant) -> Result<Arc<ShardMap>, Error> {
        let addr = self.inner.map_source;
        let current = self.shard_map();
        let frame = self
            .within(deadline, async {
                let connection = self.connection(addr).await?;
                let mut frame = unstamped(Request::ShardMap);
                self.stamp(&mut frame, current.version, deadline);
                connection.send(&frame).await?.next().await
            })
            .await??;
        let map = match frame.response {
            Response::ShardMap(map) => map,
            other => return Err(self.unexpected("a shard map", &other)),
        };
        if !map.is_well_formed() {
            return Err(Error::Protocol {
                addr,
                reason: format!("shard map version {} is not well formed", map.version),
            });
        }
        let mut held = self.inner.map.write().expect("map lock poisoned");
        if map.version >= held.version {
            tracing::debug!(
                version = map.version,
                shards = map.shards.len(),
                "shard map"
            );
            *held = Arc::new(map);
        }
        Ok(held.clone())
    }

    fn core_addr(&self, core: u32, map: &ShardMap) -> Result<SocketAddr, Error> {
        let port = map
            .core_ports
            .get(core as usize)
            .ok_or_else(|| Error::Protocol {
                addr: self.inner.map_source,
                reason: format!("shard map names core {core} without a port"),
            })?;
        Ok(SocketAddr::new(self.inner.node_ip, *port))
    }

    /// A live connection to `addr`: the current one, or a new one. After
    /// failed attempts, waits out the backoff first (callers bound this with
    /// their deadline).
    async fn connection(&self, addr: SocketAddr) -> Result<Arc<CoreConnection>, Error> {
        let slot = match self.live_or_slot(addr) {
            Ok(connection) => return Ok(connection),
            Err(slot) => slot,
        };
        let mut state = slot.lock().await;
        // Another caller may have connected while this one waited.
        if let Ok(connection) = self.live_or_slot(addr) {
            return Ok(connection);
        }
        if let Some(retry_at) = state.retry_at {
            tokio::time::sleep_until(retry_at).await;
        }
        let config = &self.inner.config;
        let server_name = config
            .server_name
            .clone()
            .unwrap_or_else(|| self.inner.node_ip.to_string());
        let params = ConnectParams {
            endpoint: &self.inner.endpoint,
            quic: &self.inner.quic,
            server_name: &server_name,
            connect_timeout: config.connect_timeout,
            lanes: config.lanes_per_connection,
            max_in_flight: config.max_in_flight,
        };
        match CoreConnection::open(addr, &params).await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                *state = SlotState::default();
                self.inner
                    .cores
                    .lock()
                    .expect("core table poisoned")
                    .entry(addr)
                    .or_default()
                    .live = Some(connection.clone());
                Ok(connection)
            }
            Err(err) => {
                state.failures += 1;
                let backoff = backoff(
                    state.failures,
                    config.reconnect_backoff_min,
                    config.reconnect_backoff_max,
                );
                state.retry_at = Some(Instant::now() + backoff);
                tracing::warn!(%addr, error = %err, ?backoff, "connect failed");
                Err(err)
            }
        }
    }

    /// `addr`'s live connection, or (none, or it died: then it is
    /// dropped from the table) the slot to connect through.
    fn live_or_slot(&self, addr: SocketAddr) -> Result<Arc<CoreConnection>, Arc<CoreSlot>> {
        let mut cores = self.inner.cores.lock().expect("core table poisoned");
        let entry = cores.entry(addr).or_default();
        match entry.live.take() {
            Some(connection) if connection.is_alive() => {
                entry.live = Some(connection.clone());
                Ok(connection)
            }
            Some(_) => {
                tracing::info!(%addr, "connection lost; reconnecting");
                Err(entry.slot.clone())
            }
            None => Err(entry.slot.clone()),
        }
    }
}

/// The commit version a write was acknowledged with.
fn written(client: &Client, response: Response) -> Result<u64, Error> {
    match response {
        Response::Written { version } => Ok(version),
        other => Err(client.unexpected("a write acknowledgement", &other)),
    }
}

/// A frame for `request`, to be stamped by [`Client::send`].
pub(crate) fn unstamped(request: Request) -> RequestFrame {
    RequestFrame {
        id: 0,
        shard_map_version: 0,
        timeout_ms: 0,
        request,
    }
}

/// Wait before attempt `failures + 1`: `min * 2^(failures-1)`, at most `max`.
fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    min.saturating_mul(1 << doublings).min(max)
}

/// The shard owning `key` in a map the client routes by.
fn shard_of<'m>(map: &'m ShardMap, key: &[u8]) -> &'m ShardInfo {
    map.shard_for(key)
        .expect("maps are checked well formed (covering every key) before they are installed")
}

/// Fails unless every operation's keys lie in the shard of the first.
fn check_one_shard(map: &ShardMap, ops: &[WriteOp]) -> Result<(), Error> {
    match map.batch_shard(ops) {
        Ok(_) => Ok(()),
        Err(SpansShards { first, other }) => Err(Error::CrossShardBatch { first, other }),
    }
}

/// A client endpoint on a UDP socket bound to `bind`, with receive and send
/// buffers of [`SOCKET_BUFFER_BYTES`] where the kernel allows it (the
/// default 208 KiB overflows when many streamed replies arrive at once).
fn bind_endpoint(bind: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(bind)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    // Linux silently caps the sizes at net.core.rmem_max / wmem_max and
    // reports twice what it grants: a smaller grant is logged, as on the node.
    let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER_BYTES);
    let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER_BYTES);
    let granted = [
        (
            "receive",
            "net.core.rmem_max",
            state.recv_buffer_size((&socket).into()),
        ),
        (
            "send",
            "net.core.wmem_max",
            state.send_buffer_size((&socket).into()),
        ),
    ];
    for (name, sysctl, got) in granted {
        let got = got.map_or(0, |bytes| bytes / 2);
        if got < SOCKET_BUFFER_BYTES {
            tracing::warn!(
                wanted = SOCKET_BUFFER_BYTES,
                granted = got,
                "UDP {name} buffer smaller than asked; raise {sysctl} to avoid datagram drops under bursts"
            );
        }
    }
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime found (the client needs tokio)"))?;
    let mut config = quinn::EndpointConfig::default();
    // Accept datagrams as large as path MTU discovery may find (the
    // default, 1472, would cap it at Ethernet's size).
    config
        .max_udp_payload_size(MTU_UPPER_BOUND)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    quinn::Endpoint::new(config, None, socket, runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(1));
        assert_eq!(backoff(1, min, max), min);
        assert_eq!(backoff(2, min, max), Duration::from_millis(100));
        assert_eq!(backoff(5, min, max), Duration::from_millis(800));
        assert_eq!(backoff(6, min, max), max);
        assert_eq!(backoff(u32::MAX, min, max), max);
    }

    fn map() -> ShardMap {
        ShardMap {
            version: 1,
            core_ports: vec![1, 2],
            shards: vec![
                ShardInfo {
                    id: 10,
                    start: Vec::new(),
                    end: Some(b"m".to_vec()),
                    core: 0,
                },
                ShardInfo {
                    id: 11,
                    start: b"m".to_vec(),
                    end: None,
                    core: 1,
                },
            ],
        }
    }

    #[test]
    fn batches_must_stay_in_one_shard() {
        let map = map();
        let put = |k: &[u8]| WriteOp::Put {
            key: k.to_vec(),
            value: Vec::new(),
        };
        let range = |s: &[u8], e: &[u8]| WriteOp::DeleteRange {
            start: s.to_vec(),
            end: e.to_vec(),
        };
        assert!(check_one_shard(&map, &[put(b"a"), put(b"l"), range(b"b", b"m")]).is_ok());
        assert!(matches!(
            check_one_shard(&map, &[put(b"a"), put(b"m")]),
            Err(Error::CrossShardBatch {
                first: 10,
                other: 11
            })
        ));
        assert!(matches!(
            check_one_shard(&map, &[range(b"a", b"n")]),
            Err(Error::CrossShardBatch {
                first: 10,
                other: 11
            })
        ));
        assert!(check_one_shard(&map, &[put(b"x"), range(b"m", b"zzz")]).is_ok());
    }
}

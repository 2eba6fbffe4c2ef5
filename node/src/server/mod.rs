//! The running node: one pinned executor per core, each owning its shards'
//! engines, its QUIC endpoint (port = base port + core index) and its block
//! cache; cores talk only through the mesh of channels, for requests a client
//! sent to the wrong core.

mod core;
mod exec;
mod lane;
pub mod layout;
mod tls;

use self::core::{Core, MeshMsg};
use crate::config::NodeConfig;
use anyhow::Context;
use ferrisdb_io::RealDisk;
use ferrisdb_io::quic::{Endpoint, EndpointLimits};
use ferrisdb_lsm::{BlockCache, Engine, Options};
use ferrisdb_proto::ShardMap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Messages queued per ordered pair of cores.
const MESH_CHANNEL_MESSAGES: usize = 1024;
/// How long a stopping node waits for requests in flight.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// How long a stopping node waits for clients to acknowledge the close.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// How often a core checks for a stop request and publishes its status.
const TICK: Duration = Duration::from_millis(50);
/// QUIC application close code of a node that shuts down.
pub const SHUTDOWN_CODE: u32 = 2;

/// What every core (and the admin thread) shares: read-mostly, `Sync`.
pub struct NodeShared {
    pub config: NodeConfig,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub map: ShardMap,
    /// Set by SIGTERM/SIGINT (or the caller of [`run`]), or by a core that
    /// failed; every core polls it.
    pub stop: Arc<AtomicBool>,
    /// Each core's latest status, published every tick.
    pub core_status: Vec<Mutex<serde_json::Value>>,
}

/// Runs a node until SIGTERM/SIGINT.
pub fn start(config: NodeConfig) -> anyhow::Result<()> {
    crate::logging::init(config.log_format)?;
    let stop = Arc::new(AtomicBool::new(false));
    let signals = crate::server::signals::watch(stop.clone())?;
    let result = run(config, stop);
    drop(signals);
    result
}

mod signals {
    //! SIGTERM and SIGINT set a flag that the cores poll.
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    pub struct Watcher(Vec<signal_hook::SigId>);

    pub fn watch(stop: Arc<AtomicBool>) -> anyhow::Result<Watcher> {
        let mut ids = Vec::new();
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            ids.push(signal_hook::flag::register(signal, stop.clone())?);
        }
        Ok(Watcher(ids))
    }

    impl Drop for Watcher {
        fn drop(&mut self) {
            for id in self.0.drain(..) {
                signal_hook::low_level::unregister(id);
            }
        }
    }
}

/// Runs a node until `stop` is set (or a core fails).
pub fn run(config: NodeConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let data_dir = &config.data_dir;
    let lock = crate::lock::DataDirLock::acquire(data_dir)?;
    let map = layout::open_or_create(
        data_dir,
        config.cores,
        config.shards_per_core,
        &config.split_key_bytes()?,
        config.listen.port(),
    )?;
    let server_config = tls::server_config(&config)?;
    let cores = config.cores;
    let core_status: Vec<_> = (0..cores)
        .map(|_| Mutex::new(serde_json::Value::Null))
        .collect();
    let node = Arc::new(NodeShared {
        config: config.clone(),
        metrics: crate::metrics::Metrics::new(cores),
        map,
        stop,
        core_status,
    });
    let status_fn: crate::admin::StatusFn = {
        let node = Arc::downgrade(&node);
        Arc::new(move || {
            node.upgrade()
                .map_or(serde_json::Value::Null, |n| n.status())
        })
    };
    let admin = crate::admin::spawn(config.admin, node.metrics.clone(), status_fn)?;
    tracing::info!(data_dir = %lock.dir().display(), admin = %admin.local_addr(), cores, "node starting");
    tracing::info!(
        io_depth = config.io_depth,
        background_shares = config.background_shares,
        compaction_bytes_per_sec = config.compaction_bytes_per_sec,
        io_properties = ?config.io_properties,
        "device settings"
    );
    let executor_options = ferrisdb_io::executor::ExecutorOptions {
        background_shares: config.background_shares as usize,
        io_depth: config.io_depth as usize,
    };
    let stop_watch = {
        let node = node.clone();
        std::thread::spawn(move || {
            while !node.stop.load(Ordering::SeqCst) {
                std::thread::sleep(TICK);
            }
            // Load balancers see 503 on /healthz while the cores drain.
            admin.begin_shutdown();
            admin
        })
    };

    let mesh = ferrisdb_io::mesh::full_mesh::<MeshMsg>(cores, MESH_CHANNEL_MESSAGES);
    let results = ferrisdb_io::executor::run_pinned_with(cores, executor_options, move |core| {
        let node = node.clone();
        let ports = mesh.lock().expect("mesh lock")[core]
            .take()
            .expect("each core takes its ports once");
        let server_config = server_config.clone();
        async move {
            let result = run_core(core, node.clone(), ports, server_config).await;
            if let Err(err) = &result {
                tracing::error!(core, "{err:#}");
                // One core failing stops the node.
                node.stop.store(true, Ordering::SeqCst);
            }
            result.map_err(|e| format!("{e:#}"))
        }
    })
    .context("start core executors")?;
    if let Ok(admin) = stop_watch.join() {
        admin.stop();
    }
    for result in results {
        result.map_err(anyhow::Error::msg)?;
    }
    tracing::info!("node stopped cleanly");
    Ok(())
}

async fn run_core(
    index: usize,
    node: Arc<NodeShared>,
    ports: ferrisdb_io::mesh::MeshPorts<MeshMsg>,
    server_config: ferrisdb_io::quic::ServerConfig,
) -> anyhow::Result<()> {
    let config = &node.config;
    let cache = BlockCache::new(config.block_cache_bytes as usize);
    let shards: Vec<_> = node
        .map
        .shards
        .iter()
        .filter(|s| s.core as usize == index)
        .collect();
    // The limit is the core's: its shards share it.
    let compaction_bytes_per_sec = match config.compaction_bytes_per_sec {
        0 => 0,
        rate => (rate / shards.len().max(1) as u64).max(1),
    };
    let opts = Options {
        memtable_bytes_max: config.memtable_bytes as usize,
        compaction_bytes_per_sec,
        ..Options::default()
    };
    let mut engines = HashMap::new();
    for shard in shards {
        let dir = layout::shard_dir(&config.data_dir, shard.id);
        let engine = Engine::open_with_cache(RealDisk::new(), &dir, opts.clone(), cache.clone())
            .await
            .with_context(|| format!("open shard {} in {}", shard.id, dir.display()))?;
        engines.insert(shard.id, Rc::new(engine));
    }
    {
        let node = node.clone();
        ferrisdb_io::log::observe_durability(move |latency| {
            node.metrics.core(index).record_fsync(latency)
        });
    }
    let (senders, receivers) = ports.connect().await;
    let core = Rc::new(Core::new(index, node.clone(), engines, Some(senders)));
    for (from, rx) in receivers {
        ferrisdb_io::executor::spawn(core.clone().serve_mesh(from, rx)).detach();
    }
    let addr = SocketAddr::new(config.listen.ip(), node.map.core_ports[index]);
    let limits = EndpointLimits {
        socket_buffer_bytes: ferrisdb_proto::SOCKET_BUFFER_BYTES,
        max_udp_payload_bytes: ferrisdb_proto::MTU_UPPER_BOUND,
        ..EndpointLimits::default()
    };
    let endpoint = Endpoint::bind(addr, Some(server_config), limits)
        .with_context(|| format!("listen on {addr} (core {index})"))?;
    tracing::info!(core = index, %addr, shards = core.engines().len(), "core serving");
    let acceptor = {
        let core = core.clone();
        let endpoint = endpoint.clone();
        ferrisdb_io::executor::spawn(async move {
            while let Some(conn) = endpoint.accept().await {
                ferrisdb_io::executor::spawn(lane::serve_connection(core.clone(), conn)).detach();
            }
        })
    };
    let mut busy = BusyMeter::new();
    while !node.stop.load(Ordering::SeqCst) {
        let status = publish(&core, &endpoint, busy.ratio());
        *node.core_status[index].lock().expect("status lock") = status;
        ferrisdb_io::executor::sleep(TICK).await;
    }
    tracing::info!(
        core = index,
        inflight = core.inflight(),
        "stopping: draining requests"
    );
    core.begin_stop();
    core.drain(DRAIN_GRACE).await;
    endpoint
        .close(SHUTDOWN_CODE, b"node shutting down", CLOSE_GRACE)
        .await;
    acceptor.await;
    core.close_engines().await
}

/// Fraction of wall time the core spent running tasks since the last call.
struct BusyMeter {
    busy: Duration,
    at: std::time::Instant,
}

impl BusyMeter {
    fn new() -> BusyMeter {
        BusyMeter {
            busy: ferrisdb_io::executor::busy_time(),
            at: std::time::Instant::now(),
        }
    }

    fn ratio(&mut self) -> f64 {
        let (busy, at) = (
            ferrisdb_io::executor::busy_time(),
            std::time::Instant::now(),
        );
        let wall = at.duration_since(self.at).as_secs_f64();
        // glommio updates its runtime counter in steps; it can read lower than
        // a previous reading taken mid-step.
        let ran = busy.saturating_sub(self.busy).as_secs_f64();
        let ratio = if wall > 0.0 { ran / wall } else { 0.0 };
        (self.busy, self.at) = (busy, at);
        ratio.clamp(0.0, 1.0)
    }
}

/// Publishes the core's gauges and returns its status document, reading
/// each engine's statistics once.
fn publish(core: &Core, endpoint: &Endpoint, busy_ratio: f64) -> serde_json::Value {
    let (mut memtable, mut l0, mut compaction_bytes, mut compacting) = (0u64, 0u64, 0u64, 0u64);
    let mut shards = Vec::new();
    let mut compaction_rate = 0u64;
    for (id, engine) in core.engines() {
        let stats = engine.stats();
        compaction_rate += engine.options().compaction_bytes_per_sec;
        compacting += u64::from(engine.compaction_running());
        memtable += stats.memtable_bytes;
        l0 += stats.files_per_level.first().copied().unwrap_or(0) as u64;
        compaction_bytes += stats.compaction_write_bytes;
        shards.push(serde_json::json!({
            "id": id,
            "sst_bytes": stats.sst_bytes,
            "sst_files": stats.sst_files,
            "memtable_bytes": stats.memtable_bytes,
            "files_per_level": stats.files_per_level,
            "poisoned": engine.poisoned(),
        }));
    }
    let metrics = core.metrics();
    metrics.set_memtable_bytes(memtable);
    metrics.set_l0_files(l0);
    metrics.set_compactions_running(compacting);
    metrics.set_compaction_bytes_total(compaction_bytes);
    metrics.set_live_requests(core.inflight() as u64);
    metrics.set_open_connections(endpoint.connection_count() as u64);
    metrics.set_reactor_busy_ratio(busy_ratio);
    // Read back from the executor and the engine: what they actually use.
    let io = serde_json::json!({
        "io_depth": ferrisdb_io::executor::options().io_depth,
        "io_in_flight_max": ferrisdb_io::depth::in_flight_max(),
        "background_shares": ferrisdb_io::executor::background_queue_shares(),
        "compaction_bytes_per_sec": compaction_rate,
    });
    serde_json::json!({ "core": core.index(), "inflight": core.inflight(), "io": io, "shards": shards })
}

impl NodeShared {
    /// The node's status as JSON (served on `/status` and to `Status` requests).
    pub fn status(&self) -> serde_json::Value {
        let cores: Vec<_> = self
            .core_status
            .iter()
            .map(|s| s.lock().expect("status lock").clone())
            .collect();
        serde_json::json!({
            "node": { "version": env!("CARGO_PKG_VERSION"), "data_dir": self.config.data_dir, "listen": self.config.listen.to_string() },
            "shard_map_version": self.map.version,
            "cores": cores,
            "limits": {
                "key_bytes_max": ferrisdb_proto::KEY_BYTES_MAX,
                "value_bytes_max": ferrisdb_proto::VALUE_BYTES_MAX,
                "batch_ops_max": ferrisdb_proto::BATCH_OPS_MAX,
                "frame_payload_bytes_max": ferrisdb_proto::FRAME_PAYLOAD_BYTES_MAX,
                "streams_per_connection_max": ferrisdb_proto::STREAMS_PER_CONNECTION_MAX,
                "in_flight_requests_per_connection_max": ferrisdb_proto::IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX,
            },
        })
    }
}

#[cfg(test)]
mod tests;

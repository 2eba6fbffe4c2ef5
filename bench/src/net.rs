//! The benchmark series through `ferrisdb-client`: `concurrency` tokio tasks
//! per benchmark, each a closed loop with one request in flight, spread over
//! `connections` clients. Keys, values, key order and the result lines are
//! the engine series' own (`workload`, `meter`, `report`), so a line of
//! `net` reads against the same line of `engine`.

use crate::flags::{Benchmark, EngineArgs, NetArgs};
use crate::meter::Meter;
use crate::report::{BenchResult, EngineFacts, NetFacts};
use crate::target::{self, Target};
use crate::workload::{Plan, ValueGen};
use anyhow::{Context, Result};
use ferrisdb_client::{Batch, Client, KeyBound, ScanOptions};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Engine name of network results in the report and the JSON.
pub const ENGINE: &str = "ferrisdb-net";
/// Engine name of the embedded run with the flags as given.
pub const EMBEDDED: &str = "ferrisdb";
/// Engine name of the embedded run with sync writes and `--concurrency` tasks.
pub const EMBEDDED_SYNC: &str = "ferrisdb-sync";
/// Deadline of one request: long enough for a write stalled behind a flush
/// or compaction, short enough that a hung node fails the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs every benchmark of `args` in order against `target` and prints each
/// result as it finishes.
pub fn run_series(args: &NetArgs, target: &Target) -> Result<Vec<BenchResult>> {
    crate::target::runtime(args.node.client_threads)?.block_on(series(args, target))
}

async fn series(args: &NetArgs, target: &Target) -> Result<Vec<BenchResult>> {
    let node = &args.node;
    let mut clients = Vec::with_capacity(node.connections);
    for _ in 0..node.connections {
        // Every worker of this connection may have its request in flight
        // (`--concurrency` is at most 1024, within the protocol's 4096).
        let client = target::connect(target, node, args.concurrency, REQUEST_TIMEOUT);
        clients.push(client.await?);
    }
    let plan_args = args.network_plan_args();
    let values = ValueGen::new(
        plan_args.compression_ratio,
        plan_args.value_size,
        plan_args.seed,
    );
    let facts = NetFacts {
        endpoint: target.endpoint.to_string(),
        concurrency: args.concurrency,
        connections: node.connections,
        lanes: node.lanes,
        client_threads: node.client_threads,
        combine_writes: node.combine_writes,
        node_cores: target.node_cores,
        durable_writes: true,
    };
    let mut results = Vec::new();
    for (index, spec) in plan_args.benchmarks.iter().enumerate() {
        let plan = Plan::new(&plan_args, index, *spec);
        if spec.bench.fresh_db() && index > 0 {
            // A client cannot drop the node's data (a ranged delete would
            // leave tombstones that every later read pays for).
            println!(
                "{:<12} : note: writes over the keys already in the node",
                spec.label()
            );
        }
        crate::sysinfo::reset_peak_rss();
        let (meter, wall, writes) = run_one(&clients, &plan, &values).await?;
        let dir = target.data_dir.as_deref().unwrap_or(Path::new(""));
        let mut result = BenchResult::new(ENGINE, &plan, &meter, wall, dir, no_facts());
        result.background_writes = writes;
        result.network = Some(NetFacts {
            concurrency: plan.threads,
            ..facts.clone()
        });
        result.print(&meter, plan_args.histogram, None);
        results.push(result);
    }
    Ok(results)
}

/// Write amplification and engine stats live in the node; `status --json`
/// and /metrics show them.
fn no_facts() -> EngineFacts {
    EngineFacts {
        write_amp: 0.0,
        stats: serde_json::Value::Null,
    }
}

/// Runs one benchmark: (merged meter, wall time, background writer's writes).
async fn run_one(
    clients: &[Client],
    plan: &Plan,
    values: &ValueGen,
) -> Result<(Meter, Duration, Option<u64>)> {
    let start = Instant::now();
    let client = |w: usize| clients[w % clients.len()].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = (plan.bench() == Benchmark::ReadWhileWriting).then(|| {
        let w = plan.threads;
        tokio::spawn(write(
            client(w),
            plan.clone(),
            w,
            values.fork(w),
            Some(stop.clone()),
            Meter::new(),
        ))
    });
    let mut total = Meter::new();
    let tasks: Vec<_> = (0..plan.threads)
        .map(|w| {
            let meter = total.sibling();
            tokio::spawn(work(client(w), plan.clone(), w, values.fork(w), meter))
        })
        .collect();
    let mut failure = None;
    for task in tasks {
        match task.await.context("join a client task")? {
            Ok(meter) => total.merge(&meter),
            Err(err) => failure = failure.or(Some(err)),
        }
    }
    let wall = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let written = match writer {
        Some(task) => Some(task.await.context("join the writer")??.ops),
        None => None,
    };
    if let Some(err) = failure {
        return Err(err);
    }
    Ok((total, wall, written))
}

/// Worker `w` of the benchmark, with its running time in its meter
/// (db_bench's per-thread seconds).
async fn work(
    client: Client,
    plan: Plan,
    w: usize,
    values: ValueGen,
    meter: Meter,
) -> Result<Meter> {
    let start = Instant::now();
    let bench = plan.bench();
    let mut meter = match bench {
        Benchmark::FillSeq | Benchmark::FillRandom | Benchmark::Overwrite | Benchmark::FillSync => {
            write(client, plan, w, values, None, meter).await?
        }
        Benchmark::ReadRandom | Benchmark::ReadMissing | Benchmark::ReadWhileWriting => {
            read(client, plan, w, bench == Benchmark::ReadMissing, meter).await?
        }
        Benchmark::SeekRandom => seek(client, plan, w, meter).await?,
        Benchmark::ReadSeq => scan(client, plan, w, meter).await?,
    };
    meter.busy = start.elapsed();
    Ok(meter)
}

/// Writes worker `w`'s share of the plan, or, with `stop`, writes until told
/// to stop (readwhilewriting's writer).
async fn write(
    client: Client,
    plan: Plan,
    w: usize,
    values: ValueGen,
    stop: Option<Arc<AtomicBool>>,
    mut meter: Meter,
) -> Result<Meter> {
    let stopped = || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
    let mut writes = plan.worker_writes(w, values, stop.is_some());
    while let Some(n) = writes.next_write(stopped()) {
        let t = Instant::now();
        if n == 1 {
            let (key, value) = writes.entry();
            client.put(key, value).await.context("node put")?;
        } else {
            // An atomic batch must stay in one shard: the keys go in one
            // batch per shard they fall in, sent together.
            let map = client.shard_map();
            let mut batches: Vec<(u32, Batch)> = Vec::new();
            for _ in 0..n {
                let (key, value) = writes.entry();
                let shard = map
                    .shard_for(key)
                    .context("the node's shard map does not cover a key")?
                    .id;
                let at = match batches.iter().position(|(id, _)| *id == shard) {
                    Some(at) => at,
                    None => {
                        batches.push((shard, Batch::new()));
                        batches.len() - 1
                    }
                };
                batches[at].1.put(key, value);
            }
            if batches.len() == 1 {
                let (_, batch) = batches.pop().expect("one batch");
                client.batch(batch).await.context("node batch")?;
            } else {
                let mut sent = tokio::task::JoinSet::new();
                for (_, batch) in batches {
                    let client = client.clone();
                    sent.spawn(async move { client.batch(batch).await });
                }
                while let Some(done) = sent.join_next().await {
                    done.context("batch task")?.context("node batch")?;
                }
            }
        }
        meter.finish_op(t, n, writes.take_bytes());
    }
    Ok(meter)
}

async fn read(
    client: Client,
    plan: Plan,
    w: usize,
    missing: bool,
    mut meter: Meter,
) -> Result<Meter> {
    let mut keys = plan.worker_keys(w);
    let mut key = Vec::new();
    for _ in 0..plan.worker_ops(w) {
        plan.keys.write_read_key(keys.next_key(), missing, &mut key);
        let t = Instant::now();
        let got = client.get(&key).await.context("node get")?;
        let bytes = got.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
        meter.found += u64::from(got.is_some());
        meter.finish_op(t, 1, bytes);
    }
    Ok(meter)
}

/// Seeks to a random existing key and reads `seek_nexts` entries after it
/// (one scan request of `seek_nexts + 1` entries).
async fn seek(client: Client, plan: Plan, w: usize, mut meter: Meter) -> Result<Meter> {
    let mut keys = plan.worker_keys(w);
    let mut key = Vec::new();
    for _ in 0..plan.worker_ops(w) {
        plan.keys.write(keys.next_key(), &mut key);
        let t = Instant::now();
        let options = ScanOptions {
            start: KeyBound::Included(key.clone()),
            end: KeyBound::Unbounded,
            limit: Some(plan.seek_nexts as u64 + 1),
            reverse: false,
        };
        let mut scan = client.scan(options).context("node seek")?;
        let mut bytes = 0;
        if let Some(first) = scan.next().await.context("node seek")? {
            meter.found += u64::from(first.key == key);
            while let Some(e) = scan.next().await.context("node next")? {
                bytes += (e.key.len() + e.value.len()) as u64;
            }
        }
        meter.finish_op(t, 1, bytes);
    }
    Ok(meter)
}

/// Reads worker `w`'s share of entries from the start of the key space.
async fn scan(client: Client, plan: Plan, w: usize, mut meter: Meter) -> Result<Meter> {
    let options = ScanOptions::all().limit(plan.worker_ops(w).max(1));
    let mut scan = client.scan(options).context("node scan")?;
    for _ in 0..plan.worker_ops(w) {
        let t = Instant::now();
        match scan.next().await.context("node scan next")? {
            Some(e) => meter.finish_op(t, 1, (e.key.len() + e.value.len()) as u64),
            None => break,
        }
    }
    Ok(meter)
}

/// The embedded series for `--compare-embedded`, tagged with `engine` so
/// that the two variants stay apart in the report.
pub fn run_embedded(args: &EngineArgs, engine: &'static str) -> Result<Vec<BenchResult>> {
    let mut results = crate::ferris::run_series(args, None)?;
    for r in &mut results {
        r.engine = engine;
    }
    Ok(results)
}

//! The benchmark series on FerrisDB: one glommio executor thread, one engine,
//! `threads` tasks per benchmark (the engine is single-core; concurrency is
//! tasks, which is what lets the WAL group-commit concurrent sync writers).

use crate::flags::{Benchmark, EngineArgs};
use crate::meter::Meter;
use crate::probe::ProbeResult;
use crate::report::{BenchResult, EngineFacts};
use crate::workload::{Plan, ValueGen};
use anyhow::{Context, Result};
use ferrisdb_io::RealDisk;
use ferrisdb_io::executor::{run_local, spawn};
use ferrisdb_lsm::{Engine, Options, ReadOptions, ScanOptions, WriteBatch, WriteOptions};
use futures_lite::future::yield_now;
use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

type Db = Engine<RealDisk>;

pub const ENGINE: &str = "ferrisdb";

/// Runs every benchmark of `args` in order on FerrisDB and prints each result
/// as it finishes.
pub fn run_series(args: &EngineArgs, probe: Option<ProbeResult>) -> Result<Vec<BenchResult>> {
    let args = args.clone();
    run_local(move || async move { series(&args, probe.as_ref()).await })
}

async fn series(args: &EngineArgs, probe: Option<&ProbeResult>) -> Result<Vec<BenchResult>> {
    let dir = args.db.as_path();
    if !args.use_existing_db {
        crate::remove_dir_if_exists(dir)?;
    }
    let values = ValueGen::new(args.compression_ratio, args.value_size, args.seed);
    let mut db = open(dir, args).await?;
    // The DB just opened is empty unless --use_existing_db: a first fill
    // needs no second fresh one (each open preallocates WAL segments).
    let mut used = args.use_existing_db;
    let mut results = Vec::new();
    for (index, spec) in args.benchmarks.iter().enumerate() {
        if spec.bench.fresh_db() {
            if args.use_existing_db {
                println!("{:<12} : skipped (--use_existing_db is true)", spec.label());
                continue;
            }
            if used {
                db.close().await.context("close ferrisdb")?;
                crate::remove_dir_if_exists(dir)?;
                db = open(dir, args).await?;
            }
        }
        used = true;
        let plan = Plan::new(args, index, *spec);
        crate::sysinfo::reset_peak_rss();
        let (meter, wall, writes) = run_one(&db, &plan, &values).await?;
        let mut result = BenchResult::new(ENGINE, &plan, &meter, wall, dir, facts(&db));
        result.background_writes = writes;
        result.print(&meter, args.histogram, probe);
        results.push(result);
    }
    db.close().await.context("close ferrisdb")?;
    Ok(results)
}

async fn open(dir: &Path, args: &EngineArgs) -> Result<Db> {
    let mut opts = Options::default();
    if let Some(bytes) = args.cache_size {
        opts.block_cache_bytes = usize::try_from(bytes).context("--cache_size fits usize")?;
    }
    Engine::open(RealDisk::new(), dir, opts)
        .await
        .with_context(|| format!("open ferrisdb in {}", dir.display()))
}

fn facts(db: &Db) -> EngineFacts {
    let s = db.stats();
    let levels = db.level_bytes();
    let largest_level = levels.iter().rev().copied().find(|&b| b > 0).unwrap_or(0);
    EngineFacts {
        write_amp: s.write_amplification(),
        stats: serde_json::json!({
            "user_bytes": s.user_bytes,
            "wal_bytes": s.wal_bytes,
            "flush_bytes": s.flush_bytes,
            "compaction_read_bytes": s.compaction_read_bytes,
            "compaction_write_bytes": s.compaction_write_bytes,
            "flushes": s.flushes,
            "compactions": s.compactions,
            "trivial_moves": s.trivial_moves,
            "stalls": s.stalls,
            "sst_bytes": s.sst_bytes,
            "sst_files": s.sst_files,
            "files_per_level": s.files_per_level,
            "level_bytes": levels,
            "space_amp": s.space_amplification(largest_level),
            "memtable_bytes": s.memtable_bytes,
            "cache_hits": s.cache_hits,
            "cache_misses": s.cache_misses,
            "cache_bytes": s.cache_bytes,
        }),
    }
}

/// Runs one benchmark: (merged meter, wall time, background writer's writes).
async fn run_one(
    db: &Db,
    plan: &Plan,
    values: &ValueGen,
) -> Result<(Meter, Duration, Option<u64>)> {
    let start = Instant::now();
    let stop = Rc::new(Cell::new(false));
    let writer = (plan.bench() == Benchmark::ReadWhileWriting).then(|| {
        let w = plan.threads;
        spawn(write(
            db.clone(),
            plan.clone(),
            w,
            values.fork(w),
            Some(stop.clone()),
            Meter::new(),
        ))
    });
    let total = Meter::new();
    let tasks: Vec<_> = (0..plan.threads)
        .map(|w| {
            let meter = total.sibling();
            spawn(work(db.clone(), plan.clone(), w, values.fork(w), meter))
        })
        .collect();
    let workers = join(total, tasks).await;
    let wall = start.elapsed();
    stop.set(true);
    let written = match writer {
        Some(task) => Some(task.await?.ops),
        None => None,
    };
    Ok((workers?, wall, written))
}

async fn join<T: Future<Output = Result<Meter>>>(mut total: Meter, tasks: Vec<T>) -> Result<Meter> {
    for task in tasks {
        total.merge(&task.await?);
    }
    Ok(total)
}

/// Worker `w` of the benchmark, with its running time in its meter
/// (db_bench's per-thread seconds).
async fn work(db: Db, plan: Plan, w: usize, values: ValueGen, meter: Meter) -> Result<Meter> {
    let start = Instant::now();
    let bench = plan.bench();
    let mut meter = match bench {
        Benchmark::FillSeq | Benchmark::FillRandom | Benchmark::Overwrite | Benchmark::FillSync => {
            write(db, plan, w, values, None, meter).await?
        }
        Benchmark::ReadRandom | Benchmark::ReadMissing | Benchmark::ReadWhileWriting => {
            // Beside readwhilewriting's writer on this core, yield each read.
            let yield_each = bench == Benchmark::ReadWhileWriting;
            let missing = bench == Benchmark::ReadMissing;
            read(db, plan, w, missing, yield_each, meter).await?
        }
        Benchmark::SeekRandom => seek(db, plan, w, meter).await?,
        Benchmark::ReadSeq => scan(db, plan, w, meter).await?,
    };
    meter.busy = start.elapsed();
    Ok(meter)
}

/// Writes worker `w`'s share of the plan, or, with `stop`, writes until told
/// to stop (readwhilewriting's writer, which yields after every write so the
/// readers on the same core keep running).
async fn write(
    db: Db,
    plan: Plan,
    w: usize,
    values: ValueGen,
    stop: Option<Rc<Cell<bool>>>,
    mut meter: Meter,
) -> Result<Meter> {
    let opts = WriteOptions {
        sync: plan.sync,
        ..Default::default()
    };
    let mut writes = plan.worker_writes(w, values, stop.is_some());
    while let Some(n) = writes.next_write(stop.as_ref().is_some_and(|s| s.get())) {
        let t = Instant::now();
        if n == 1 {
            let (key, value) = writes.entry();
            db.put(key, value, &opts).await.context("ferrisdb put")?;
        } else {
            let mut batch = WriteBatch::new();
            for _ in 0..n {
                let (key, value) = writes.entry();
                batch.put(key, value);
            }
            db.write(batch, &opts)
                .await
                .context("ferrisdb write batch")?;
        }
        meter.finish_op(t, n, writes.take_bytes());
        if stop.is_some() {
            yield_now().await;
        }
    }
    Ok(meter)
}

async fn read(
    db: Db,
    plan: Plan,
    w: usize,
    missing: bool,
    yield_each: bool,
    mut meter: Meter,
) -> Result<Meter> {
    let opts = ReadOptions::default();
    let mut keys = plan.worker_keys(w);
    let mut key = Vec::new();
    for _ in 0..plan.worker_ops(w) {
        let k = keys.next_key();
        plan.keys.write_read_key(k, missing, &mut key);
        let t = Instant::now();
        let got = db.get(&key, &opts).await.context("ferrisdb get")?;
        let bytes = got.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
        meter.found += u64::from(got.is_some());
        meter.finish_op(t, 1, bytes);
        if yield_each {
            yield_now().await;
        }
    }
    Ok(meter)
}

/// Seeks to a random existing key and reads `seek_nexts` entries after it.
async fn seek(db: Db, plan: Plan, w: usize, mut meter: Meter) -> Result<Meter> {
    let opts = ScanOptions::default();
    let mut keys = plan.worker_keys(w);
    let mut key = Vec::new();
    for _ in 0..plan.worker_ops(w) {
        plan.keys.write(keys.next_key(), &mut key);
        let t = Instant::now();
        let mut iter = db
            .iter(Some(&key), None, &opts)
            .await
            .context("ferrisdb seek")?;
        let mut bytes = 0;
        if let Some((k, _)) = iter.next().await.context("ferrisdb next")? {
            meter.found += u64::from(k == key);
            for _ in 0..plan.seek_nexts {
                match iter.next().await.context("ferrisdb next")? {
                    Some((k, v)) => bytes += (k.len() + v.len()) as u64,
                    None => break,
                }
            }
        }
        meter.finish_op(t, 1, bytes);
    }
    Ok(meter)
}

/// Reads worker `w`'s share of entries from the start of the key space.
async fn scan(db: Db, plan: Plan, w: usize, mut meter: Meter) -> Result<Meter> {
    let mut iter = db
        .iter(None, None, &ScanOptions::default())
        .await
        .context("ferrisdb scan")?;
    for _ in 0..plan.worker_ops(w) {
        let t = Instant::now();
        match iter.next().await.context("ferrisdb next")? {
            Some((k, v)) => meter.finish_op(t, 1, (k.len() + v.len()) as u64),
            None => break,
        }
    }
    Ok(meter)
}

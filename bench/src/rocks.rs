//! The same benchmark series on RocksDB (feature `rocksdb`), with OS threads
//! as workers (RocksDB is thread-safe; its group commit batches concurrent
//! sync writers from different threads).
//!
//! RocksDB runs with its defaults as a user would get them
//! (`Options::default()` + `create_if_missing`), except:
//! - block cache: with `--cache_size`, an LRU cache of that many bytes (the
//!   same budget as FerrisDB's block cache); without it, RocksDB's default;
//! - `--use_direct_reads`: O_DIRECT reads, so the page cache does not add to
//!   RocksDB's cache budget (FerrisDB always reads with O_DIRECT);
//! - durability: WAL on (the default), `WriteOptions::set_sync` per `--sync`,
//!   and always for fillsync, as for FerrisDB;
//! - statistics enabled at `ExceptHistogramOrTimers` (the cheapest level that
//!   keeps tickers), only to read WAL/flush/compaction bytes for write amp.
//!
//! Defaults worth knowing when reading the figures: buffered I/O (the OS page
//! cache also caches RocksDB's files; FerrisDB uses O_DIRECT), Snappy
//! compression, no bloom filter, 64 MiB memtable, 2 background jobs.

use crate::flags::{Benchmark, EngineArgs};
use crate::meter::Meter;
use crate::probe::ProbeResult;
use crate::report::{BenchResult, EngineFacts};
use crate::workload::{Plan, ValueGen};
use anyhow::{Context, Result, anyhow};
use rocksdb::statistics::{StatsLevel, Ticker};
use rocksdb::{BlockBasedOptions, Cache, DB, Options, WriteBatch, WriteOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub const ENGINE: &str = "rocksdb";

struct Rocks {
    db: DB,
    /// Kept to read the statistics tickers (shared with the open DB).
    opts: Options,
    /// Key and value bytes written since open (write amp's denominator).
    user_bytes: u64,
}

impl Rocks {
    fn open(dir: &Path, args: &EngineArgs) -> Result<Rocks> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.enable_statistics();
        opts.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
        if let Some(bytes) = args.cache_size {
            let cache =
                Cache::new_lru_cache(usize::try_from(bytes).context("--cache_size fits usize")?);
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            opts.set_block_based_table_factory(&table);
        }
        opts.set_use_direct_reads(args.use_direct_reads);
        let db =
            DB::open(&opts, dir).with_context(|| format!("open rocksdb in {}", dir.display()))?;
        Ok(Rocks {
            db,
            opts,
            user_bytes: 0,
        })
    }

    fn facts(&self) -> EngineFacts {
        let t = |k| self.opts.get_ticker_count(k);
        let (wal, flush, compact) = (
            t(Ticker::WalFileBytes),
            t(Ticker::FlushWriteBytes),
            t(Ticker::CompactWriteBytes),
        );
        let prop = |name: &str| self.db.property_int_value(name).ok().flatten();
        let files_per_level: Vec<_> = (0..7)
            .map(|l| prop(&format!("rocksdb.num-files-at-level{l}")))
            .collect();
        EngineFacts {
            write_amp: if self.user_bytes == 0 {
                0.0
            } else {
                (wal + flush + compact) as f64 / self.user_bytes as f64
            },
            stats: serde_json::json!({
                "user_bytes": self.user_bytes,
                "wal_bytes": wal,
                "flush_bytes": flush,
                "compaction_read_bytes": t(Ticker::CompactReadBytes),
                "compaction_write_bytes": compact,
                "stall_micros": t(Ticker::StallMicros),
                "sst_bytes": prop("rocksdb.total-sst-files-size"),
                "files_per_level": files_per_level,
                "pending_compaction_bytes": prop("rocksdb.estimate-pending-compaction-bytes"),
                "cache_hits": t(Ticker::BlockCacheHit),
                "cache_misses": t(Ticker::BlockCacheMiss),
                "cache_bytes": prop("rocksdb.block-cache-usage"),
            }),
        }
    }
}

/// Runs every benchmark of `args` in order on RocksDB in `--rocksdb_db`.
pub fn run_series(args: &EngineArgs, probe: Option<ProbeResult>) -> Result<Vec<BenchResult>> {
    let dir = args.rocksdb_dir();
    if !args.use_existing_db {
        crate::remove_dir_if_exists(&dir)?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let values = ValueGen::new(args.compression_ratio, args.value_size, args.seed);
    let mut db = Rocks::open(&dir, args)?;
    // The DB just opened is empty unless --use_existing_db: a first fill
    // needs no second fresh one.
    let mut used = args.use_existing_db;
    let mut results = Vec::new();
    for (index, spec) in args.benchmarks.iter().enumerate() {
        if spec.bench.fresh_db() {
            if args.use_existing_db {
                println!("{:<12} : skipped (--use_existing_db is true)", spec.label());
                continue;
            }
            if used {
                drop(db);
                crate::remove_dir_if_exists(&dir)?;
                db = Rocks::open(&dir, args)?;
            }
        }
        used = true;
        let plan = Plan::new(args, index, *spec);
        crate::sysinfo::reset_peak_rss();
        let run = run_one(&db.db, &plan, &values)?;
        db.user_bytes += run.written_bytes;
        let mut result = BenchResult::new(ENGINE, &plan, &run.meter, run.wall, &dir, db.facts());
        result.background_writes = run.background_writes;
        result.print(&run.meter, args.histogram, probe.as_ref());
        results.push(result);
    }
    Ok(results)
}

struct Run {
    meter: Meter,
    wall: Duration,
    written_bytes: u64,
    background_writes: Option<u64>,
}

fn run_one(db: &DB, plan: &Plan, values: &ValueGen) -> Result<Run> {
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let bench = plan.bench();
    let work = |w: usize| -> Result<Meter> {
        let t = Instant::now();
        let mut meter = match bench {
            Benchmark::FillSeq
            | Benchmark::FillRandom
            | Benchmark::Overwrite
            | Benchmark::FillSync => write(db, plan, w, values.fork(w), None)?,
            Benchmark::ReadRandom | Benchmark::ReadMissing | Benchmark::ReadWhileWriting => {
                read(db, plan, w, bench == Benchmark::ReadMissing)?
            }
            Benchmark::SeekRandom => seek(db, plan, w)?,
            Benchmark::ReadSeq => scan(db, plan, w)?,
        };
        meter.busy = t.elapsed();
        Ok(meter)
    };
    let (meters, wall, writer) = thread::scope(|s| {
        let writer = (bench == Benchmark::ReadWhileWriting).then(|| {
            let w = plan.threads;
            let stop = &stop;
            s.spawn(move || write(db, plan, w, values.fork(w), Some(stop)))
        });
        let workers: Vec<_> = (0..plan.threads)
            .map(|w| s.spawn(move || work(w)))
            .collect();
        let meters: Vec<_> = workers.into_iter().map(join).collect();
        let wall = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        (meters, wall, writer.map(join))
    });
    let mut meter = Meter::new();
    for m in meters {
        meter.merge(&m?);
    }
    let writer = writer.transpose()?;
    let written_bytes = match bench {
        Benchmark::ReadWhileWriting => writer.as_ref().map_or(0, |w| w.bytes),
        b if b.writes() => meter.bytes,
        _ => 0,
    };
    Ok(Run {
        meter,
        wall,
        written_bytes,
        background_writes: writer.map(|w| w.ops),
    })
}

fn join(h: thread::ScopedJoinHandle<'_, Result<Meter>>) -> Result<Meter> {
    h.join()
        .map_err(|_| anyhow!("a rocksdb benchmark thread panicked"))?
}

fn write(
    db: &DB,
    plan: &Plan,
    w: usize,
    values: ValueGen,
    stop: Option<&AtomicBool>,
) -> Result<Meter> {
    let mut opts = WriteOptions::default();
    opts.set_sync(plan.sync);
    let mut writes = plan.worker_writes(w, values, stop.is_some());
    let mut meter = Meter::new();
    while let Some(n) = writes.next_write(stop.is_some_and(|s| s.load(Ordering::Relaxed))) {
        let t = Instant::now();
        if n == 1 {
            let (key, value) = writes.entry();
            db.put_opt(key, value, &opts).context("rocksdb put")?;
        } else {
            let mut batch = WriteBatch::default();
            for _ in 0..n {
                let (key, value) = writes.entry();
                batch.put(key, value);
            }
            db.write_opt(batch, &opts).context("rocksdb write batch")?;
        }
        meter.finish_op(t, n, writes.take_bytes());
    }
    Ok(meter)
}

fn read(db: &DB, plan: &Plan, w: usize, missing: bool) -> Result<Meter> {
    let mut keys = plan.worker_keys(w);
    let mut meter = Meter::new();
    let mut key = Vec::new();
    for _ in 0..plan.worker_ops(w) {
        let k = keys.next_key();
        plan.keys.write_read_key(k, missing, &mut key);
        let t = Instant::now();
        let got = db.get_pinned(&key).context("rocksdb get")?;
        let bytes = got.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
        meter.found += u64::from(got.is_some());
        meter.finish_op(t, 1, bytes);
    }
    Ok(meter)
}

/// A fresh iterator per seek, like the FerrisDB side.
fn seek(db: &DB, plan: &Plan, w: usize) -> Result<Meter> {
    let mut keys = plan.worker_keys(w);
    let mut meter = Meter::new();
    let mut key = Vec::new();
    for _ in 0..plan.worker_ops(w) {
        plan.keys.write(keys.next_key(), &mut key);
        let t = Instant::now();
        let mut it = db.raw_iterator();
        it.seek(&key);
        let mut bytes = 0;
        if it.valid() {
            meter.found += u64::from(it.key() == Some(key.as_slice()));
            for _ in 0..plan.seek_nexts {
                it.next();
                match (it.key(), it.value()) {
                    (Some(k), Some(v)) => bytes += (k.len() + v.len()) as u64,
                    _ => break,
                }
            }
        }
        it.status().context("rocksdb seek")?;
        meter.finish_op(t, 1, bytes);
    }
    Ok(meter)
}

fn scan(db: &DB, plan: &Plan, w: usize) -> Result<Meter> {
    let mut meter = Meter::new();
    let mut it = db.raw_iterator();
    for i in 0..plan.worker_ops(w) {
        let t = Instant::now();
        if i == 0 {
            it.seek_to_first();
        } else {
            it.next();
        }
        match (it.key(), it.value()) {
            (Some(k), Some(v)) => meter.finish_op(t, 1, (k.len() + v.len()) as u64),
            _ => break,
        }
    }
    it.status().context("rocksdb scan")?;
    Ok(meter)
}

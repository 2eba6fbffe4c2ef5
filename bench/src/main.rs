//! `ferrisdb-bench`: a db_bench clone for FerrisDB's engine, with RocksDB as a
//! peer in the same process (feature `rocksdb`), and a probe of the device's
//! own fdatasync rate.
//!
//! ```text
//! ferrisdb-bench engine --benchmarks=fillrandom,readrandom,fillsync,fillsync32 --num=1000000
//! ferrisdb-bench engine --engine=both --json=out.json      # needs --features rocksdb
//! ferrisdb-bench fsync-probe --dir ./bench-data
//! ferrisdb-bench net --endpoint=127.0.0.1:7400 --insecure --benchmarks=fillrandom,readrandom --concurrency=64
//! ferrisdb-bench net --spawn-node --cores=2 --compare-embedded --num=1000000   # the whole comparison
//! ferrisdb-bench ycsb run --spawn-node -P bench/workloads/workloada --threads 64 --json a.json
//! ferrisdb-bench plot a.json -o plots
//! ferrisdb-bench compare --num=1000000        # FerrisDB and RocksDB; needs --features rocksdb
//! ```

#![forbid(unsafe_code)]

/// mimalloc instead of glibc malloc: the request path allocates small
/// buffers per request, and glibc's free/trim showed up in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod ferris;
mod flags;
mod meter;
mod net;
mod node_proc;
mod plot;
mod probe;
mod report;
#[cfg(feature = "rocksdb")]
mod rocks;
mod sysinfo;
mod target;
mod workload;
mod ycsb;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use flags::{Benchmark, EngineArgs, EngineChoice, NetArgs};
use probe::ProbeResult;
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(name = "ferrisdb-bench", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// db_bench-style benchmarks of the storage engine.
    Engine(EngineArgs),
    /// The device's 4 KiB O_DIRECT pwrite + fdatasync rate.
    FsyncProbe(ProbeArgs),
    /// The engine benchmarks through `ferrisdb-client` against a node.
    Net(NetArgs),
    /// YCSB's core workloads (A-F) through `ferrisdb-client` against a node.
    Ycsb(ycsb::args::YcsbArgs),
    /// Plots of `ycsb --json` results: latency percentile spectra,
    /// throughput and p99 over time, and an overlay of several runs.
    Plot(plot::PlotArgs),
    /// The engine benchmarks on FerrisDB and RocksDB in one run, with the
    /// ratio table (`engine --engine=both`); needs `--features rocksdb`.
    Compare(EngineArgs),
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Directory on the device to probe (a scratch file is made and removed).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Engine(args) => run_engine(&args),
        Command::Net(args) => run_net(&args),
        Command::Ycsb(args) => ycsb::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::Compare(args) => run_compare(args),
        Command::FsyncProbe(p) => {
            let r = probe::run(&p.dir, p.secs)?;
            println!("{}", r.line());
            println!(
                "fsync-probe  : {} ops in {:.2} s; max {:.2} micros",
                r.ops, r.seconds, r.max_micros
            );
            Ok(())
        }
    }
}

fn run_engine(args: &EngineArgs) -> Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    if args.engine.runs_rocksdb() && !cfg!(feature = "rocksdb") {
        bail!(
            "--engine={} needs a build with `--features rocksdb`",
            args.engine.name()
        );
    }
    print_header(args);
    let probe = if args
        .benchmarks
        .iter()
        .any(|s| s.bench == Benchmark::FillSync)
    {
        Some(
            probe::run(&probe_dir(&args.db), args.fsync_probe_secs)
                .context("run the fsync probe")?,
        )
    } else {
        None
    };
    let both = args.engine.runs_ferrisdb() && args.engine.runs_rocksdb();
    let mut results = Vec::new();
    if args.engine.runs_ferrisdb() {
        if both {
            println!("=== ferrisdb ({}) ===", args.db.display());
        }
        results.extend(ferris::run_series(args, probe.clone())?);
    }
    if args.engine.runs_rocksdb() {
        if both {
            println!("=== rocksdb ({}) ===", args.rocksdb_dir().display());
        }
        results.extend(run_rocksdb(args, probe.clone())?);
    }
    let ratios = report::ratios(&results);
    if both {
        report::print_ratios(&ratios);
    }
    if let Some(path) = &args.json {
        let config = EngineArgs {
            reads: Some(args.reads()),
            rocksdb_db: Some(args.rocksdb_dir()),
            ..args.clone()
        };
        let doc = report::Document {
            config: &config,
            machine: sysinfo::machine(&args.db),
            device_probe: probe.as_ref(),
            results: &results,
            ratios,
            comparisons: Vec::new(),
            device_probes: &[],
        };
        report::write_json(path, &doc)?;
    }
    Ok(())
}

/// `compare`: `engine` with both engines. Without the `rocksdb` feature it
/// fails before anything is written.
fn run_compare(args: EngineArgs) -> Result<()> {
    if !cfg!(feature = "rocksdb") {
        bail!(
            "`ferrisdb-bench compare` runs RocksDB beside FerrisDB and needs a build with \
             `--features rocksdb` (RocksDB compiles from C++: clang and libclang-dev, 25-45 min \
             on 2 cores): cargo run --release -p ferrisdb-bench --features rocksdb -- compare ..."
        );
    }
    if args.engine != EngineChoice::Ferrisdb && args.engine != EngineChoice::Both {
        bail!("compare runs both engines: drop --engine");
    }
    run_engine(&EngineArgs {
        engine: EngineChoice::Both,
        ..args
    })
}

fn run_net(args: &NetArgs) -> Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    let w = &args.workload;
    print_header(w);
    println!(
        "Network:    concurrency {}, connections {}, lanes {}, client threads {}, combine writes {}; node writes are durable (WAL group commit)",
        args.concurrency,
        args.node.connections,
        args.node.lanes,
        args.node.client_threads,
        args.node.combine_writes
    );
    // One shard per core over the benchmark's key range: the node's
    // default even split on the first two bytes would put every
    // zero-padded decimal key in one shard (one core).
    let keys = workload::KeyFormat::new(w.key_size, w.num);
    let cores = args.node.cores as u64;
    let splits: Vec<String> = (1..cores)
        .map(|i| {
            let mut key = Vec::new();
            keys.write(i * w.num / cores, &mut key);
            String::from_utf8(key).expect("decimal digits")
        })
        .collect();
    let (mut node, target) = target::open(&args.node, &probe_dir(&w.db), &splits)?;
    // The device is shared and its fdatasync rate swings: measure it next
    // to each durable series so a fill can be read against it.
    let fills = w.benchmarks.iter().any(|s| s.bench.writes());
    let device = |when: &str| -> Result<Option<ProbeResult>> {
        if !fills {
            return Ok(None);
        }
        let p = probe::run(&probe_dir(&w.db), w.fsync_probe_secs).context("run the fsync probe")?;
        println!("{} ({when})", p.line());
        Ok(Some(p))
    };
    let mut probes = Vec::new();
    probes.extend(device("before the network run")?);
    println!("=== {} ({}) ===", net::ENGINE, target.endpoint);
    let mut results = net::run_series(args, &target)?;
    target::close(node.take())?;
    let mut blocks = Vec::new();
    if args.compare_embedded {
        let plain = args.embedded(false);
        println!(
            "=== embedded ferrisdb (sync {}, threads {}, {}) ===",
            plain.sync,
            plain.threads,
            plain.db.display()
        );
        results.extend(net::run_embedded(&plain, net::EMBEDDED)?);
        let synced = args.embedded(true);
        probes.extend(device("before the durable embedded run")?);
        println!(
            "=== embedded ferrisdb, durable like the node (sync true, threads {}, {}) ===",
            synced.threads,
            synced.db.display()
        );
        results.extend(net::run_embedded(&synced, net::EMBEDDED_SYNC)?);
        blocks.push((
            format!(
                "network / embedded (sync {}, threads {}): ratio >= 0.5 means the network path costs at most half",
                plain.sync, plain.threads
            ),
            report::compare(&results, net::ENGINE, net::EMBEDDED),
        ));
        blocks.push((
            format!(
                "network / embedded durable (sync true, threads {}): the same durability and requests in flight",
                synced.threads
            ),
            report::compare(&results, net::ENGINE, net::EMBEDDED_SYNC),
        ));
        report::print_comparisons(&blocks);
    }
    if let Some(path) = &w.json {
        let doc = report::Document {
            config: args,
            machine: sysinfo::machine(&w.db),
            device_probe: probes.first(),
            results: &results,
            ratios: Vec::new(),
            comparisons: blocks.into_iter().flat_map(|(_, rows)| rows).collect(),
            device_probes: &probes,
        };
        report::write_json(path, &doc)?;
    }
    Ok(())
}

#[cfg(feature = "rocksdb")]
fn run_rocksdb(args: &EngineArgs, probe: Option<ProbeResult>) -> Result<Vec<report::BenchResult>> {
    rocks::run_series(args, probe)
}

#[cfg(not(feature = "rocksdb"))]
fn run_rocksdb(_: &EngineArgs, _: Option<ProbeResult>) -> Result<Vec<report::BenchResult>> {
    bail!("built without the `rocksdb` feature")
}

/// db_bench's preamble.
fn print_header(args: &EngineArgs) {
    let entry = (args.key_size + args.value_size) as f64;
    let compressed = (args.value_size as f64 * args.compression_ratio) as usize;
    let mb = |b: f64| b / 1048576.0;
    println!("Keys:       {} bytes each", args.key_size);
    println!(
        "Values:     {} bytes each ({compressed} bytes after compression)",
        args.value_size
    );
    println!("Entries:    {}", args.num);
    println!(
        "RawSize:    {:.1} MB (estimated)",
        mb(entry * args.num as f64)
    );
    println!(
        "FileSize:   {:.1} MB (estimated)",
        mb((args.key_size + compressed) as f64 * args.num as f64)
    );
    println!(
        "Config:     engine {}, threads {}, batch_size {}, sync {}, cache_size {}, rocksdb direct reads {}",
        args.engine.name(),
        args.threads,
        args.batch_size,
        args.sync,
        args.cache_size
            .map_or("each engine's default".to_string(), |b| format!(
                "{b} bytes"
            )),
        args.use_direct_reads
    );
    println!("------------------------------------------------");
}

/// The probe runs beside the data: in --db's parent directory.
fn probe_dir(db: &Path) -> PathBuf {
    match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(crate) fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", dir.display())),
    }
}

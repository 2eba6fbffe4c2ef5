//! `ferrisdb tune disk | config | compaction`: the command-line face of
//! `ferrisdb-tuning` (the measuring, deriving and simulating live there).

use crate::config::{CORES_MAX, SHARDS_PER_CORE_MAX, parse_bytes};
use anyhow::{Context, bail};
use ferrisdb_tuning::derive::{self, Inputs, show};
use ferrisdb_tuning::disk::{DiskOptions, Step};
use ferrisdb_tuning::machine::{self, MemorySource};
use ferrisdb_tuning::simulate::{self, Distribution, Policy, Workload};
use ferrisdb_tuning::{IO_PROPERTIES_FILE, IoProperties};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum TuneCommand {
    /// Measure the device under DIR as the engine uses it (O_DIRECT through
    /// io_uring) and write DIR/io_properties.toml.
    Disk(DiskArgs),
    /// Derive a node configuration from cores, memory and io_properties.toml,
    /// explaining each value.
    Config(TuneConfigArgs),
    /// Simulate the engine's compaction planner over synthetic writes and
    /// print write, read and space amplification per setting.
    Compaction(CompactionArgs),
}

#[derive(Debug, clap::Args)]
pub struct DiskArgs {
    /// Directory on the device to measure (the node's data directory, usually).
    pub dir: PathBuf,
    /// Size of the test file (bytes, or e.g. 512MiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "1GiB")]
    pub size: u64,
    /// Seconds each of the timed tests runs.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub secs: f64,
    /// Queue depths of the 4 KiB random-read tests.
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        default_value = "1,4,16,64"
    )]
    pub depths: Vec<usize>,
    /// Where to write the results [default: DIR/io_properties.toml].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TuneConfigArgs {
    /// Cores of the node [default: the CPUs available].
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Memory of the machine, e.g. 16GiB [default: MemTotal or the cgroup limit].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memory: Option<u64>,
    /// Device measurements written by `ferrisdb tune disk`.
    #[arg(long, value_name = "FILE")]
    pub io_properties: Option<PathBuf>,
    /// Shards each core owns.
    #[arg(long, value_name = "N", default_value_t = crate::config::SHARDS_PER_CORE_DEFAULT)]
    pub shards_per_core: u32,
    /// Write the configuration to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CompactionArgs {
    /// Distinct keys loaded (in random order) before the updates.
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    pub keys: u64,
    /// Updates as a share of all writes, in [0, 0.96).
    #[arg(long, value_name = "R", default_value_t = 0.5)]
    pub update_ratio: f64,
    /// Key distributions of the updates: uniform, zipf.
    #[arg(
        long,
        value_name = "D,...",
        value_delimiter = ',',
        default_value = "uniform,zipf"
    )]
    pub distributions: Vec<String>,
    /// Exponent of the zipf distribution.
    #[arg(long, value_name = "S", default_value_t = 0.99)]
    pub zipf_exponent: f64,
    /// Bytes of one entry on disk (key, value and framing).
    #[arg(long, value_name = "BYTES", default_value_t = 128)]
    pub entry_bytes: u64,
    /// Divide memtable, L1 and table sizes by this, to keep runs small with
    /// the proportions of large ones (the tables print unscaled sizes).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub scale: u64,
    /// Level size multipliers to try.
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "4,8,10,16"
    )]
    pub multipliers: Vec<u64>,
    /// L0 compaction triggers to try.
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "2,4,8"
    )]
    pub l0_triggers: Vec<usize>,
    /// Table target sizes to try.
    #[arg(long, value_name = "BYTES,...", value_delimiter = ',', value_parser = parse_bytes,
          default_value = "16MiB,64MiB,256MiB")]
    pub sst_bytes: Vec<u64>,
    /// Memtable sizes to try.
    #[arg(long, value_name = "BYTES,...", value_delimiter = ',', value_parser = parse_bytes,
          default_value = "64MiB,256MiB")]
    pub memtable_bytes: Vec<u64>,
    /// Seed of the key order and the update keys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop starting new runs after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub max_secs: f64,
}

pub fn run(cmd: TuneCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TuneCommand::Disk(args) => disk(&args),
        TuneCommand::Config(args) => config(&args),
        TuneCommand::Compaction(args) => compaction(&args),
    }
    .map(|()| ExitCode::SUCCESS)
}

fn disk(args: &DiskArgs) -> anyhow::Result<()> {
    let opts = DiskOptions {
        file_bytes: args.size,
        secs_per_test: args.secs,
        random_depths: args.depths.clone(),
        ..DiskOptions::new(&args.dir)
    };
    println!(
        "ferrisdb tune disk {}: {} test file, {} s per test, O_DIRECT through io_uring",
        args.dir.display(),
        show(args.size),
        args.secs
    );
    let block = show(opts.seq_block_bytes as u64);
    let depth = opts.seq_depth;
    let props = ferrisdb_tuning::disk::measure(&opts, |step| match step {
        Step::Warning(w) => println!("warning: {w}"),
        Step::LaidOut { bytes, secs } => {
            println!(
                "laid out {} in {secs:.1} s (allocated, written once, synced)",
                show(bytes)
            )
        }
        Step::SequentialWrite(bps) => {
            println!(
                "{:<34} {}",
                format!("sequential write {block} x {depth}"),
                rate(bps)
            )
        }
        Step::SequentialRead(bps) => {
            println!(
                "{:<34} {}",
                format!("sequential read  {block} x {depth}"),
                rate(bps)
            )
        }
        Step::RandomRead(r) => println!(
            "{:<34} {:>9} IOPS  p50 {:>8.1} us  p99 {:>8.1} us",
            format!("random read 4 KiB, depth {}", r.depth),
            r.iops,
            r.p50_us,
            r.p99_us
        ),
        Step::Fdatasync(f) => println!(
            "{:<34} {:>9} /s    fdatasync p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us \
             (write p50 {:.1} us)",
            "write 4 KiB + fdatasync",
            f.ops_per_sec,
            f.sync_p50_us,
            f.sync_p99_us,
            f.sync_p999_us,
            f.sync_max_us,
            f.write_p50_us
        ),
        Step::DsyncWrite(d) => println!(
            "{:<34} {:>9} /s    write p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
            "write 4 KiB with O_DSYNC", d.ops_per_sec, d.p50_us, d.p99_us, d.p999_us, d.max_us
        ),
        Step::RuntimeFdatasync(r) => println!(
            "{:<34} {:>9} /s    fdatasync p50 {:.1} us  p99 {:.1} us (through the engine's executor)",
            "write 4 KiB + fdatasync, runtime", r.ops_per_sec, r.sync_p50_us, r.sync_p99_us
        ),
    })?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dir.join(IO_PROPERTIES_FILE));
    props.write(&out)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Bytes per second as fio prints them: decimal MB/s, then MiB/s.
fn rate(bps: u64) -> String {
    format!(
        "{:>9.1} MB/s ({:.1} MiB/s)",
        bps as f64 / 1e6,
        bps as f64 / (1 << 20) as f64
    )
}

fn config(args: &TuneConfigArgs) -> anyhow::Result<()> {
    let inputs = config_inputs(args)?;
    let text = derive::derive(&inputs).to_toml();
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn config_inputs(args: &TuneConfigArgs) -> anyhow::Result<Inputs> {
    let cpus = machine::cpus();
    let cores = args.cores.unwrap_or(cpus.min(CORES_MAX));
    if !(1..=CORES_MAX).contains(&cores) {
        bail!("--cores is {cores}; it must be between 1 and {CORES_MAX}");
    }
    if !(1..=SHARDS_PER_CORE_MAX).contains(&args.shards_per_core) {
        bail!(
            "--shards-per-core is {}; it must be between 1 and {SHARDS_PER_CORE_MAX}",
            args.shards_per_core
        );
    }
    let (memory_bytes, memory_source) = match args.memory {
        Some(0) => bail!("--memory must be above 0"),
        Some(bytes) => (bytes, MemorySource::Given),
        None => machine::memory()
            .context("read the machine's memory from /proc/meminfo; pass --memory")?,
    };
    let io = match &args.io_properties {
        Some(path) => Some((IoProperties::read(path)?, path.clone())),
        None => None,
    };
    Ok(Inputs {
        cores,
        memory_bytes,
        memory_source,
        shards_per_core: args.shards_per_core,
        io,
    })
}

fn compaction(args: &CompactionArgs) -> anyhow::Result<()> {
    if !(1..=1 << 20).contains(&args.scale) {
        bail!("--scale must be between 1 and 1048576");
    }
    if !(args.max_secs > 0.0 && args.max_secs <= 86_400.0) {
        bail!("--max-secs must be above 0 and at most 86400");
    }
    if args.multipliers.iter().any(|&m| m < 2) || args.l0_triggers.contains(&0) {
        bail!("multipliers must be at least 2 and L0 triggers at least 1");
    }
    if args
        .sst_bytes
        .iter()
        .chain(&args.memtable_bytes)
        .any(|&b| b < args.scale)
    {
        bail!("table and memtable sizes must be at least --scale bytes");
    }
    let workloads = args
        .distributions
        .iter()
        .map(|d| {
            let distribution = match d.as_str() {
                "uniform" => Distribution::Uniform,
                "zipf" => Distribution::Zipf(args.zipf_exponent),
                other => bail!("unknown distribution {other:?}: use uniform or zipf"),
            };
            let w = Workload {
                keys: args.keys,
                update_ratio: args.update_ratio,
                distribution,
                entry_bytes: args.entry_bytes,
                seed: args.seed,
            };
            w.validate().map_err(anyhow::Error::msg)?;
            Ok(w)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let base = Policy::from_options(&ferrisdb_lsm::Options::default());
    let variants = simulate::one_at_a_time(
        &base,
        &args.multipliers,
        &args.l0_triggers,
        &args.sst_bytes,
        &args.memtable_bytes,
    );
    println!(
        "ferrisdb tune compaction: the engine's planner (leveled, tiered L0) by metadata; \
         defaults: memtable {}, L0 trigger {}, L1 {}, multiplier {}, tables {}, {} levels",
        show(base.memtable_bytes),
        base.l0_trigger,
        show(base.level1_bytes),
        base.multiplier,
        show(base.sst_bytes),
        base.levels
    );
    println!(
        "sizes simulated at 1/{} (the table shows real sizes); {} B entries; \
         read amplification = tables (blocks with {}-bit bloom filters) per point read",
        args.scale,
        args.entry_bytes,
        ferrisdb_lsm::Options::default().bloom_bits_per_key
    );
    let mut current: Option<String> = None;
    let done = simulate::compare(
        &workloads,
        &variants,
        args.scale,
        Duration::from_secs_f64(args.max_secs),
        |w, v, o| {
            let title = workload_title(w, args.scale);
            if current.as_ref() != Some(&title) {
                println!("\n{title}\n{}", simulate::table_header());
                current = Some(title);
            }
            println!("{}", simulate::table_row(v, o));
        },
    );
    let planned = workloads.len() * variants.len();
    if done.len() < planned {
        println!(
            "\nstopped after --max-secs {}: {} of {planned} runs done",
            args.max_secs,
            done.len()
        );
    }
    Ok(())
}

fn workload_title(w: &Workload, scale: u64) -> String {
    format!(
        "workload: {} keys loaded in random order, then {} updates ({:.0}% of writes, {}); \
         live data {} (real size {})",
        w.keys,
        w.updates(),
        w.update_ratio * 100.0,
        w.distribution,
        show(w.keys * w.entry_bytes),
        show(w.keys * w.entry_bytes * scale)
    )
}

#[cfg(test)]
mod tests;

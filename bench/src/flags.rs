//! Command-line flags of `ferrisdb-bench engine`, named as db_bench names them
//! (`--value_size`, not `--value-size`; the kebab-case spelling is accepted as
//! an alias), and the benchmark list (`--benchmarks=fillseq,readrandom,...`).

use crate::target::NodeArgs;
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};
use serde::{Serialize, Serializer};
use std::path::{Path, PathBuf};

/// Upper bound on `--threads` and on a `[threads=N]` override: each one is a
/// task (FerrisDB) or an OS thread (RocksDB) with its own histogram.
pub const THREADS_MAX: usize = 1024;
/// Upper bound on `--batch_size` (FerrisDB's default `batch_ops_max`).
pub const BATCH_SIZE_MAX: usize = 100_000;
/// Upper bound on `--seek_nexts`.
pub const SEEK_NEXTS_MAX: usize = 1_000_000;
/// Upper bound on `--value_size` (FerrisDB's default `value_bytes_max`).
pub const VALUE_SIZE_MAX: usize = 1 << 20;
/// Upper bound on `--key_size`.
pub const KEY_SIZE_MAX: usize = 1024;

pub const BENCHMARKS_DEFAULT: &str = "fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,seekrandom,readwhilewriting,fillsync";

/// One benchmark of the `--benchmarks` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Benchmark {
    FillSeq,
    FillRandom,
    Overwrite,
    ReadRandom,
    ReadMissing,
    ReadSeq,
    SeekRandom,
    ReadWhileWriting,
    FillSync,
}

impl Benchmark {
    pub const ALL: [Benchmark; 9] = [
        Benchmark::FillSeq,
        Benchmark::FillRandom,
        Benchmark::Overwrite,
        Benchmark::ReadRandom,
        Benchmark::ReadMissing,
        Benchmark::ReadSeq,
        Benchmark::SeekRandom,
        Benchmark::ReadWhileWriting,
        Benchmark::FillSync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Benchmark::FillSeq => "fillseq",
            Benchmark::FillRandom => "fillrandom",
            Benchmark::Overwrite => "overwrite",
            Benchmark::ReadRandom => "readrandom",
            Benchmark::ReadMissing => "readmissing",
            Benchmark::ReadSeq => "readseq",
            Benchmark::SeekRandom => "seekrandom",
            Benchmark::ReadWhileWriting => "readwhilewriting",
            Benchmark::FillSync => "fillsync",
        }
    }

    fn from_name(name: &str) -> Option<Benchmark> {
        Benchmark::ALL.into_iter().find(|b| b.name() == name)
    }

    /// db_bench destroys and recreates the DB before these.
    pub fn fresh_db(self) -> bool {
        matches!(
            self,
            Benchmark::FillSeq | Benchmark::FillRandom | Benchmark::FillSync
        )
    }

    /// The benchmark's workers write (the fills and overwrite).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Benchmark::FillSeq | Benchmark::FillRandom | Benchmark::Overwrite | Benchmark::FillSync
        )
    }

    /// The word in db_bench's "Microseconds per `<op>`:" histogram header.
    pub fn op_word(self) -> &'static str {
        match self {
            b if b.writes() => "write",
            Benchmark::SeekRandom => "seek",
            _ => "read",
        }
    }

    /// Reports "(X of Y found)" like db_bench's readrandom.
    pub fn counts_hits(self) -> bool {
        matches!(
            self,
            Benchmark::ReadRandom
                | Benchmark::ReadMissing
                | Benchmark::SeekRandom
                | Benchmark::ReadWhileWriting
        )
    }
}

/// A benchmark with an optional per-benchmark thread count, written
/// `fillsync[threads=32]` or, without shell-quoting, `fillsync32` (a known
/// name followed by digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSpec {
    pub bench: Benchmark,
    pub threads: Option<usize>,
}

impl BenchSpec {
    /// The name printed at the start of the db_bench result line.
    pub fn label(&self) -> String {
        match self.threads {
            None => self.bench.name().to_string(),
            Some(n) => format!("{}[threads={n}]", self.bench.name()),
        }
    }

    pub fn threads_or(&self, default: usize) -> usize {
        self.threads.unwrap_or(default)
    }
}

impl Serialize for BenchSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

/// Parses one element of `--benchmarks`.
pub fn parse_spec(text: &str) -> Result<BenchSpec, String> {
    let text = text.trim();
    let known = || {
        let names: Vec<_> = Benchmark::ALL.iter().map(|b| b.name()).collect();
        format!("known benchmarks: {}", names.join(","))
    };
    if let Some(open) = text.find('[') {
        let params = text[open + 1..]
            .strip_suffix(']')
            .ok_or_else(|| format!("`{text}`: missing `]`"))?;
        let name = &text[..open];
        let bench = Benchmark::from_name(name)
            .ok_or_else(|| format!("unknown benchmark `{name}`; {}", known()))?;
        let value = params
            .strip_prefix("threads=")
            .ok_or_else(|| format!("`{text}`: the only parameter is `threads=N`"))?;
        let threads = parse_threads(value).map_err(|e| format!("`{text}`: {e}"))?;
        return Ok(BenchSpec {
            bench,
            threads: Some(threads),
        });
    }
    if let Some(bench) = Benchmark::from_name(text) {
        return Ok(BenchSpec {
            bench,
            threads: None,
        });
    }
    let digits_at = text.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (name, digits) = text.split_at(digits_at);
    match Benchmark::from_name(name) {
        Some(bench) if !digits.is_empty() => {
            let threads = parse_threads(digits).map_err(|e| format!("`{text}`: {e}"))?;
            return Ok(BenchSpec {
                bench,
                threads: Some(threads),
            });
        }
        _ => {}
    }
    Err(format!("unknown benchmark `{text}`; {}", known()))
}

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=THREADS_MAX).contains(&n) => Ok(n),
        _ => Err(format!("threads must be 1..={THREADS_MAX}, got `{text}`")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    Ferrisdb,
    Rocksdb,
    Both,
}

impl EngineChoice {
    pub fn name(self) -> &'static str {
        match self {
            EngineChoice::Ferrisdb => "ferrisdb",
            EngineChoice::Rocksdb => "rocksdb",
            EngineChoice::Both => "both",
        }
    }

    pub fn runs_ferrisdb(self) -> bool {
        matches!(self, EngineChoice::Ferrisdb | EngineChoice::Both)
    }

    pub fn runs_rocksdb(self) -> bool {
        matches!(self, EngineChoice::Rocksdb | EngineChoice::Both)
    }
}

/// `ferrisdb-bench engine`: a db_bench clone.
///
/// Differences from db_bench, on purpose: `--num` and `--reads` are totals
/// shared by the `--threads` workers (db_bench gives each thread `--num`);
/// fillrandom writes every key of `0..num` once in a random order (like
/// db_bench's filluniquerandom) so a later readrandom finds every key.
#[derive(Debug, Clone, Args, Serialize)]
pub struct EngineArgs {
    /// Comma-separated benchmarks, run in order on the same DB. A thread count
    /// for one benchmark: `fillsync[threads=32]` (quote it in a shell) or
    /// `fillsync32`.
    #[arg(long, value_delimiter = ',', default_value = BENCHMARKS_DEFAULT, value_parser = parse_spec)]
    pub benchmarks: Vec<BenchSpec>,
    /// Number of key/value pairs to write (total over all workers).
    #[arg(long, default_value_t = 1_000_000)]
    pub num: u64,
    /// Number of reads (total over all workers); default: --num.
    #[arg(long)]
    pub reads: Option<u64>,
    /// FerrisDB's data directory; left in place after the run.
    #[arg(long, default_value = "./bench-data/ferrisdb")]
    pub db: PathBuf,
    /// RocksDB's data directory; default: beside --db (`ferrisdb` -> `rocksdb`,
    /// anything else gets a `-rocksdb` suffix).
    #[arg(long = "rocksdb_db", alias = "rocksdb-db")]
    pub rocksdb_db: Option<PathBuf>,
    #[arg(long = "key_size", alias = "key-size", default_value_t = 16)]
    pub key_size: usize,
    #[arg(long = "value_size", alias = "value-size", default_value_t = 100)]
    pub value_size: usize,
    /// Fraction of a value that is random; the rest repeats it (db_bench's
    /// generator, so compressing engines see db_bench's data).
    #[arg(
        long = "compression_ratio",
        alias = "compression-ratio",
        default_value_t = 0.5
    )]
    pub compression_ratio: f64,
    /// Sync (fdatasync the log) on every write.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false,
          default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    pub sync: bool,
    /// Keys per write batch (over the network: one atomic batch per shard
    /// the keys fall in, sent together).
    #[arg(long = "batch_size", alias = "batch-size", default_value_t = 1)]
    pub batch_size: usize,
    /// Block cache budget in bytes, the same for both engines. Unset: each
    /// engine's default (FerrisDB 256 MiB; RocksDB 32 MiB plus the OS page
    /// cache, since it reads with buffered I/O unless --use_direct_reads).
    #[arg(long = "cache_size", alias = "cache-size")]
    pub cache_size: Option<u64>,
    /// RocksDB reads with O_DIRECT (no page cache), like FerrisDB always does;
    /// with --cache_size this makes the cache budgets really equal.
    #[arg(long = "use_direct_reads", alias = "use-direct-reads", num_args = 0..=1,
          default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set, default_value_t = false)]
    pub use_direct_reads: bool,
    /// Concurrent workers per benchmark: glommio tasks on one executor for
    /// FerrisDB, OS threads for RocksDB.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Entries read after each seek in seekrandom.
    #[arg(long = "seek_nexts", alias = "seek-nexts", default_value_t = 10)]
    pub seek_nexts: usize,
    /// Reuse the DB in --db and skip the benchmarks that need a fresh one.
    #[arg(long = "use_existing_db", alias = "use-existing-db", num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    pub use_existing_db: bool,
    /// Seed of every key and value stream (runs with one seed are identical).
    #[arg(long, default_value_t = 301)]
    pub seed: u64,
    /// Write every result, the config, the machine and the device probe here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Print db_bench's latency block after each result (`--histogram=0` off).
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    pub histogram: bool,
    #[arg(long, value_enum, default_value_t = EngineChoice::Ferrisdb)]
    pub engine: EngineChoice,
    /// Length of the fsync probe run beside fillsync (seconds).
    #[arg(
        long = "fsync_probe_secs",
        alias = "fsync-probe-secs",
        default_value_t = 2.0
    )]
    pub fsync_probe_secs: f64,
}

impl EngineArgs {
    pub fn reads(&self) -> u64 {
        self.reads.unwrap_or(self.num)
    }

    pub fn rocksdb_dir(&self) -> PathBuf {
        self.rocksdb_db
            .clone()
            .unwrap_or_else(|| rocksdb_dir_beside(&self.db))
    }

    /// Rejects flag values outside their limits before anything is written.
    pub fn validate(&self) -> Result<(), String> {
        if self.num == 0 {
            return Err("--num must be at least 1".into());
        }
        if !(1..=THREADS_MAX).contains(&self.threads) {
            return Err(format!("--threads must be 1..={THREADS_MAX}"));
        }
        if !(1..=BATCH_SIZE_MAX).contains(&self.batch_size) {
            return Err(format!("--batch_size must be 1..={BATCH_SIZE_MAX}"));
        }
        if self.seek_nexts > SEEK_NEXTS_MAX {
            return Err(format!("--seek_nexts must be at most {SEEK_NEXTS_MAX}"));
        }
        if self.value_size > VALUE_SIZE_MAX {
            return Err(format!("--value_size must be at most {VALUE_SIZE_MAX}"));
        }
        let digits = crate::workload::KeyFormat::digits(self.num);
        if self.key_size < digits || self.key_size > KEY_SIZE_MAX {
            return Err(format!(
                "--key_size must be {digits}..={KEY_SIZE_MAX} (keys are zero-padded decimal)"
            ));
        }
        if !(0.0..=1.0).contains(&self.compression_ratio) {
            return Err("--compression_ratio must be in 0..=1".into());
        }
        if !(self.fsync_probe_secs > 0.0 && self.fsync_probe_secs <= 600.0) {
            return Err("--fsync_probe_secs must be in (0, 600]".into());
        }
        if self.benchmarks.is_empty() {
            return Err("--benchmarks is empty".into());
        }
        Ok(())
    }
}

/// Upper bound on `--concurrency` (and on a `[threads=N]` override in net
/// mode): one client task each, with its own histogram.
pub const CONCURRENCY_MAX: usize = THREADS_MAX;

/// `ferrisdb-bench net`: the same workloads as `engine`, through
/// `ferrisdb-client` against a running node (or one it starts).
///
/// Every `engine` flag applies with its meaning there (`--num`, `--reads`,
/// `--key_size`, `--value_size`, `--batch_size`, `--seed`, `--json`,
/// `--histogram`...); `--db` and `--threads` describe the embedded engine
/// run by `--compare-embedded` (and the spawned node's data directory goes
/// beside `--db`, on the same file system). The network run has
/// `--concurrency` workers, each with one request in flight at a time; a
/// `[threads=N]` override in `--benchmarks` sets the concurrency of that
/// benchmark. Node writes are always durable (acknowledged after the WAL
/// group commit), so `--sync` has no effect on the network run.
#[derive(Debug, Clone, Args, Serialize)]
pub struct NetArgs {
    #[command(flatten)]
    pub workload: EngineArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub node: NodeArgs,
    /// Requests in flight: client tasks, each waiting for its reply before
    /// sending its next request (closed loop).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Also run the embedded engine on the same workloads in this process,
    /// twice: as configured (`--sync`, `--threads`), and with sync writes and
    /// `--concurrency` tasks (the node's durability and parallelism); then
    /// print network ops/s over embedded ops/s per benchmark.
    #[arg(long = "compare-embedded", alias = "compare_embedded")]
    pub compare_embedded: bool,
}

impl NetArgs {
    /// Rejects flag values outside their limits before anything runs.
    pub fn validate(&self) -> Result<(), String> {
        self.workload.validate()?;
        if self.workload.engine != EngineChoice::Ferrisdb {
            return Err("--engine has no meaning in net mode".into());
        }
        if self.workload.use_existing_db {
            return Err("--use_existing_db is not supported in net mode".into());
        }
        if !(1..=CONCURRENCY_MAX).contains(&self.concurrency) {
            return Err(format!("--concurrency must be 1..={CONCURRENCY_MAX}"));
        }
        self.node.validate()
    }

    /// The embedded run's flags: these, or with sync writes and one task
    /// per in-flight request (`sync_like_node`).
    pub fn embedded(&self, sync_like_node: bool) -> EngineArgs {
        let mut args = self.workload.clone();
        if sync_like_node {
            args.sync = true;
            args.threads = self.concurrency;
        }
        args
    }

    /// The network run's plan flags: `--threads` is the concurrency.
    pub fn network_plan_args(&self) -> EngineArgs {
        EngineArgs {
            threads: self.concurrency,
            sync: true,
            ..self.workload.clone()
        }
    }
}

fn rocksdb_dir_beside(db: &Path) -> PathBuf {
    match db.file_name().and_then(|n| n.to_str()) {
        Some("ferrisdb") => db.with_file_name("rocksdb"),
        Some(name) => db.with_file_name(format!("{name}-rocksdb")),
        None => db.join("rocksdb"),
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::EngineArgs;
    use crate::{Cli, Command};
    use clap::Parser;

    /// `ferrisdb-bench engine <extra...>` parsed.
    pub fn args(extra: &[&str]) -> EngineArgs {
        let mut argv = vec!["ferrisdb-bench", "engine"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Engine(a) => a,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// `ferrisdb-bench net <extra...>` parsed.
    pub fn net_args(extra: &[&str]) -> super::NetArgs {
        let mut argv = vec!["ferrisdb-bench", "net"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Net(a) => a,
            other => panic!("parsed as {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::args as engine_args;
    use super::*;
    use crate::Cli;
    use clap::Parser;

    #[test]
    fn defaults_match_db_bench() {
        let a = engine_args(&[]);
        assert_eq!(a.num, 1_000_000);
        assert_eq!(a.reads(), 1_000_000);
        assert_eq!(a.key_size, 16);
        assert_eq!(a.value_size, 100);
        assert_eq!(a.batch_size, 1);
        assert_eq!(a.seek_nexts, 10);
        assert_eq!(a.threads, 1);
        assert!(!a.sync && !a.use_existing_db && a.histogram);
        assert_eq!(a.engine, EngineChoice::Ferrisdb);
        assert_eq!(a.db, PathBuf::from("./bench-data/ferrisdb"));
        assert_eq!(a.rocksdb_dir(), PathBuf::from("./bench-data/rocksdb"));
        assert_eq!(a.benchmarks.len(), 9);
        assert!(a.validate().is_ok());
    }

    #[test]
    fn underscore_flags_and_bool_forms() {
        let a = engine_args(&[
            "--num=5000",
            "--reads=70",
            "--key_size=20",
            "--value-size=64",
            "--sync",
            "--histogram=0",
            "--use_existing_db=true",
            "--cache_size=1048576",
            "--engine=both",
            "--db=/tmp/x/db",
        ]);
        assert_eq!(
            (a.num, a.reads(), a.key_size, a.value_size),
            (5000, 70, 20, 64)
        );
        assert!(a.sync && !a.histogram && a.use_existing_db);
        assert_eq!(a.cache_size, Some(1 << 20));
        assert_eq!(a.engine, EngineChoice::Both);
        assert_eq!(a.rocksdb_dir(), PathBuf::from("/tmp/x/db-rocksdb"));
    }

    #[test]
    fn benchmark_list_with_thread_overrides() {
        let a = engine_args(&["--benchmarks=fillseq,fillsync,fillsync[threads=32],readrandom4"]);
        let got: Vec<_> = a.benchmarks.iter().map(BenchSpec::label).collect();
        assert_eq!(
            got,
            [
                "fillseq",
                "fillsync",
                "fillsync[threads=32]",
                "readrandom[threads=4]"
            ]
        );
        assert_eq!(a.benchmarks[2].threads_or(1), 32);
        assert_eq!(a.benchmarks[1].threads_or(7), 7);
    }

    #[test]
    fn bad_benchmarks_are_rejected() {
        for bad in [
            "fillbogus",
            "fillsync[threads=0]",
            "fillsync[threads=99999]",
            "fillsync[thread=2]",
            "fillsync[threads=2",
            "fillsync0",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad} was accepted");
        }
        let argv = ["ferrisdb-bench", "engine", "--benchmarks=fillseq,nope"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn net_flags_need_one_target_and_one_security_mode() {
        use super::tests_support::net_args;
        let a = net_args(&["--spawn-node", "--num=300", "--concurrency=8"]);
        assert_eq!(
            a.node.spawn_node,
            Some(PathBuf::from(crate::target::SPAWN_NODE_BESIDE))
        );
        assert_eq!((a.concurrency, a.node.connections, a.node.cores), (8, 1, 2));
        assert_eq!(a.node.node_config, None);
        let configured = net_args(&["--spawn-node", "--node-config=n.toml"]);
        assert_eq!(configured.node.node_config, Some(PathBuf::from("n.toml")));
        assert!(configured.validate().is_ok());
        let stray = net_args(&[
            "--endpoint=127.0.0.1:1",
            "--insecure",
            "--node-config=n.toml",
        ]);
        assert!(stray.validate().is_err());
        assert!(a.validate().is_ok());
        let plan = a.network_plan_args();
        assert_eq!((plan.threads, plan.num), (8, 300));
        let sync = a.embedded(true);
        assert!(sync.sync && sync.threads == 8);
        assert!(!a.embedded(false).sync && a.embedded(false).threads == 1);
        let ok = net_args(&["--endpoint=127.0.0.1:7400", "--insecure"]);
        assert!(ok.validate().is_ok());
        for bad in [
            vec!["--endpoint=127.0.0.1:7400"],
            vec!["--endpoint=127.0.0.1:7400", "--insecure", "--cert=c.pem"],
            vec!["--endpoint=127.0.0.1:7400", "--ca-cert=ca.pem"],
            vec!["--endpoint=127.0.0.1:7400", "--spawn-node=x", "--insecure"],
            vec!["--spawn-node", "--concurrency=0"],
            vec!["--spawn-node", "--engine=rocksdb"],
            vec![],
        ] {
            assert!(net_args(&bad).validate().is_err(), "{bad:?} accepted");
        }
        let tls = net_args(&[
            "--endpoint=127.0.0.1:7400",
            "--ca-cert=ca.pem",
            "--cert=c.pem",
            "--key=c.key",
        ]);
        assert!(tls.validate().is_ok());
    }

    #[test]
    fn limits_are_checked() {
        assert!(
            engine_args(&["--num=100001", "--key_size=5"])
                .validate()
                .is_err()
        );
        assert!(
            engine_args(&["--num=100000", "--key_size=5"])
                .validate()
                .is_ok()
        );
        assert!(engine_args(&["--threads=0"]).validate().is_err());
        assert!(engine_args(&["--batch_size=0"]).validate().is_err());
        assert!(engine_args(&["--num=0"]).validate().is_err());
    }
}

//! One benchmark's result: the db_bench line, the histogram block, the extra
//! line (memory, disk, write amplification, p99), the engines' ratio table
//! and the JSON document.

use crate::flags::Benchmark;
use crate::meter::Meter;
use crate::probe::ProbeResult;
use crate::sysinfo::{self, DirBytes, Machine};
use crate::workload::Plan;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    #[serde(skip)]
    pub bench: Benchmark,
    pub name: &'static str,
    /// `name` plus a `[threads=N]` override if one was given.
    pub label: String,
    pub engine: &'static str,
    pub threads: usize,
    pub ops: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    /// db_bench's figure: the workers' summed running time per op.
    pub micros_per_op: f64,
    pub mb_per_s: f64,
    pub p50_micros: f64,
    pub p75_micros: f64,
    pub p99_micros: f64,
    pub p999_micros: f64,
    pub p9999_micros: f64,
    pub max_micros: f64,
    pub found: Option<u64>,
    pub not_found: Option<u64>,
    /// readwhilewriting: writes done by the writer while the readers ran.
    pub background_writes: Option<u64>,
    /// Bytes written to disk per user byte since the DB was opened.
    pub write_amp: f64,
    pub db_bytes: u64,
    pub db_allocated_bytes: u64,
    pub peak_rss_bytes: Option<u64>,
    pub engine_stats: serde_json::Value,
    /// Set for a run through `ferrisdb-client` against a node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetFacts>,
}

/// How a network result was produced (its "engine" is a node).
#[derive(Debug, Clone, Serialize)]
pub struct NetFacts {
    pub endpoint: String,
    /// Requests in flight (client tasks in a closed loop).
    pub concurrency: usize,
    pub connections: usize,
    pub lanes: usize,
    pub client_threads: usize,
    /// The client combined concurrent writes for one shard into batches.
    pub combine_writes: bool,
    /// Cores of the node when the bench started it, else unknown.
    pub node_cores: Option<usize>,
    /// Node writes are acknowledged after the WAL group commit (fdatasync).
    pub durable_writes: bool,
}

/// What an engine knows about itself after a run.
#[derive(Debug, Clone)]
pub struct EngineFacts {
    pub write_amp: f64,
    pub stats: serde_json::Value,
}

impl BenchResult {
    pub fn new(
        engine: &'static str,
        plan: &Plan,
        meter: &Meter,
        wall: Duration,
        db_dir: &Path,
        facts: EngineFacts,
    ) -> Self {
        let secs = wall.as_secs_f64().max(1e-9);
        let ops = meter.ops.max(1) as f64;
        let DirBytes {
            apparent,
            allocated,
        } = sysinfo::dir_bytes(db_dir);
        let hits = plan.spec.bench.counts_hits();
        BenchResult {
            bench: plan.spec.bench,
            name: plan.spec.bench.name(),
            label: plan.spec.label(),
            engine,
            threads: plan.threads,
            ops: meter.ops,
            seconds: secs,
            ops_per_sec: meter.ops as f64 / secs,
            micros_per_op: meter.busy.as_secs_f64() * 1e6 / ops,
            mb_per_s: meter.bytes as f64 / 1048576.0 / secs,
            p50_micros: meter.quantile_micros(0.5),
            p75_micros: meter.quantile_micros(0.75),
            p99_micros: meter.quantile_micros(0.99),
            p999_micros: meter.quantile_micros(0.999),
            p9999_micros: meter.quantile_micros(0.9999),
            max_micros: meter.max_micros(),
            found: hits.then_some(meter.found),
            not_found: hits.then(|| meter.ops - meter.found),
            background_writes: None,
            write_amp: facts.write_amp,
            db_bytes: apparent,
            db_allocated_bytes: allocated,
            peak_rss_bytes: sysinfo::peak_rss_bytes(),
            engine_stats: facts.stats,
            network: None,
        }
    }

    /// db_bench's result line: `name : x micros/op n ops/sec; r MB/s (msg)`.
    pub fn db_bench_line(&self) -> String {
        let mut extra = String::new();
        if self.mb_per_s > 0.0 {
            extra = format!("{:6.1} MB/s", self.mb_per_s);
        }
        if let Some(found) = self.found {
            if !extra.is_empty() {
                extra.push(' ');
            }
            extra.push_str(&format!("({found} of {} found)", self.ops));
        }
        format!(
            "{:<12} : {:11.3} micros/op {} ops/sec;{}{}",
            self.label,
            self.micros_per_op,
            self.ops_per_sec as u64,
            if extra.is_empty() { "" } else { " " },
            extra
        )
    }

    /// The figures db_bench does not print.
    pub fn extra_line(&self) -> String {
        let mb = |b: u64| b as f64 / 1048576.0;
        let rss = self
            .peak_rss_bytes
            .map_or("?".to_string(), |b| format!("{:.1} MB", mb(b)));
        if let Some(n) = &self.network {
            // The node's disk and memory are another process's: only the
            // client's own peak and the latency quantiles are ours to show.
            return format!(
                "  [{} {}] concurrency {} over {} connection(s) x {} lanes; client peak_rss {rss}; \
                 p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} micros",
                self.engine,
                n.endpoint,
                n.concurrency,
                n.connections,
                n.lanes,
                self.p50_micros,
                self.p99_micros,
                self.p999_micros,
                self.max_micros
            );
        }
        let mut s = format!(
            "  [{}] peak_rss {rss}; db {:.1} MB ({:.1} MB allocated); write-amp {:.2}; p99 {:.2} micros",
            self.engine,
            mb(self.db_bytes),
            mb(self.db_allocated_bytes),
            self.write_amp,
            self.p99_micros
        );
        if let Some(w) = self.background_writes {
            s.push_str(&format!("; {w} writes by the background writer"));
        }
        s
    }

    /// Prints the result as it finishes (plus the probe beside fillsync).
    pub fn print(&self, meter: &Meter, histogram: bool, probe: Option<&ProbeResult>) {
        println!("{}", self.db_bench_line());
        if histogram {
            print!("{}", meter.db_bench_block(self.bench.op_word()));
        }
        println!("{}", self.extra_line());
        if let (Benchmark::FillSync, Some(p)) = (self.bench, probe) {
            println!("{}", p.line());
        }
    }
}

/// FerrisDB against RocksDB for every benchmark both ran.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub label: String,
    pub ferrisdb_ops_per_sec: f64,
    pub rocksdb_ops_per_sec: f64,
    /// FerrisDB ops/sec over RocksDB ops/sec (> 1: FerrisDB is faster).
    pub throughput_ratio: f64,
    pub ferrisdb_p99_micros: f64,
    pub rocksdb_p99_micros: f64,
    pub ferrisdb_write_amp: f64,
    pub rocksdb_write_amp: f64,
    pub ferrisdb_db_bytes: u64,
    pub rocksdb_db_bytes: u64,
}

pub fn ratios(results: &[BenchResult]) -> Vec<Ratio> {
    let ferris = results.iter().filter(|r| r.engine == "ferrisdb");
    let rocks = results.iter().filter(|r| r.engine == "rocksdb");
    ferris
        .zip(rocks)
        .filter(|(f, r)| f.label == r.label)
        .map(|(f, r)| Ratio {
            label: f.label.clone(),
            ferrisdb_ops_per_sec: f.ops_per_sec,
            rocksdb_ops_per_sec: r.ops_per_sec,
            throughput_ratio: f.ops_per_sec / r.ops_per_sec.max(1e-9),
            ferrisdb_p99_micros: f.p99_micros,
            rocksdb_p99_micros: r.p99_micros,
            ferrisdb_write_amp: f.write_amp,
            rocksdb_write_amp: r.write_amp,
            ferrisdb_db_bytes: f.db_bytes,
            rocksdb_db_bytes: r.db_bytes,
        })
        .collect()
}

pub fn print_ratios(ratios: &[Ratio]) {
    println!("\nFerrisDB / RocksDB (ratio > 1: FerrisDB faster)");
    println!(
        "{:<22} {:>12} {:>12} {:>7} {:>21} {:>13} {:>15}",
        "benchmark",
        "ferris op/s",
        "rocks op/s",
        "ratio",
        "p99 micros f / r",
        "w-amp f / r",
        "db MB f / r"
    );
    for r in ratios {
        println!(
            "{:<22} {:>12.0} {:>12.0} {:>7.2} {:>10.1} / {:<8.1} {:>5.2} / {:<5.2} {:>6.1} / {:<6.1}",
            r.label,
            r.ferrisdb_ops_per_sec,
            r.rocksdb_ops_per_sec,
            r.throughput_ratio,
            r.ferrisdb_p99_micros,
            r.rocksdb_p99_micros,
            r.ferrisdb_write_amp,
            r.rocksdb_write_amp,
            r.ferrisdb_db_bytes as f64 / 1048576.0,
            r.rocksdb_db_bytes as f64 / 1048576.0
        );
    }
}

/// One result of `subject` against the same benchmark of `baseline`
/// (e.g. the network path against the embedded engine).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub label: String,
    pub subject: &'static str,
    pub baseline: &'static str,
    pub subject_ops_per_sec: f64,
    pub baseline_ops_per_sec: f64,
    /// Subject ops/sec over baseline ops/sec.
    pub throughput_ratio: f64,
    pub subject_p50_micros: f64,
    pub subject_p99_micros: f64,
    pub baseline_p50_micros: f64,
    pub baseline_p99_micros: f64,
}

/// Pairs every `subject` result with the first `baseline` result of the same
/// benchmark name (labels may differ by a `[threads=N]` override).
pub fn compare(results: &[BenchResult], subject: &str, baseline: &str) -> Vec<Comparison> {
    let mut used = vec![false; results.len()];
    let mut out = Vec::new();
    for s in results.iter().filter(|r| r.engine == subject) {
        let found = results
            .iter()
            .enumerate()
            .find(|(i, b)| !used[*i] && b.engine == baseline && b.name == s.name);
        let Some((i, b)) = found else { continue };
        used[i] = true;
        out.push(Comparison {
            label: s.label.clone(),
            subject: s.engine,
            baseline: b.engine,
            subject_ops_per_sec: s.ops_per_sec,
            baseline_ops_per_sec: b.ops_per_sec,
            throughput_ratio: s.ops_per_sec / b.ops_per_sec.max(1e-9),
            subject_p50_micros: s.p50_micros,
            subject_p99_micros: s.p99_micros,
            baseline_p50_micros: b.p50_micros,
            baseline_p99_micros: b.p99_micros,
        });
    }
    out
}

/// The comparison table, one block per baseline, with a title line each.
pub fn print_comparisons(blocks: &[(String, Vec<Comparison>)]) {
    for (title, rows) in blocks {
        println!("\n{title}");
        println!(
            "{:<22} {:>12} {:>12} {:>7} {:>21} {:>21}",
            "benchmark",
            "subject op/s",
            "base op/s",
            "ratio",
            "p50/p99 us subject",
            "p50/p99 us base"
        );
        for c in rows {
            println!(
                "{:<22} {:>12.0} {:>12.0} {:>7.2} {:>10.1} / {:<8.1} {:>10.1} / {:<8.1}",
                c.label,
                c.subject_ops_per_sec,
                c.baseline_ops_per_sec,
                c.throughput_ratio,
                c.subject_p50_micros,
                c.subject_p99_micros,
                c.baseline_p50_micros,
                c.baseline_p99_micros
            );
        }
    }
}

/// The JSON result file of `engine` (config = `EngineArgs`) and `net`
/// (config = `NetArgs`).
#[derive(Debug, Serialize)]
pub struct Document<'a, C: Serialize> {
    pub config: &'a C,
    pub machine: Machine,
    pub device_probe: Option<&'a ProbeResult>,
    pub results: &'a [BenchResult],
    pub ratios: Vec<Ratio>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
    /// `net`: the device probe before each durable series, in run order.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub device_probes: &'a [ProbeResult],
}

pub fn write_json<T: Serialize + ?Sized>(path: &Path, doc: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(doc).context("serialize results")?;
    std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(label: &str, ops: u64, found: Option<u64>, mb: f64) -> BenchResult {
        BenchResult {
            bench: Benchmark::ReadRandom,
            name: "readrandom",
            label: label.into(),
            engine: "ferrisdb",
            threads: 1,
            ops,
            seconds: 1.0,
            ops_per_sec: ops as f64,
            micros_per_op: 2.345,
            mb_per_s: mb,
            p50_micros: 1.0,
            p75_micros: 1.0,
            p99_micros: 1.0,
            p999_micros: 1.0,
            p9999_micros: 1.0,
            max_micros: 1.0,
            found,
            not_found: found.map(|f| ops - f),
            background_writes: None,
            write_amp: 1.0,
            db_bytes: 0,
            db_allocated_bytes: 0,
            peak_rss_bytes: None,
            engine_stats: serde_json::Value::Null,
            network: None,
        }
    }

    #[test]
    fn lines_have_db_bench_shape() {
        assert_eq!(
            result("fillrandom", 426439, None, 47.23).db_bench_line(),
            "fillrandom   :       2.345 micros/op 426439 ops/sec;   47.2 MB/s"
        );
        assert_eq!(
            result("readmissing", 2000, Some(0), 0.0).db_bench_line(),
            "readmissing  :       2.345 micros/op 2000 ops/sec; (0 of 2000 found)"
        );
        assert_eq!(
            result("readrandom", 2000, Some(2000), 1.0).db_bench_line(),
            "readrandom   :       2.345 micros/op 2000 ops/sec;    1.0 MB/s (2000 of 2000 found)"
        );
    }

    #[test]
    fn comparisons_pair_by_name_in_order() {
        let mut results = Vec::new();
        for (engine, ops) in [
            ("ferrisdb-net", 100),
            ("ferrisdb", 400),
            ("ferrisdb-sync", 50),
        ] {
            let mut r = result("readrandom", ops, Some(ops), 1.0);
            r.engine = engine;
            results.push(r);
        }
        results[0].label = "readrandom[threads=8]".into();
        let c = compare(&results, "ferrisdb-net", "ferrisdb");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].label, "readrandom[threads=8]");
        assert!((c[0].throughput_ratio - 0.25).abs() < 1e-9);
        let c = compare(&results, "ferrisdb-net", "ferrisdb-sync");
        assert!((c[0].throughput_ratio - 2.0).abs() < 1e-9);
        assert!(compare(&results, "ferrisdb-net", "rocksdb").is_empty());
    }
}

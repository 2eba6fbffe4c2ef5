//! The results of a `ycsb` invocation as data: what the JSON summary holds
//! (and `plot` reads back), built from the phases' measurements.

use super::measure::{Latency, OpStats, Recorder};
use super::runner::{PhaseOutcome, PhasePlan};
use super::store::Status;
use super::workload::Operation;
use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// `kind` of a YCSB result document.
pub const KIND: &str = "ferrisdb-bench ycsb";
/// Format version of the document; `plot` refuses other versions.
pub const FORMAT_VERSION: u32 = 1;
/// Percentile-spectrum steps per halving of the distance to 100%, as
/// HdrHistogram's percentile output uses by default.
pub const SPECTRUM_TICKS_PER_HALF: u32 = 5;

/// The whole document written by `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub kind: String,
    pub format_version: u32,
    /// A name for plots and comparisons (default: the workload files).
    pub label: String,
    pub command_line: String,
    pub workload_files: Vec<String>,
    /// The effective properties (files, then `-p`, then flags).
    pub properties: BTreeMap<String, String>,
    pub endpoint: String,
    /// Cores of the node when this process started it.
    pub node_cores: Option<usize>,
    pub client_threads: usize,
    pub connections: usize,
    pub lanes: usize,
    /// Whether the client combined concurrent writes (absent in reports
    /// written before the option existed).
    #[serde(default)]
    pub combine_writes: Option<bool>,
    pub machine: serde_json::Value,
    pub phases: Vec<PhaseReport>,
}

/// One phase's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseReport {
    pub phase: String,
    pub threads: usize,
    /// Open loop at this many operations per second; `None`: closed loop.
    pub target_ops_per_sec: Option<f64>,
    pub runtime_ms: f64,
    /// Operations completed (a read-modify-write counts once).
    pub operations: u64,
    pub throughput_ops_per_sec: f64,
    /// Operations that failed (any return but OK and NOT_FOUND).
    pub errors: u64,
    /// Why the phase ended early, if it did.
    pub stopped: Option<String>,
    pub interval_ms: u64,
    /// Every completed operation.
    pub overall: LatencyPair,
    /// Per operation type, in YCSB's order; only types that ran.
    pub operations_by_type: Vec<OpReport>,
    /// One point per interval.
    pub series: Vec<SeriesPoint>,
}

/// What completed in one interval of a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// End of the interval, seconds from the phase's start.
    pub t_secs: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub errors: u64,
    /// Response-time quantiles of the interval (none if nothing completed).
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub p99_service_us: Option<u64>,
    pub max_us: Option<u64>,
}

/// One operation type (`READ`, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpReport {
    pub name: String,
    /// Measurements of this type, whatever they returned.
    pub operations: u64,
    /// Count per YCSB return code (`OK`, `NOT_FOUND`, `ERROR`, ...).
    pub returns: BTreeMap<String, u64>,
    /// Failures by class (`TIMEOUT`, `SERVER_OVERLOADED`, `INTEGRITY`...).
    pub errors: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    /// Operations that returned OK.
    pub ok: LatencyPair,
    /// The others (YCSB's `<OP>-FAILED`), when there were any.
    pub failed: Option<LatencyPair>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyPair {
    /// From sending the request to its completion.
    pub service: LatencySummary,
    /// From the operation's due time to its completion (equal to the
    /// service time in a closed loop).
    pub response: LatencySummary,
}

/// A latency histogram summarized, in microseconds (all zero when empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub min_us: u64,
    pub max_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    /// (quantile, µs) pairs of the percentile spectrum, as HdrHistogram's
    /// percentile distribution lists them.
    pub spectrum: Vec<(f64, u64)>,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let q = |q| h.value_at_quantile(q);
        LatencySummary {
            count: h.len(),
            mean_us: h.mean(),
            min_us: h.min(),
            max_us: h.max(),
            p50_us: q(0.5),
            p90_us: q(0.9),
            p95_us: q(0.95),
            p99_us: q(0.99),
            p999_us: q(0.999),
            p9999_us: q(0.9999),
            spectrum: h
                .iter_quantiles(SPECTRUM_TICKS_PER_HALF)
                .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
                .collect(),
        }
    }
}

impl LatencyPair {
    pub fn of(l: &Latency) -> Self {
        LatencyPair {
            service: LatencySummary::of(&l.service),
            response: LatencySummary::of(&l.response),
        }
    }
}

impl OpReport {
    fn of(op: Operation, s: &OpStats) -> Self {
        OpReport {
            name: op.name().to_string(),
            operations: s.count(),
            returns: Status::ALL
                .iter()
                .zip(s.returns)
                .filter(|(_, n)| *n > 0)
                .map(|(st, n)| (st.name().to_string(), n))
                .collect(),
            errors: s.errors.clone(),
            first_error: s.first_error.clone(),
            ok: LatencyPair::of(&s.ok),
            failed: (!s.failed.service.is_empty()).then(|| LatencyPair::of(&s.failed)),
        }
    }
}

impl PhaseReport {
    pub fn new(plan: &PhasePlan, outcome: &PhaseOutcome) -> Self {
        let t: &Recorder = &outcome.totals;
        let secs = outcome.wall.as_secs_f64().max(1e-9);
        PhaseReport {
            phase: plan.phase.name().to_string(),
            threads: plan.threads,
            target_ops_per_sec: plan.target,
            runtime_ms: secs * 1000.0,
            operations: t.done,
            throughput_ops_per_sec: t.done as f64 / secs,
            errors: t.errors,
            stopped: outcome.stopped.clone(),
            interval_ms: plan.interval.as_millis() as u64,
            overall: LatencyPair::of(&t.overall),
            operations_by_type: Operation::ALL
                .iter()
                .filter(|op| t.ops[op.index()].count() > 0)
                .map(|op| OpReport::of(*op, &t.ops[op.index()]))
                .collect(),
            series: outcome.series.clone(),
        }
    }

    pub fn open_loop(&self) -> bool {
        self.target_ops_per_sec.is_some()
    }
}

impl Report {
    /// Reads a document written by `crate::report::write_json`.
    pub fn read_json(path: &Path) -> Result<Report> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        if value.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
            bail!(
                "{}: not a `ferrisdb-bench ycsb --json` result (no \"kind\": \"{KIND}\")",
                path.display()
            );
        }
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(FORMAT_VERSION)) {
            bail!(
                "{}: result format version {version:?}; this build reads version {FORMAT_VERSION}",
                path.display()
            );
        }
        serde_json::from_value(value)
            .with_context(|| format!("{}: malformed ycsb result", path.display()))
    }
}

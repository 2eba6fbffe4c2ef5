//! Metrics for a thread-per-core node, rendered in the Prometheus text
//! exposition format 0.0.4.
//!
//! One [`CoreMetrics`] per core, written only by that core's executor with
//! relaxed atomics (no locks, no shared cache lines between cores: each is
//! aligned to 128 bytes); the admin thread reads them all when scraped. A
//! scrape may see one core's counters a few updates apart from each other,
//! which Prometheus tolerates; a histogram's `_count` is always the sum of
//! the bucket counts it printed, as the format requires.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The operations a node serves, one label value each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Put,
    Delete,
    DeleteRange,
    Batch,
    Scan,
    ShardMap,
    Status,
}

impl Op {
    pub const ALL: [Op; OPS] = [
        Op::Get,
        Op::Put,
        Op::Delete,
        Op::DeleteRange,
        Op::Batch,
        Op::Scan,
        Op::ShardMap,
        Op::Status,
    ];

    /// The `op` label value.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
            Op::DeleteRange => "delete_range",
            Op::Batch => "batch",
            Op::Scan => "scan",
            Op::ShardMap => "shard_map",
            Op::Status => "status",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

pub const OPS: usize = 8;

/// Finite buckets of a latency histogram: bucket i counts durations of at
/// most 2^i microseconds (1 µs up to 2^25 µs ≈ 33.6 s); one more bucket
/// counts the rest (`le="+Inf"`).
pub const LATENCY_BUCKETS: usize = 26;

/// A latency histogram with log2 buckets in microseconds.
#[derive(Debug)]
pub struct Histogram {
    /// Per-bucket (not cumulative) counts; the last is the overflow bucket.
    counts: [AtomicU64; LATENCY_BUCKETS + 1],
    sum_us: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub counts: [u64; LATENCY_BUCKETS + 1],
    pub sum_us: u64,
}

impl HistogramSnapshot {
    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [const { AtomicU64::new(0) }; LATENCY_BUCKETS + 1],
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, latency: Duration) {
        self.record_us(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn record_us(&self, us: u64) {
        self.counts[bucket_of(us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_us: self.sum_us.load(Relaxed),
        }
    }
}

/// The smallest i with `us <= 2^i`, or the overflow bucket.
fn bucket_of(us: u64) -> usize {
    let i = if us <= 1 {
        0
    } else {
        64 - (us - 1).leading_zeros() as usize
    };
    i.min(LATENCY_BUCKETS)
}

/// Upper bound of finite bucket `i` in seconds, as Prometheus wants it.
fn bucket_le_seconds(i: usize) -> f64 {
    assert!(i < LATENCY_BUCKETS);
    micros_to_seconds(1u64 << i)
}

fn micros_to_seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// What one core reports. Every method is safe to call from any thread;
/// the design is that only the owning core writes.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CoreMetrics {
    errors: [AtomicU64; OPS],
    latency: [Histogram; OPS],
    fsync: Histogram,
    memtable_bytes: AtomicU64,
    l0_files: AtomicU64,
    compactions_running: AtomicU64,
    compaction_bytes_total: AtomicU64,
    live_requests: AtomicU64,
    open_connections: AtomicU64,
    /// f64 bits of the busy fraction in [0, 1].
    reactor_busy_ratio: AtomicU64,
}

impl CoreMetrics {
    /// One request of `op` answered after `latency`; `ok` is false when the
    /// reply was an error.
    pub fn record_request(&self, op: Op, latency: Duration, ok: bool) {
        if !ok {
            self.errors[op.index()].fetch_add(1, Relaxed);
        }
        self.latency[op.index()].record(latency);
    }

    /// One fsync (fdatasync) of this core's log or tables.
    pub fn record_fsync(&self, latency: Duration) {
        self.fsync.record(latency);
    }

    pub fn set_memtable_bytes(&self, bytes: u64) {
        self.memtable_bytes.store(bytes, Relaxed);
    }

    pub fn set_l0_files(&self, files: u64) {
        self.l0_files.store(files, Relaxed);
    }

    pub fn set_compactions_running(&self, running: u64) {
        self.compactions_running.store(running, Relaxed);
    }

    /// Bytes written by compactions since start (a counter: never lower it).
    pub fn set_compaction_bytes_total(&self, bytes: u64) {
        self.compaction_bytes_total.store(bytes, Relaxed);
    }

    pub fn set_live_requests(&self, requests: u64) {
        self.live_requests.store(requests, Relaxed);
    }

    pub fn set_open_connections(&self, connections: u64) {
        self.open_connections.store(connections, Relaxed);
    }

    /// Fraction of the last interval the core's executor was busy; clamped
    /// to [0, 1] (NaN counts as 0).
    pub fn set_reactor_busy_ratio(&self, ratio: f64) {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        self.reactor_busy_ratio.store(ratio.to_bits(), Relaxed);
    }

    /// Requests of `op` answered: the count of its latency histogram.
    pub fn requests(&self, op: Op) -> u64 {
        self.latency(op).count()
    }

    pub fn errors(&self, op: Op) -> u64 {
        self.errors[op.index()].load(Relaxed)
    }

    pub fn latency(&self, op: Op) -> HistogramSnapshot {
        self.latency[op.index()].snapshot()
    }

    pub fn fsync(&self) -> HistogramSnapshot {
        self.fsync.snapshot()
    }

    pub fn reactor_busy_ratio(&self) -> f64 {
        f64::from_bits(self.reactor_busy_ratio.load(Relaxed))
    }
}

/// The node's metrics: one [`CoreMetrics`] per core.
#[derive(Debug)]
pub struct Metrics {
    cores: Box<[CoreMetrics]>,
    started: Instant,
}

/// A gauge or counter read from every core.
struct PerCore {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    read: fn(&CoreMetrics) -> String,
}

const PER_CORE: [PerCore; 7] = [
    PerCore {
        name: "ferrisdb_memtable_bytes",
        kind: "gauge",
        help: "Bytes in the memtables of the core's shards.",
        read: |c| c.memtable_bytes.load(Relaxed).to_string(),
    },
    PerCore {
        name: "ferrisdb_l0_files",
        kind: "gauge",
        help: "Level-0 tables of the core's shards.",
        read: |c| c.l0_files.load(Relaxed).to_string(),
    },
    PerCore {
        name: "ferrisdb_compactions_running",
        kind: "gauge",
        help: "Compactions in progress on the core.",
        read: |c| c.compactions_running.load(Relaxed).to_string(),
    },
    PerCore {
        name: "ferrisdb_compaction_bytes_total",
        kind: "counter",
        help: "Bytes written by compactions on the core since start.",
        read: |c| c.compaction_bytes_total.load(Relaxed).to_string(),
    },
    PerCore {
        name: "ferrisdb_live_requests",
        kind: "gauge",
        help: "Requests received and not yet answered by the core.",
        read: |c| c.live_requests.load(Relaxed).to_string(),
    },
    PerCore {
        name: "ferrisdb_open_connections",
        kind: "gauge",
        help: "Client connections open on the core's endpoint.",
        read: |c| c.open_connections.load(Relaxed).to_string(),
    },
    PerCore {
        name: "ferrisdb_reactor_busy_ratio",
        kind: "gauge",
        help: "Fraction of recent time the core's executor was busy (0 to 1).",
        read: |c| c.reactor_busy_ratio().to_string(),
    },
];

impl Metrics {
    /// # Panics
    /// If `cores` is 0.
    pub fn new(cores: usize) -> Arc<Metrics> {
        assert!(cores > 0, "a node has at least one core");
        Arc::new(Metrics {
            cores: (0..cores).map(|_| CoreMetrics::default()).collect(),
            started: Instant::now(),
        })
    }

    #[cfg(test)]
    pub fn cores(&self) -> usize {
        self.cores.len()
    }

    /// The metrics core `core` writes.
    ///
    /// # Panics
    /// If `core >= self.cores()`.
    pub fn core(&self, core: usize) -> &CoreMetrics {
        &self.cores[core]
    }

    /// Every metric in the Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024 * self.cores.len());
        header(
            &mut out,
            "ferrisdb_build_info",
            "gauge",
            "Version of this binary (value 1).",
        );
        line(
            &mut out,
            "ferrisdb_build_info",
            &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
            "1",
        );
        header(
            &mut out,
            "ferrisdb_uptime_seconds",
            "gauge",
            "Seconds since the node's metrics were created.",
        );
        line(
            &mut out,
            "ferrisdb_uptime_seconds",
            "",
            &self.started.elapsed().as_secs_f64().to_string(),
        );

        let name = "ferrisdb_requests_total";
        header(
            &mut out,
            name,
            "counter",
            "Requests answered, by core and operation.",
        );
        self.each_op(|labels, c, op| line(&mut out, name, labels, &c.requests(op).to_string()));
        let name = "ferrisdb_request_errors_total";
        header(
            &mut out,
            name,
            "counter",
            "Requests answered with an error, by core and operation.",
        );
        self.each_op(|labels, c, op| line(&mut out, name, labels, &c.errors(op).to_string()));
        let name = "ferrisdb_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Time from a request's arrival to its reply.",
        );
        self.each_op(|labels, c, op| histogram(&mut out, name, labels, &c.latency(op)));

        let name = "ferrisdb_fsync_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Duration of each fsync of the core's files.",
        );
        for (i, c) in self.cores.iter().enumerate() {
            histogram(&mut out, name, &format!("core=\"{i}\""), &c.fsync());
        }
        for metric in &PER_CORE {
            header(&mut out, metric.name, metric.kind, metric.help);
            for (i, c) in self.cores.iter().enumerate() {
                line(
                    &mut out,
                    metric.name,
                    &format!("core=\"{i}\""),
                    &(metric.read)(c),
                );
            }
        }
        out
    }

    fn each_op(&self, mut f: impl FnMut(&str, &CoreMetrics, Op)) {
        for (i, c) in self.cores.iter().enumerate() {
            for op in Op::ALL {
                f(&format!("core=\"{i}\",op=\"{}\"", op.name()), c, op);
            }
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &str, value: &str) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Cumulative `_bucket` lines, then `_sum` (seconds) and `_count`.
fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    let mut cumulative = 0;
    for (i, count) in h.counts.iter().enumerate() {
        cumulative += count;
        let le = if i < LATENCY_BUCKETS {
            bucket_le_seconds(i).to_string()
        } else {
            "+Inf".to_string()
        };
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(
        out,
        "{name}_sum{{{labels}}} {}",
        micros_to_seconds(h.sum_us)
    );
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log2_microseconds() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(4), 2);
        assert_eq!(bucket_of(5), 3);
        assert_eq!(bucket_of(1 << 25), 25);
        assert_eq!(bucket_of((1 << 25) + 1), LATENCY_BUCKETS, "overflow bucket");
        assert_eq!(bucket_of(u64::MAX), LATENCY_BUCKETS);
        assert_eq!(bucket_le_seconds(0).to_string(), "0.000001");
        assert_eq!(bucket_le_seconds(25).to_string(), "33.554432");
    }

    fn value(text: &str, series: &str) -> String {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
            .to_string()
    }

    #[test]
    fn render_shows_counters_histograms_and_gauges_per_core() {
        let m = Metrics::new(2);
        let c1 = m.core(1);
        c1.record_request(Op::Get, Duration::from_micros(3), true);
        c1.record_request(Op::Get, Duration::from_micros(100), false);
        c1.record_request(Op::Get, Duration::from_secs(100), true);
        m.core(0).record_fsync(Duration::from_micros(250));
        m.core(0).set_memtable_bytes(4096);
        c1.set_reactor_busy_ratio(0.25);
        c1.set_compaction_bytes_total(77);
        m.core(0).set_reactor_busy_ratio(f64::NAN);
        m.core(0).set_l0_files(3);
        m.core(0).set_compactions_running(1);
        c1.set_live_requests(5);
        c1.set_open_connections(2);
        assert_eq!(m.cores(), 2);
        let text = m.render();

        assert_eq!(
            value(&text, r#"ferrisdb_requests_total{core="1",op="get"}"#),
            "3"
        );
        assert_eq!(
            value(&text, r#"ferrisdb_requests_total{core="0",op="get"}"#),
            "0"
        );
        assert_eq!(
            value(&text, r#"ferrisdb_request_errors_total{core="1",op="get"}"#),
            "1"
        );
        let h = r#"ferrisdb_request_duration_seconds_bucket{core="1",op="get",le="#;
        assert_eq!(value(&text, &format!("{h}\"0.000002\"}}")), "0");
        assert_eq!(value(&text, &format!("{h}\"0.000004\"}}")), "1");
        assert_eq!(value(&text, &format!("{h}\"0.000128\"}}")), "2");
        assert_eq!(value(&text, &format!("{h}\"33.554432\"}}")), "2");
        assert_eq!(value(&text, &format!("{h}\"+Inf\"}}")), "3");
        assert_eq!(
            value(
                &text,
                r#"ferrisdb_request_duration_seconds_count{core="1",op="get"}"#
            ),
            "3"
        );
        assert_eq!(
            value(
                &text,
                r#"ferrisdb_request_duration_seconds_sum{core="1",op="get"}"#
            ),
            "100.000103"
        );
        assert_eq!(
            value(&text, r#"ferrisdb_fsync_duration_seconds_count{core="0"}"#),
            "1"
        );
        assert_eq!(
            value(
                &text,
                r#"ferrisdb_fsync_duration_seconds_bucket{core="0",le="0.000256"}"#
            ),
            "1"
        );
        assert_eq!(value(&text, r#"ferrisdb_memtable_bytes{core="0"}"#), "4096");
        assert_eq!(
            value(&text, r#"ferrisdb_reactor_busy_ratio{core="1"}"#),
            "0.25"
        );
        assert_eq!(
            value(&text, r#"ferrisdb_reactor_busy_ratio{core="0"}"#),
            "0"
        );
        assert_eq!(
            value(&text, r#"ferrisdb_compaction_bytes_total{core="1"}"#),
            "77"
        );
        assert_eq!(value(&text, r#"ferrisdb_l0_files{core="0"}"#), "3");
        assert_eq!(
            value(&text, r#"ferrisdb_compactions_running{core="0"}"#),
            "1"
        );
        assert_eq!(value(&text, r#"ferrisdb_live_requests{core="1"}"#), "5");
        assert_eq!(value(&text, r#"ferrisdb_open_connections{core="1"}"#), "2");
        assert_eq!(value(&text, r#"ferrisdb_open_connections{core="0"}"#), "0");
        for op in Op::ALL {
            assert!(text.contains(&format!("op=\"{}\"", op.name())));
        }
    }

    #[test]
    fn every_family_has_help_and_type_once_before_its_samples() {
        let text = Metrics::new(3).render();
        let mut typed = std::collections::HashMap::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("name and kind");
                assert!(
                    typed.insert(name.to_string(), kind.to_string()).is_none(),
                    "{name} twice"
                );
            } else if !l.starts_with("# HELP ") {
                let series = l.split([' ', '{']).next().expect("name");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        series
                            .strip_suffix(s)
                            .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                    })
                    .unwrap_or(series);
                assert!(typed.contains_key(family), "{l} before its TYPE");
                let value = l.rsplit(' ').next().expect("value");
                assert!(value.parse::<f64>().is_ok(), "{l}");
            }
        }
        assert_eq!(typed["ferrisdb_request_duration_seconds"], "histogram");
        assert_eq!(typed["ferrisdb_requests_total"], "counter");
    }

    #[test]
    fn cores_write_concurrently_without_losing_counts() {
        let m = Metrics::new(2);
        std::thread::scope(|s| {
            for core in 0..2 {
                let m = &m;
                s.spawn(move || {
                    for i in 0..10_000 {
                        m.core(core)
                            .record_request(Op::Put, Duration::from_micros(i), true);
                    }
                });
            }
        });
        for core in 0..2 {
            assert_eq!(m.core(core).requests(Op::Put), 10_000);
            assert_eq!(m.core(core).latency(Op::Put).count(), 10_000);
        }
    }
}

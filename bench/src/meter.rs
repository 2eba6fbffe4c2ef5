//! Per-worker counters and a latency histogram shared by the workers of a
//! run, merged after it, and the db_bench-format histogram block.

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Largest latency the histogram holds; longer samples are clamped to it.
const LATENCY_NS_MAX: u64 = 3_600_000_000_000;

#[derive(Debug)]
pub struct Meter {
    /// One sample per operation (per batch for batched writes), nanoseconds;
    /// shared with the meter's siblings ([`Meter::sibling`]).
    hist: Arc<Mutex<Histogram<u64>>>,
    /// Entries done (keys written, reads, seeks, entries scanned).
    pub ops: u64,
    /// Key and value bytes moved (db_bench counts found entries only for reads).
    pub bytes: u64,
    pub found: u64,
    /// Sum of the workers' running times (db_bench's `seconds_`).
    pub busy: Duration,
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

impl Meter {
    pub fn new() -> Self {
        Meter {
            hist: Arc::new(Mutex::new(
                Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3)
                    .expect("constant histogram bounds are valid"),
            )),
            ops: 0,
            bytes: 0,
            found: 0,
            busy: Duration::ZERO,
        }
    }

    /// A meter with counters of its own that records latencies into this
    /// meter's histogram. The workers of a run share one histogram (about
    /// 256 KiB at 3 significant digits up to an hour): one that stays in
    /// cache, instead of one per worker to allocate, zero and miss on (at
    /// a thousand workers 256 MiB of the client's memory, and about a fifth
    /// of the network fill's rate: docs/performance.md).
    pub fn sibling(&self) -> Meter {
        Meter {
            hist: self.hist.clone(),
            ops: 0,
            bytes: 0,
            found: 0,
            busy: Duration::ZERO,
        }
    }

    fn hist(&self) -> MutexGuard<'_, Histogram<u64>> {
        // A worker that panicked mid-record leaves a usable histogram.
        self.hist.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one operation that started at `start` and covered `entries`.
    pub fn finish_op(&mut self, start: Instant, entries: u64, bytes: u64) {
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(LATENCY_NS_MAX);
        self.hist().saturating_record(ns.clamp(1, LATENCY_NS_MAX));
        self.ops += entries;
        self.bytes += bytes;
    }

    /// Adds `other`'s counters, and its samples unless it is a sibling
    /// (whose samples are already in the shared histogram).
    pub fn merge(&mut self, other: &Meter) {
        if !Arc::ptr_eq(&self.hist, &other.hist) {
            let samples = other.hist().clone();
            self.hist()
                .add(&samples)
                .expect("histograms with equal bounds merge");
        }
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.found += other.found;
        self.busy += other.busy;
    }

    #[cfg(test)]
    pub fn samples(&self) -> u64 {
        self.hist().len()
    }

    /// Latency at quantile `q` (0..=1) in microseconds.
    pub fn quantile_micros(&self, q: f64) -> f64 {
        self.hist().value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_micros(&self) -> f64 {
        self.hist().max() as f64 / 1000.0
    }

    /// db_bench's histogram block (HistogramImpl::ToString without the bar
    /// chart), in microseconds.
    pub fn db_bench_block(&self, op_word: &str) -> String {
        let h = self.hist().clone();
        let n = h.len();
        let us = |ns: f64| ns / 1000.0;
        let (min, max) = if n == 0 { (0, 0) } else { (h.min(), h.max()) };
        let mut s = String::new();
        let _ = writeln!(s, "Microseconds per {op_word}:");
        let _ = writeln!(
            s,
            "Count: {n} Average: {:.4}  StdDev: {:.2}",
            us(h.mean()),
            us(h.stdev())
        );
        let _ = writeln!(
            s,
            "Min: {}  Median: {:.4}  Max: {}",
            (min as f64 / 1000.0).round() as u64,
            self.quantile_micros(0.5),
            (max as f64 / 1000.0).round() as u64
        );
        let _ = writeln!(
            s,
            "Percentiles: P50: {:.2} P75: {:.2} P99: {:.2} P99.9: {:.2} P99.99: {:.2}",
            self.quantile_micros(0.5),
            self.quantile_micros(0.75),
            self.quantile_micros(0.99),
            self.quantile_micros(0.999),
            self.quantile_micros(0.9999)
        );
        s.push_str("------------------------------------------------------\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_samples() {
        let mut a = Meter::new();
        let mut b = Meter::new();
        a.finish_op(Instant::now(), 1, 10);
        b.finish_op(Instant::now(), 4, 20);
        b.found = 3;
        a.merge(&b);
        assert_eq!((a.ops, a.bytes, a.found, a.samples()), (5, 30, 3, 2));
        let block = a.db_bench_block("write");
        assert!(block.starts_with("Microseconds per write:\nCount: 2 Average: "));
        assert!(block.contains("Percentiles: P50: "));
    }

    #[test]
    fn siblings_share_samples_and_keep_their_own_counters() {
        let mut total = Meter::new();
        let mut a = total.sibling();
        let mut b = total.sibling();
        a.finish_op(Instant::now(), 1, 10);
        b.finish_op(Instant::now(), 2, 20);
        b.finish_op(Instant::now(), 2, 20);
        assert_eq!((a.ops, b.ops, total.samples()), (1, 4, 3));
        total.merge(&a);
        total.merge(&b);
        assert_eq!((total.ops, total.bytes, total.samples()), (5, 50, 3));
        // A meter of another run is merged with its samples.
        let mut other = Meter::new();
        other.finish_op(Instant::now(), 1, 1);
        total.merge(&other);
        assert_eq!((total.ops, total.samples()), (6, 4));
    }
}

//! Per-worker counters and latency histogram, merged after a run, and the
//! db_bench-format histogram block.

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Largest latency the histogram holds; longer samples are clamped to it.
const LATENCY_NS_MAX: u64 = 3_600_000_000_000;

#[derive(Debug, Clone)]
pub struct Meter {
    /// One sample per operation (per batch for batched writes), nanoseconds.
    hist: Histogram<u64>,
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
            hist: Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3)
                .expect("constant histogram bounds are valid"),
            ops: 0,
            bytes: 0,
            found: 0,
            busy: Duration::ZERO,
        }
    }

    /// Records one operation that started at `start` and covered `entries`.
    pub fn finish_op(&mut self, start: Instant, entries: u64, bytes: u64) {
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(LATENCY_NS_MAX);
        self.hist.saturating_record(ns.clamp(1, LATENCY_NS_MAX));
        self.ops += entries;
        self.bytes += bytes;
    }

    pub fn merge(&mut self, other: &Meter) {
        self.hist
            .add(&other.hist)
            .expect("histograms with equal bounds merge");
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.found += other.found;
        self.busy += other.busy;
    }

    #[cfg(test)]
    pub fn samples(&self) -> u64 {
        self.hist.len()
    }

    /// Latency at quantile `q` (0..=1) in microseconds.
    pub fn quantile_micros(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_micros(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }

    /// db_bench's histogram block (HistogramImpl::ToString without the bar
    /// chart), in microseconds.
    pub fn db_bench_block(&self, op_word: &str) -> String {
        let h = &self.hist;
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
}

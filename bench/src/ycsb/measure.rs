//! What a phase measures, per operation, the way YCSB's measurements do
//! with `measurement.interval=both`: the **service time** (from the moment
//! the request was sent to its completion) and the **response time** (from
//! the moment the operation was due, its intended start, to its
//! completion). In a closed loop the two are equal; in an open loop
//! (`--target`) a stall makes every operation due meanwhile wait, and the
//! response time shows it (no coordinated omission). Successful operations
//! go to `[READ]`, failed ones to `[READ-FAILED]`; return codes are counted
//! per operation. Every worker shard has a `Recorder`, merged at the end;
//! the sampler takes each recorder's `Interval` once per interval for the
//! time series.

use super::store::{Failure, Status};
use super::workload::Operation;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Significant figures of every histogram (YCSB's default).
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// An empty, auto-resizing histogram of microseconds.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(HISTOGRAM_SIGFIG).expect("3 significant figures are valid")
}

/// `d` in whole microseconds, at least 1 (the histograms' lowest value).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Records `us` in an auto-resizing histogram. (`saturating_record` would
/// clamp to the current top instead of growing the histogram.)
pub fn record(h: &mut Histogram<u64>, us: u64) {
    if h.record(us).is_err() {
        // Only a value beyond what any histogram can hold gets here.
        h.saturating_record(us);
    }
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from)
        .expect("auto-resizing histograms always merge");
}

/// Service and response times of one kind of outcome.
#[derive(Debug, Clone)]
pub struct Latency {
    pub service: Histogram<u64>,
    pub response: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            service: histogram(),
            response: histogram(),
        }
    }
}

impl Latency {
    fn record(&mut self, service_us: u64, response_us: u64) {
        record(&mut self.service, service_us);
        record(&mut self.response, response_us.max(service_us));
    }

    fn merge(&mut self, other: &Latency) {
        add(&mut self.service, &other.service);
        add(&mut self.response, &other.response);
    }
}

/// Everything measured about one operation type.
#[derive(Debug, Clone, Default)]
pub struct OpStats {
    /// Operations that returned OK.
    pub ok: Latency,
    /// Operations that returned anything else (YCSB's `<OP>-FAILED`).
    pub failed: Latency,
    /// Count per [`Status`], in `Status::ALL` order.
    pub returns: [u64; Status::ALL.len()],
    /// Failures by class (`TIMEOUT`, `SERVER_OVERLOADED`, `INTEGRITY`...).
    pub errors: BTreeMap<String, u64>,
    /// The first failure's message, to show what went wrong.
    pub first_error: Option<String>,
}

impl OpStats {
    pub fn count(&self) -> u64 {
        self.returns.iter().sum()
    }

    fn merge(&mut self, other: &OpStats) {
        self.ok.merge(&other.ok);
        self.failed.merge(&other.failed);
        for (a, b) in self.returns.iter_mut().zip(other.returns) {
            *a += b;
        }
        for (class, n) in &other.errors {
            *self.errors.entry(class.clone()).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

/// What completed in one interval, over all operation types.
#[derive(Debug, Clone)]
pub struct Interval {
    pub ops: u64,
    pub errors: u64,
    pub service: Histogram<u64>,
    pub response: Histogram<u64>,
}

impl Default for Interval {
    fn default() -> Self {
        Interval {
            ops: 0,
            errors: 0,
            service: histogram(),
            response: histogram(),
        }
    }
}

impl Interval {
    pub fn merge(&mut self, other: &Interval) {
        self.ops += other.ops;
        self.errors += other.errors;
        add(&mut self.service, &other.service);
        add(&mut self.response, &other.response);
    }
}

/// One worker shard's measurements.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Per operation, in `Operation::ALL` order. A read-modify-write also
    /// records its read and its update here, as YCSB does.
    pub ops: [OpStats; Operation::ALL.len()],
    /// Every operation that completed (a read-modify-write counts once),
    /// for `[OVERALL]`.
    pub overall: Latency,
    pub done: u64,
    pub errors: u64,
    interval: Interval,
}

impl Recorder {
    /// Records one measurement of `op` (a whole operation, or the read or
    /// update inside a read-modify-write).
    pub fn record(
        &mut self,
        op: Operation,
        outcome: &Result<Status, Failure>,
        service: Duration,
        response: Duration,
    ) {
        let stats = &mut self.ops[op.index()];
        let status = match outcome {
            Ok(status) => *status,
            Err(f) => {
                *stats.errors.entry(f.class.clone()).or_default() += 1;
                if stats.first_error.is_none() {
                    stats.first_error = Some(format!("{}: {}", f.class, f.message));
                }
                f.status
            }
        };
        stats.returns[status.index()] += 1;
        let latency = if status == Status::Ok {
            &mut stats.ok
        } else {
            &mut stats.failed
        };
        latency.record(micros(service), micros(response));
    }

    /// Counts a completed top-level operation in the totals and the
    /// current interval (after `record` of its own measurement).
    pub fn finish(&mut self, status: Status, service: Duration, response: Duration) {
        let (s, r) = (micros(service), micros(response));
        self.overall.record(s, r);
        self.done += 1;
        self.interval.ops += 1;
        record(&mut self.interval.service, s);
        record(&mut self.interval.response, r.max(s));
        if status.is_error() {
            self.errors += 1;
            self.interval.errors += 1;
        }
    }

    /// The interval since the last call, leaving an empty one.
    pub fn take_interval(&mut self) -> Interval {
        std::mem::take(&mut self.interval)
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            a.merge(b);
        }
        self.overall.merge(&other.overall);
        self.done += other.done;
        self.errors += other.errors;
        self.interval.merge(&other.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_go_to_ok_or_failed_and_count_returns() {
        let mut r = Recorder::default();
        let ms = Duration::from_millis;
        r.record(Operation::Read, &Ok(Status::Ok), ms(1), ms(5));
        r.record(Operation::Read, &Ok(Status::NotFound), ms(2), ms(2));
        let timeout = Failure::new(Status::Error, "TIMEOUT", "request timed out");
        r.record(Operation::Read, &Err(timeout), ms(30), ms(30));
        r.finish(Status::Error, ms(30), ms(31));
        let read = &r.ops[Operation::Read.index()];
        assert_eq!(read.count(), 3);
        for status in [Status::Ok, Status::NotFound, Status::Error] {
            assert_eq!(read.returns[status.index()], 1, "{status:?}");
        }
        assert_eq!((read.ok.service.len(), read.failed.service.len()), (1, 2));
        assert!(read.ok.response.max() >= 5000 && read.ok.service.max() < 1100);
        assert_eq!(read.errors.get("TIMEOUT"), Some(&1));
        assert_eq!(
            read.first_error.as_deref(),
            Some("TIMEOUT: request timed out")
        );
        assert_eq!((r.done, r.errors), (1, 1));

        let mut total = Recorder::default();
        total.merge(&r);
        total.merge(&r);
        assert_eq!(total.ops[0].count(), 6);
        assert_eq!(total.ops[0].errors.get("TIMEOUT"), Some(&2));
        let interval = total.take_interval();
        assert_eq!((interval.ops, interval.errors), (2, 2));
        assert_eq!(total.take_interval().ops, 0);
    }

    #[test]
    fn response_time_is_never_below_service_time() {
        let mut r = Recorder::default();
        r.record(
            Operation::Update,
            &Ok(Status::Ok),
            Duration::from_micros(900),
            Duration::ZERO,
        );
        let update = &r.ops[Operation::Update.index()];
        assert!(update.ok.response.min() >= update.ok.service.min());
        assert_eq!(micros(Duration::ZERO), 1);
        let mut h = histogram();
        record(&mut h, 3_600_000_000);
        assert!(
            h.max() >= 3_600_000_000,
            "the histogram grows instead of clamping"
        );
    }
}

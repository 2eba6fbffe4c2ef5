//! One phase (load or run): `threads` worker tasks take operation numbers
//! from one shared counter until the phase's count, time limit or error
//! budget is used up.
//!
//! **Closed loop** (no target): each worker sends its next operation as
//! soon as the previous one completes, so the node's speed sets the rate.
//! **Open loop** (`--target OPS`): operation number `k` is due at
//! `start + k / OPS`, whichever worker takes it; a worker sleeps until the
//! operation is due and sends it then, or at once if it is already late.
//! The response time is measured from the due time, so when the node
//! stalls or cannot keep up, the operations that queue up behind it show
//! the wait (see `measure`). Timers have a resolution of about a
//! millisecond, so response times include up to ~1 ms of scheduling
//! lateness even below capacity.

use super::generator::AckCounter;
use super::measure::{Interval, Recorder};
use super::progress::{Progress, Snapshot};
use super::record::{self, KeyNamer};
use super::report::SeriesPoint;
use super::store::{Failure, Status, Store};
use super::workload::{CoreWorkload, KeyChooser, LengthChooser, Operation};
use crate::workload::{Rng, ValueGen};
use anyhow::{Result, anyhow};
use clap::ValueEnum;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

/// A YCSB phase; also the `ycsb load|run` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Insert the records (`recordcount`, or `insertstart`/`insertcount`).
    Load,
    /// Run the operation mix (`operationcount` operations) on loaded records.
    Run,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Load => "load",
            Phase::Run => "run",
        }
    }
}

/// How one phase runs.
#[derive(Debug, Clone)]
pub struct PhasePlan {
    pub phase: Phase,
    pub threads: usize,
    /// Operations per second (open loop); `None`: closed loop.
    pub target: Option<f64>,
    pub max_time: Option<Duration>,
    /// The phase stops once this many operations failed.
    pub max_errors: u64,
    /// Length of one time-series interval.
    pub interval: Duration,
    /// Recorders the workers share (worker `w` uses `w % shards`): one per
    /// client thread keeps lock contention away without a histogram set
    /// per worker.
    pub recorder_shards: usize,
    pub seed: u64,
    /// Stop the phase cleanly on Ctrl-C (results are still printed).
    pub handle_interrupt: bool,
}

/// What a phase measured.
#[derive(Debug)]
pub struct PhaseOutcome {
    pub totals: Recorder,
    pub wall: Duration,
    pub series: Vec<SeriesPoint>,
    /// Why the phase ended before its operation count, if it did
    /// (reaching `maxexecutiontime` is a normal end and is not set here).
    pub stopped: Option<String>,
}

/// The operations of a phase: how many, and when each is due.
struct Shared {
    workload: Arc<CoreWorkload>,
    namer: KeyNamer,
    phase: Phase,
    ops: u64,
    next_op: AtomicU64,
    /// Run-phase inserts; keys below `recordcount` count as inserted.
    acked: AckCounter,
    /// Open loop: (start, nanoseconds between due times).
    schedule: Option<(Instant, f64)>,
    deadline: Option<Instant>,
    stop: AtomicBool,
    stop_reason: Mutex<Option<String>>,
    errors: AtomicU64,
    max_errors: u64,
}

impl Shared {
    fn halt(&self, reason: String) {
        let mut slot = self.stop_reason.lock().expect("stop reason lock");
        slot.get_or_insert(reason);
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs one phase against `stores` (worker `w` uses `stores[w % len]`),
/// updating `progress` once per interval.
pub async fn run_phase<S: Store>(
    workload: Arc<CoreWorkload>,
    namer: KeyNamer,
    plan: &PhasePlan,
    stores: &[S],
    progress: &mut Progress,
) -> Result<PhaseOutcome> {
    assert!(!stores.is_empty() && plan.threads >= 1 && plan.recorder_shards >= 1);
    let ops = match plan.phase {
        Phase::Load => workload.insert_count,
        Phase::Run if workload.operation_count == 0 => u64::MAX,
        Phase::Run => workload.operation_count,
    };
    let start = Instant::now();
    let shared = Arc::new(Shared {
        workload: workload.clone(),
        namer,
        phase: plan.phase,
        ops,
        next_op: AtomicU64::new(0),
        acked: AckCounter::new(workload.record_count),
        schedule: plan.target.map(|t| (start, 1e9 / t)),
        deadline: plan.max_time.map(|d| start + d),
        stop: AtomicBool::new(false),
        stop_reason: Mutex::new(None),
        errors: AtomicU64::new(0),
        max_errors: plan.max_errors,
    });
    let recorders: Vec<_> = (0..plan.recorder_shards)
        .map(|_| Arc::new(Mutex::new(Recorder::default())))
        .collect();
    // Built once: a latest chooser sums zeta over every record here.
    let keys = workload.key_chooser();
    let values = ValueGen::new(1.0, workload.field_lengths.max as usize, plan.seed);
    let mut tasks = JoinSet::new();
    for w in 0..plan.threads {
        let worker = Worker {
            shared: shared.clone(),
            store: stores[w % stores.len()].clone(),
            recorder: recorders[w % recorders.len()].clone(),
            rng: Rng::for_stream(plan.seed, plan.phase as usize, w),
            keys: keys.clone(),
            field_lengths: workload.field_lengths.chooser(),
            scan_lengths: workload.scan_lengths.chooser(),
            values: values.fork(w),
            key: Vec::new(),
            value: Vec::new(),
            field: Vec::new(),
        };
        tasks.spawn(worker.run());
    }

    let total = (ops != u64::MAX).then_some(ops);
    let mut ticker = tokio::time::interval_at(start + plan.interval, plan.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let interrupt = async {
        if plan.handle_interrupt && tokio::signal::ctrl_c().await.is_ok() {
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::pin!(interrupt);
    let mut interrupted = false;
    let mut sampler = Sampler {
        start,
        last: start,
        done: 0,
        errors: 0,
        series: Vec::new(),
    };
    let mut panicked = None;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    shared.halt("a worker task failed".into());
                    panicked.get_or_insert(e);
                }
            },
            now = ticker.tick() => {
                let point = sampler.sample(&recorders, now);
                progress.update(&sampler.snapshot(now, total, plan.max_time, &point));
            }
            () = &mut interrupt, if !interrupted => {
                interrupted = true;
                shared.halt("interrupted (Ctrl-C)".into());
            }
        }
    }
    let end = Instant::now();
    if end > sampler.last {
        let point = sampler.sample(&recorders, end);
        progress.update(&sampler.snapshot(end, total, plan.max_time, &point));
    }
    progress.finish();
    if let Some(e) = panicked {
        return Err(anyhow!("a {} worker task failed: {e}", plan.phase.name()));
    }
    let mut totals = Recorder::default();
    for r in &recorders {
        totals.merge(&r.lock().expect("recorder lock"));
    }
    let stopped = shared.stop_reason.lock().expect("stop reason lock").clone();
    Ok(PhaseOutcome {
        totals,
        wall: end.saturating_duration_since(start),
        series: sampler.series,
        stopped,
    })
}

/// Turns the recorders' intervals into the time series.
struct Sampler {
    start: Instant,
    last: Instant,
    done: u64,
    errors: u64,
    series: Vec<SeriesPoint>,
}

impl Sampler {
    fn sample(&mut self, recorders: &[Arc<Mutex<Recorder>>], now: Instant) -> SeriesPoint {
        let mut interval = Interval::default();
        for r in recorders {
            interval.merge(&r.lock().expect("recorder lock").take_interval());
        }
        let span = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.done += interval.ops;
        self.errors += interval.errors;
        let quantile =
            |h: &hdrhistogram::Histogram<u64>, q| (!h.is_empty()).then(|| h.value_at_quantile(q));
        let point = SeriesPoint {
            t_secs: now.saturating_duration_since(self.start).as_secs_f64(),
            ops: interval.ops,
            ops_per_sec: if span > 0.0 {
                interval.ops as f64 / span
            } else {
                0.0
            },
            errors: interval.errors,
            p50_us: quantile(&interval.response, 0.5),
            p99_us: quantile(&interval.response, 0.99),
            p99_service_us: quantile(&interval.service, 0.99),
            max_us: quantile(&interval.response, 1.0),
        };
        self.series.push(point.clone());
        point
    }

    fn snapshot(
        &self,
        now: Instant,
        total: Option<u64>,
        max_time: Option<Duration>,
        point: &SeriesPoint,
    ) -> Snapshot {
        let elapsed = now.saturating_duration_since(self.start);
        let average = self.done as f64 / elapsed.as_secs_f64().max(1e-9);
        let by_count = total
            .filter(|_| average > 0.0)
            .map(|t| Duration::from_secs_f64(t.saturating_sub(self.done) as f64 / average));
        let by_time = max_time.map(|m| m.saturating_sub(elapsed));
        let eta = match (by_count, by_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Snapshot {
            elapsed,
            done: self.done,
            total,
            ops_per_sec: point.ops_per_sec,
            p99_us: point.p99_us,
            errors: self.errors,
            eta,
        }
    }
}

/// One worker task: its own random streams, choosers and buffers.
struct Worker<S> {
    shared: Arc<Shared>,
    store: S,
    recorder: Arc<Mutex<Recorder>>,
    rng: Rng,
    keys: KeyChooser,
    field_lengths: LengthChooser,
    scan_lengths: LengthChooser,
    values: ValueGen,
    key: Vec<u8>,
    value: Vec<u8>,
    /// A field being written, or the expected field a read verifies.
    field: Vec<u8>,
}

impl<S: Store> Worker<S> {
    async fn run(mut self) {
        let s = self.shared.clone();
        while !s.stopped() {
            let k = s.next_op.fetch_add(1, Ordering::Relaxed);
            if k >= s.ops {
                break;
            }
            let due = match s.schedule {
                Some((start, ns_per_op)) => {
                    let due = start + Duration::from_nanos((k as f64 * ns_per_op) as u64);
                    if s.deadline.is_some_and(|d| due >= d) {
                        break;
                    }
                    tokio::time::sleep_until(due).await;
                    Some(due)
                }
                None => None,
            };
            if s.stopped() || s.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let op = match s.phase {
                Phase::Load => Operation::Insert,
                Phase::Run => s.workload.next_operation(&mut self.rng),
            };
            let sent = Instant::now();
            let due = due.unwrap_or(sent);
            let outcome = self.execute(op, k, due).await;
            let end = Instant::now();
            let (service, response) = (end - sent, end.saturating_duration_since(due));
            let status = match &outcome {
                Ok(status) => *status,
                Err(f) => f.status,
            };
            {
                let mut r = self.recorder.lock().expect("recorder lock");
                r.record(op, &outcome, service, response);
                r.finish(status, service, response);
            }
            if status.is_error() {
                let n = s.errors.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= s.max_errors {
                    s.halt(format!(
                        "stopped after {n} failed operations (--max-errors)"
                    ));
                }
            }
        }
    }

    async fn execute(&mut self, op: Operation, k: u64, due: Instant) -> Result<Status, Failure> {
        match op {
            Operation::Insert if self.shared.phase == Phase::Load => {
                self.insert(self.shared.workload.insert_start + k).await
            }
            Operation::Insert => {
                let keynum = self.shared.acked.next_value();
                let result = self.insert(keynum).await;
                self.shared.acked.acknowledge(keynum);
                result
            }
            Operation::Read => {
                let keynum = self.keys.next(&mut self.rng, &self.shared.acked);
                self.read(keynum).await
            }
            Operation::Update => {
                let keynum = self.keys.next(&mut self.rng, &self.shared.acked);
                self.update(keynum).await
            }
            Operation::Scan => {
                let keynum = self.keys.next(&mut self.rng, &self.shared.acked);
                self.scan(keynum).await
            }
            Operation::ReadModifyWrite => {
                let keynum = self.keys.next(&mut self.rng, &self.shared.acked);
                self.read_modify_write(keynum, due).await
            }
        }
    }

    async fn insert(&mut self, keynum: u64) -> Result<Status, Failure> {
        self.shared.namer.write(keynum, &mut self.key);
        self.build_record();
        self.store.put(&self.key, &self.value).await?;
        Ok(Status::Ok)
    }

    async fn read(&mut self, keynum: u64) -> Result<Status, Failure> {
        self.shared.namer.write(keynum, &mut self.key);
        let Some(value) = self.store.get(&self.key).await? else {
            return Ok(Status::NotFound);
        };
        let w = &self.shared.workload;
        let field = (!w.read_all_fields).then(|| self.rng.below(w.field_count));
        record::verify(w, &self.key, &value, field, &mut self.field)?;
        Ok(Status::Ok)
    }

    /// One field read, replaced and written back (YCSB's update against a
    /// store that keeps a record in one value), or with `writeallfields`
    /// a whole new record written without a read.
    async fn update(&mut self, keynum: u64) -> Result<Status, Failure> {
        self.shared.namer.write(keynum, &mut self.key);
        if self.shared.workload.write_all_fields {
            self.build_record();
        } else {
            let Some(old) = self.store.get(&self.key).await? else {
                return Ok(Status::NotFound);
            };
            self.rewrite_one_field(&old)?;
        }
        self.store.put(&self.key, &self.value).await?;
        Ok(Status::Ok)
    }

    async fn scan(&mut self, keynum: u64) -> Result<Status, Failure> {
        self.shared.namer.write(keynum, &mut self.key);
        let len = self.scan_lengths.next(&mut self.rng);
        let w = &self.shared.workload;
        let field = (!w.read_all_fields).then(|| self.rng.below(w.field_count));
        self.store
            .scan(&self.key, len, |k, v| {
                record::verify(w, k, v, field, &mut self.field)
            })
            .await?;
        Ok(Status::Ok)
    }

    /// A read, then an update of what was read; the read and the update are
    /// also recorded on their own (as YCSB's `READ` and `UPDATE`). The
    /// read's response time runs from the operation's due time; the
    /// update's from its own start.
    async fn read_modify_write(&mut self, keynum: u64, due: Instant) -> Result<Status, Failure> {
        self.shared.namer.write(keynum, &mut self.key);
        let t0 = Instant::now();
        let got = self.store.get(&self.key).await;
        let t1 = Instant::now();
        let (read, old) = match got {
            Ok(Some(v)) => {
                let verified =
                    record::verify(&self.shared.workload, &self.key, &v, None, &mut self.field);
                (verified.map(|()| Status::Ok), Some(v))
            }
            Ok(None) => (Ok(Status::NotFound), None),
            Err(f) => (Err(f), None),
        };
        self.recorder.lock().expect("recorder lock").record(
            Operation::Read,
            &read,
            t1 - t0,
            t1.saturating_duration_since(due),
        );
        let Some(old) = old.filter(|_| read == Ok(Status::Ok)) else {
            return read;
        };
        if self.shared.workload.write_all_fields {
            self.build_record();
        } else {
            self.rewrite_one_field(&old)?;
        }
        let t2 = Instant::now();
        let written = self
            .store
            .put(&self.key, &self.value)
            .await
            .map(|()| Status::Ok);
        let t3 = Instant::now();
        self.recorder.lock().expect("recorder lock").record(
            Operation::Update,
            &written,
            t3 - t2,
            t3 - t2,
        );
        written
    }

    /// A new record for `self.key` in `self.value`.
    fn build_record(&mut self) {
        let w = &self.shared.workload;
        record::start(&mut self.value, w.field_count);
        for i in 0..w.field_count {
            record::field_bytes(
                w,
                &self.key,
                i,
                &mut self.field_lengths,
                &mut self.rng,
                &mut self.values,
                &mut self.field,
            );
            record::push_field(&mut self.value, &self.field);
        }
    }

    /// `old` with one random field replaced, in `self.value`.
    fn rewrite_one_field(&mut self, old: &[u8]) -> Result<(), Failure> {
        let w = &self.shared.workload;
        let fields = record::decode(old).map_err(|e| record::bad_record(&self.key, e))?;
        if fields.len() == 0 {
            return Err(Failure::new(
                Status::UnexpectedState,
                "MISSING_FIELD",
                "a record without fields",
            ));
        }
        let chosen = self.rng.below(fields.len() as u64);
        record::field_bytes(
            w,
            &self.key,
            chosen,
            &mut self.field_lengths,
            &mut self.rng,
            &mut self.values,
            &mut self.field,
        );
        record::start(&mut self.value, fields.len() as u64);
        for (i, f) in fields.enumerate() {
            let bytes = if i as u64 == chosen {
                self.field.as_slice()
            } else {
                f
            };
            record::push_field(&mut self.value, bytes);
        }
        Ok(())
    }
}

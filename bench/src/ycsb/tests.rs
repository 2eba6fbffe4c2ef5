//! The runner against an in-memory store with injected service times, on
//! tokio's paused clock (time advances only when every task waits, so the
//! timings are exact and independent of the machine's load): every
//! shipped workload file loads and runs with verified data, the open loop
//! shows a stall that the closed loop hides, latest never reads a key
//! whose insert is in flight, and failures are counted and bounded.

use super::args::ProgressArg;
use super::progress::Progress;
use super::properties::Properties;
use super::record::KeyNamer;
use super::runner::{self, Phase, PhaseOutcome, PhasePlan};
use super::store::Status;
use super::store::memory::{Delay, MemoryStore};
use super::workload::{CoreWorkload, Operation};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const WORKLOADS: [(&str, &str); 6] = [
    ("workloada", include_str!("../../workloads/workloada")),
    ("workloadb", include_str!("../../workloads/workloadb")),
    ("workloadc", include_str!("../../workloads/workloadc")),
    ("workloadd", include_str!("../../workloads/workloadd")),
    ("workloade", include_str!("../../workloads/workloade")),
    ("workloadf", include_str!("../../workloads/workloadf")),
];

fn workload(text: &str, overrides: &[&str]) -> Arc<CoreWorkload> {
    let mut p = Properties::new();
    p.parse_text(text, Path::new("test")).expect("parses");
    for o in overrides {
        p.set_override(o).expect("override");
    }
    Arc::new(CoreWorkload::from_properties(&p).expect("valid workload"))
}

fn plan(phase: Phase, threads: usize, target: Option<f64>) -> PhasePlan {
    PhasePlan {
        phase,
        threads,
        target,
        max_time: None,
        max_errors: 1000,
        interval: Duration::from_millis(100),
        recorder_shards: 2,
        seed: 7,
        handle_interrupt: false,
    }
}

fn namer(w: &CoreWorkload) -> KeyNamer {
    KeyNamer {
        order: w.insert_order,
        zero_padding: w.zero_padding as usize,
    }
}

fn fixed(ms: u64) -> Delay {
    Arc::new(move |_| Duration::from_millis(ms))
}

async fn phase(w: &Arc<CoreWorkload>, plan: &PhasePlan, store: &MemoryStore) -> PhaseOutcome {
    let mut progress = Progress::new("test", None, ProgressArg::Off, Duration::from_secs(1));
    runner::run_phase(
        w.clone(),
        namer(w),
        plan,
        std::slice::from_ref(store),
        &mut progress,
    )
    .await
    .expect("phase runs")
}

fn returns(o: &PhaseOutcome, op: Operation, status: Status) -> u64 {
    o.totals.ops[op.index()].returns[status.index()]
}

#[tokio::test(start_paused = true)]
async fn every_core_workload_loads_and_runs_with_verified_records() {
    let expect: [&[Operation]; 6] = [
        &[Operation::Read, Operation::Update],
        &[Operation::Read, Operation::Update],
        &[Operation::Read],
        &[Operation::Read, Operation::Insert],
        &[Operation::Scan, Operation::Insert],
        &[
            Operation::Read,
            Operation::Update,
            Operation::ReadModifyWrite,
        ],
    ];
    for ((name, text), ops) in WORKLOADS.iter().zip(expect) {
        let w = workload(
            text,
            &[
                "recordcount=300",
                "operationcount=600",
                "fieldcount=3",
                "fieldlength=24",
                "dataintegrity=true",
                "maxscanlength=20",
            ],
        );
        let store = MemoryStore::new(fixed(1));
        let load = phase(&w, &plan(Phase::Load, 8, None), &store).await;
        assert_eq!(load.totals.done, 300, "{name}");
        assert_eq!(returns(&load, Operation::Insert, Status::Ok), 300, "{name}");
        assert_eq!(
            store.map.lock().expect("map").len(),
            300,
            "{name}: distinct keys"
        );

        let run = phase(&w, &plan(Phase::Run, 8, None), &store).await;
        assert_eq!(run.totals.done, 600, "{name}");
        assert_eq!(
            run.totals.errors,
            0,
            "{name}: {:?}",
            run.totals
                .ops
                .iter()
                .map(|o| &o.first_error)
                .collect::<Vec<_>>()
        );
        assert!(run.stopped.is_none());
        for op in Operation::ALL {
            let count = run.totals.ops[op.index()].count();
            assert_eq!(
                count > 0,
                ops.contains(&op),
                "{name} {}: {count}",
                op.name()
            );
            assert_eq!(
                returns(&run, op, Status::Ok),
                count,
                "{name} {}: every return OK",
                op.name()
            );
        }
        let inserted = returns(&run, Operation::Insert, Status::Ok) as usize;
        assert_eq!(
            store.map.lock().expect("map").len(),
            300 + inserted,
            "{name}"
        );
        assert!(!run.series.is_empty() && run.series.iter().map(|p| p.ops).sum::<u64>() == 600);
        if *name == "workloadf" {
            let rmw = returns(&run, Operation::ReadModifyWrite, Status::Ok);
            // Each read-modify-write also counts one read and one update.
            assert!(returns(&run, Operation::Read, Status::Ok) > rmw);
            assert!(returns(&run, Operation::Update, Status::Ok) >= rmw);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_open_loop_shows_a_stall_that_a_closed_loop_hides() {
    let w = workload(
        WORKLOADS[2].1,
        &[
            "recordcount=100",
            "operationcount=400",
            "fieldcount=1",
            "fieldlength=8",
        ],
    );
    let loaded = MemoryStore::new(fixed(0));
    phase(&w, &plan(Phase::Load, 4, None), &loaded).await;
    // One thread, 1 ms per read, and read number 100 stalls for 300 ms.
    let stall: Delay = Arc::new(|n| Duration::from_millis(if n == 100 { 300 } else { 1 }));

    let closed = phase(
        &w,
        &plan(Phase::Run, 1, None),
        &loaded.with_delay(stall.clone()),
    )
    .await;
    let open = phase(
        &w,
        &plan(Phase::Run, 1, Some(200.0)),
        &loaded.with_delay(stall),
    )
    .await;
    let ms = |us: u64| us as f64 / 1000.0;
    let c = &closed.totals.overall;
    let o = &open.totals.overall;
    // The closed loop waits out the stall with one operation: only the
    // maximum sees it, and response time equals service time.
    assert!(ms(c.response.value_at_quantile(0.99)) < 100.0);
    assert!(ms(c.response.max()) >= 300.0);
    assert_eq!(
        c.response.value_at_quantile(0.99),
        c.service.value_at_quantile(0.99)
    );
    // The open loop had ~60 reads due during the stall (one every 5 ms);
    // they queued, and their response times (from their due time) show it.
    let (service, response) = (
        o.service.value_at_quantile(0.99),
        o.response.value_at_quantile(0.99),
    );
    assert!(ms(service) < 100.0, "service p99 {service}");
    assert!(ms(response) > 200.0, "response p99 {response}");
    assert!(ms(o.response.value_at_quantile(0.9)) > 20.0);
    // 400 reads at 200/s take two seconds, stall included.
    let secs = open.wall.as_secs_f64();
    assert!((1.99..2.05).contains(&secs), "{secs}");
    let peak = open
        .series
        .iter()
        .filter_map(|p| p.p99_us)
        .max()
        .expect("points");
    assert!(ms(peak) > 200.0, "the time series shows the stall: {peak}");
}

#[tokio::test(start_paused = true)]
async fn latest_never_reads_a_key_whose_insert_is_in_flight() {
    let w = workload(
        WORKLOADS[3].1,
        &[
            "recordcount=50",
            "operationcount=3000",
            "insertproportion=0.5",
            "readproportion=0.5",
            "fieldcount=1",
            "fieldlength=4",
        ],
    );
    let store = MemoryStore::new(fixed(0));
    phase(&w, &plan(Phase::Load, 4, None), &store).await;
    // Call times from 0 to 12 ms, so inserts complete out of order.
    let jitter: Delay = Arc::new(|n| Duration::from_millis(n.wrapping_mul(7919) % 13));
    let run = phase(&w, &plan(Phase::Run, 16, None), &store.with_delay(jitter)).await;
    let inserts = returns(&run, Operation::Insert, Status::Ok);
    assert!(inserts > 1000, "{inserts}");
    assert!(returns(&run, Operation::Read, Status::Ok) > 1000);
    assert_eq!(returns(&run, Operation::Read, Status::NotFound), 0);
}

#[tokio::test(start_paused = true)]
async fn failures_are_counted_by_class_and_stop_the_phase_at_the_budget() {
    let w = workload(
        WORKLOADS[2].1,
        &[
            "recordcount=20",
            "operationcount=1000",
            "fieldcount=1",
            "fieldlength=4",
        ],
    );
    let store = MemoryStore::new(fixed(0));
    phase(&w, &plan(Phase::Load, 2, None), &store).await;
    let failing = store.with_delay(fixed(1)).failing(|n| n % 3 == 0);
    let mut p = plan(Phase::Run, 4, None);
    p.max_errors = 50;
    let run = phase(&w, &p, &failing).await;
    let read = &run.totals.ops[Operation::Read.index()];
    assert_eq!(
        run.stopped.as_deref(),
        Some("stopped after 50 failed operations (--max-errors)")
    );
    assert!(
        (50..60).contains(&run.totals.errors),
        "{}",
        run.totals.errors
    );
    assert_eq!(read.errors.get("TIMEOUT"), Some(&run.totals.errors));
    assert!(
        read.first_error
            .as_deref()
            .is_some_and(|e| e.starts_with("TIMEOUT: call "))
    );
    assert!(run.totals.done < 1000);
    assert_eq!(read.failed.service.len(), run.totals.errors);
    assert!(read.ok.service.len() > 90);
}

#[tokio::test(start_paused = true)]
async fn a_changed_record_fails_the_integrity_check() {
    let w = workload(
        WORKLOADS[2].1,
        &[
            "recordcount=10",
            "operationcount=200",
            "fieldcount=2",
            "fieldlength=10",
            "dataintegrity=true",
            "requestdistribution=uniform",
        ],
    );
    let store = MemoryStore::new(fixed(0));
    phase(&w, &plan(Phase::Load, 1, None), &store).await;
    {
        let mut map = store.map.lock().expect("map");
        let key = namer(&w).name(3);
        let value = map.get_mut(&key).expect("loaded");
        let last = value.len() - 1;
        value[last] ^= 1;
        map.insert(namer(&w).name(4), b"not a record".to_vec());
    }
    let run = phase(&w, &plan(Phase::Run, 2, None), &store).await;
    let read = &run.totals.ops[Operation::Read.index()];
    assert!(
        read.errors.get("INTEGRITY").is_some_and(|n| *n > 5),
        "{:?}",
        read.errors
    );
    assert!(
        read.errors.get("BAD_RECORD").is_some_and(|n| *n > 5),
        "{:?}",
        read.errors
    );
    assert_eq!(
        returns(&run, Operation::Read, Status::UnexpectedState),
        run.totals.errors
    );
    assert_eq!(
        returns(&run, Operation::Read, Status::Ok) + run.totals.errors,
        200
    );
}

#[tokio::test(start_paused = true)]
async fn a_time_limit_ends_an_unbounded_run() {
    let w = workload(
        WORKLOADS[0].1,
        &[
            "recordcount=10",
            "operationcount=0",
            "maxexecutiontime=1",
            "fieldcount=1",
            "fieldlength=4",
        ],
    );
    let store = MemoryStore::new(fixed(0));
    phase(&w, &plan(Phase::Load, 1, None), &store).await;
    let mut p = plan(Phase::Run, 2, Some(100.0));
    p.max_time = w.max_execution_time;
    let run = phase(&w, &p, &store.with_delay(fixed(1))).await;
    assert!(run.stopped.is_none());
    // Operations are due every 10 ms: 100 of them fall within the second.
    assert_eq!(run.totals.done, 100);
    assert!(run.wall < Duration::from_millis(1050), "{:?}", run.wall);
}

//! Property test: the engine against a BTreeMap model under random operations,
//! with snapshots, flushes, compactions and reopen.

use ferrisdb_io::SimDisk;
use ferrisdb_io::executor::run_local;
use ferrisdb_lsm::{Engine, Options, ReadOptions, ScanOptions, Snapshot, WriteBatch, WriteOptions};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u16),
    Delete(u8),
    DeleteRange(u8, u8),
    Batch(Vec<(u8, Option<u16>)>),
    TakeSnapshot,
    DropSnapshot(usize),
    Get(u8),
    GetAtSnapshot(usize, u8),
    Scan {
        lo: Option<u8>,
        hi: Option<u8>,
        reverse: bool,
        limit: usize,
    },
    Flush,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Put(k % 64, v)),
        3 => any::<u8>().prop_map(|k| Op::Delete(k % 64)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::DeleteRange(a % 64, b % 64)),
        2 => prop::collection::vec((any::<u8>(), prop::option::of(any::<u16>())), 1..5)
            .prop_map(|v| Op::Batch(v.into_iter().map(|(k, x)| (k % 64, x)).collect())),
        1 => Just(Op::TakeSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        4 => any::<u8>().prop_map(|k| Op::Get(k % 64)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(s, k)| Op::GetAtSnapshot(s, k % 64)),
        2 => (prop::option::of(any::<u8>()), prop::option::of(any::<u8>()), any::<bool>(), 0usize..8)
            .prop_map(|(lo, hi, reverse, limit)| Op::Scan { lo: lo.map(|x| x % 70), hi: hi.map(|x| x % 70), reverse, limit }),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key{k:03}").into_bytes()
}

fn value(v: u16) -> Vec<u8> {
    format!("value{v}-{}", "z".repeat((v % 97) as usize)).into_bytes()
}

fn options() -> Options {
    Options {
        memtable_bytes_max: 4096,
        block_bytes: 256,
        level1_bytes_max: 16 * 1024,
        sst_bytes_target: 4096,
        l0_compaction_trigger: 2,
        l0_stop_writes: 6,
        wal_segment_bytes: 64 * 1024,
        ..Options::default()
    }
}

fn model_scan(
    m: &Model,
    lo: Option<u8>,
    hi: Option<u8>,
    reverse: bool,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let lo = lo.map(key);
    let hi = hi.map(key);
    let it = m
        .iter()
        .filter(|(k, _)| lo.as_ref().is_none_or(|l| *k >= l) && hi.as_ref().is_none_or(|h| *k < h));
    let mut all: Vec<(Vec<u8>, Vec<u8>)> = it.map(|(k, v)| (k.clone(), v.clone())).collect();
    if reverse {
        all.reverse();
    }
    if limit > 0 {
        all.truncate(limit);
    }
    all
}

async fn run(ops: Vec<Op>, seed: u64) {
    let disk = SimDisk::new(seed);
    let dir = Path::new("/db");
    let mut engine = Engine::open(disk.clone(), dir, options())
        .await
        .expect("open");
    let mut model = Model::new();
    let mut snaps: Vec<(Snapshot<SimDisk>, Model)> = Vec::new();
    let w = WriteOptions {
        sync: true,
        ..Default::default()
    };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Put(k, v) => {
                engine.put(&key(k), &value(v), &w).await.expect("put");
                model.insert(key(k), value(v));
            }
            Op::Delete(k) => {
                engine.delete(&key(k), &w).await.expect("delete");
                model.remove(&key(k));
            }
            Op::DeleteRange(a, b) => {
                let (lo, hi) = (a.min(b), a.max(b) + 1);
                engine
                    .delete_range(&key(lo), &key(hi), &w)
                    .await
                    .expect("delete_range");
                model.retain(|k, _| !(*k >= key(lo) && *k < key(hi)));
            }
            Op::Batch(items) => {
                let mut b = WriteBatch::new();
                for (k, v) in items {
                    match v {
                        Some(v) => {
                            b.put(key(k), value(v));
                            model.insert(key(k), value(v));
                        }
                        None => {
                            b.delete(key(k));
                            model.remove(&key(k));
                        }
                    }
                }
                engine.write(b, &w).await.expect("batch");
            }
            Op::TakeSnapshot => snaps.push((engine.snapshot(), model.clone())),
            Op::DropSnapshot(i) => {
                if !snaps.is_empty() {
                    let n = snaps.len();
                    snaps.remove(i % n);
                }
            }
            Op::Get(k) => {
                let got = engine
                    .get(&key(k), &ReadOptions::default())
                    .await
                    .expect("get");
                assert_eq!(got.as_ref(), model.get(&key(k)), "step {step}: get {k}");
            }
            Op::GetAtSnapshot(i, k) => {
                if !snaps.is_empty() {
                    let (snap, m) = &snaps[i % snaps.len()];
                    let got = engine
                        .get(&key(k), &snap.read_options())
                        .await
                        .expect("get");
                    assert_eq!(
                        got.as_ref(),
                        m.get(&key(k)),
                        "step {step}: get {k} at snapshot {}",
                        snap.version()
                    );
                }
            }
            Op::Scan {
                lo,
                hi,
                reverse,
                limit,
            } => {
                if lo.zip(hi).is_some_and(|(l, h)| l > h) {
                    continue;
                }
                let opts = ScanOptions {
                    reverse,
                    limit,
                    ..Default::default()
                };
                let got = engine
                    .scan(lo.map(key).as_deref(), hi.map(key).as_deref(), &opts)
                    .await
                    .expect("scan");
                assert_eq!(
                    got,
                    model_scan(&model, lo, hi, reverse, limit),
                    "step {step}: scan"
                );
                if let Some((snap, m)) = snaps.first() {
                    let opts = ScanOptions {
                        reverse,
                        limit,
                        version: Some(snap.version()),
                    };
                    let got = engine
                        .scan(lo.map(key).as_deref(), hi.map(key).as_deref(), &opts)
                        .await
                        .expect("scan");
                    assert_eq!(
                        got,
                        model_scan(m, lo, hi, reverse, limit),
                        "step {step}: scan at snapshot"
                    );
                }
            }
            Op::Flush => engine.flush().await.expect("flush"),
            Op::Compact => engine.compact_range(None, None).await.expect("compact"),
            Op::Reopen => {
                snaps.clear();
                engine.clone().close().await.expect("close");
                engine = Engine::open(disk.clone(), dir, options())
                    .await
                    .expect("reopen");
            }
        }
    }
    let all = engine
        .scan(None, None, &ScanOptions::default())
        .await
        .expect("final scan");
    assert_eq!(all, model_scan(&model, None, None, false, 0));
    drop(snaps);
    engine.close().await.expect("close");
}

proptest! {
    // 128 cases in CI; FERRISDB_MODEL_CASES=N for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FERRISDB_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        ..ProptestConfig::default()
    })]
    #[test]
    fn engine_matches_model(ops in prop::collection::vec(op(), 1..250), seed in any::<u64>()) {
        run_local(move || run(ops, seed));
    }
}

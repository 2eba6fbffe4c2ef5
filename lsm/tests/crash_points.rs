//! Crash at every sync point of a mixed workload on the simulated disk.
//!
//! Fault model (ferrisdb_io::disk::sim): at sync number n the machine loses
//! power: that sync does not happen, every later operation fails, and the disk
//! keeps only durable bytes plus torn sectors of each file's last unsynced
//! write. After recovery the engine must open, hold every acknowledged write,
//! and show exactly the state after some prefix of the attempted operations
//! that includes every acknowledged one (nothing never written appears).

use ferrisdb_io::executor::run_local;
use ferrisdb_io::{SimDisk, SimFaults};
use ferrisdb_lsm::{Engine, Options, ScanOptions, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::path::Path;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options() -> Options {
    Options {
        memtable_bytes_max: 8 * 1024,
        block_bytes: 512,
        level1_bytes_max: 32 * 1024,
        sst_bytes_target: 16 * 1024,
        l0_compaction_trigger: 2,
        l0_stop_writes: 6,
        wal_segment_bytes: 64 * 1024,
        ..Options::default()
    }
}

fn key(k: u64) -> Vec<u8> {
    format!("k{:03}", k % 60).into_bytes()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Runs the workload until it ends or the disk dies. Returns the model state
/// after each operation attempted (index 0 = empty) and the index of the last
/// operation known durable.
async fn workload(disk: SimDisk, seed: u64, ops: usize) -> (Vec<Model>, usize) {
    let engine = match Engine::open(disk, Path::new("/db"), options()).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("open failed: {e}");
            return (vec![Model::new()], 0);
        }
    };
    let mut rng = Rng(seed);
    let mut model = Model::new();
    let mut states = vec![model.clone()];
    let mut durable = 0;
    for i in 1..=ops {
        let value = format!("v{i}-{}", "x".repeat((rng.next() % 40) as usize)).into_bytes();
        let sync = rng.next().is_multiple_of(2);
        let opts = WriteOptions {
            sync,
            ..Default::default()
        };
        let mut next = model.clone();
        let result = match rng.next() % 10 {
            0..=4 => {
                let k = key(rng.next());
                next.insert(k.clone(), value.clone());
                engine.put(&k, &value, &opts).await.map(|_| ())
            }
            5 | 6 => {
                let k = key(rng.next());
                next.remove(&k);
                engine.delete(&k, &opts).await.map(|_| ())
            }
            7 => {
                let (a, b) = (rng.next() % 60, rng.next() % 60);
                let lo = format!("k{:03}", a.min(b)).into_bytes();
                let hi = format!("k{:03}", a.max(b) + 1).into_bytes();
                next.retain(|k, _| !(k >= &lo && k < &hi));
                engine.delete_range(&lo, &hi, &opts).await.map(|_| ())
            }
            8 => {
                let mut batch = WriteBatch::new();
                for j in 0..3u64 {
                    let k = key(rng.next());
                    let v = [value.as_slice(), format!("-{j}").as_bytes()].concat();
                    next.insert(k.clone(), v.clone());
                    batch.put(k, v);
                }
                engine.write(batch, &opts).await.map(|_| ())
            }
            _ => {
                let r = if rng.next().is_multiple_of(4) {
                    engine.compact_range(None, None).await
                } else {
                    engine.flush().await
                };
                if r.is_err() {
                    break;
                }
                // Flush and compaction do not change the logical state, and a
                // successful flush makes everything before it durable.
                durable = i - 1;
                states.push(model.clone());
                continue;
            }
        };
        // An attempted write may or may not survive a crash.
        model = next;
        states.push(model.clone());
        match result {
            Ok(()) if sync => durable = i,
            Ok(()) => {}
            Err(e) => {
                eprintln!("op {i} failed: {e}");
                break;
            }
        }
    }
    let _ = engine.close().await;
    (states, durable)
}

async fn recovered_state(disk: SimDisk) -> Model {
    let engine = Engine::open(disk, Path::new("/db"), options())
        .await
        .expect("recovered directory opens");
    let pairs = engine
        .scan(None, None, &ScanOptions::default())
        .await
        .expect("scan after recovery");
    engine.close().await.expect("close");
    pairs.into_iter().collect()
}

fn check_crash_at(seed: u64, sync_point: u64, ops: usize) -> bool {
    run_local(move || async move {
        let faults = SimFaults {
            crash_at_sync: Some(sync_point),
            tear_on_crash: true,
            ..Default::default()
        };
        let disk = SimDisk::with_faults(seed, faults);
        let (states, durable) = workload(disk.clone(), seed, ops).await;
        let crashed = disk.counters().crashed;
        let got = recovered_state(disk.crash_image()).await;
        let matches: Vec<usize> = (0..states.len()).filter(|&i| states[i] == got).collect();
        assert!(
            matches.iter().any(|&i| i >= durable),
            "seed {seed} crash at sync {sync_point}: recovered state ({} keys) is not the state after any \
             prefix that includes op {durable} (matching prefixes: {matches:?}, ops attempted {})",
            got.len(),
            states.len() - 1
        );
        crashed
    })
}

#[test]
fn crash_at_every_sync_point_keeps_acknowledged_writes() {
    const OPS: usize = 160;
    for seed in [1u64, 2] {
        let total = run_local(move || async move {
            let disk = SimDisk::new(seed);
            workload(disk.clone(), seed, OPS).await;
            disk.counters().syncs
        });
        assert!(total > 20, "the workload must sync often (got {total})");
        let mut crashes = 0;
        for n in 0..total {
            crashes += u64::from(check_crash_at(seed, n, OPS));
        }
        assert!(
            crashes * 2 > total,
            "most sync points must really crash ({crashes} of {total})"
        );
    }
}

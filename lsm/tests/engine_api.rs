//! The engine's API end to end, on the simulated disk and on real io_uring.

use ferrisdb_io::executor::run_local;
use ferrisdb_io::{Disk, RealDisk, SimDisk};
use ferrisdb_lsm::{Engine, Options, ReadOptions, ScanOptions, WriteBatch, WriteOptions};
use std::path::{Path, PathBuf};

fn small_options() -> Options {
    Options {
        memtable_bytes_max: 32 * 1024,
        block_bytes: 1024,
        level1_bytes_max: 256 * 1024,
        sst_bytes_target: 64 * 1024,
        l0_compaction_trigger: 2,
        l0_stop_writes: 8,
        ..Options::default()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value-{i}-{round}-{}", "v".repeat((i % 50) as usize)).into_bytes()
}

const SYNC: WriteOptions = WriteOptions {
    sync: true,
    version: None,
    applied_index: None,
};
const NOSYNC: WriteOptions = WriteOptions {
    sync: false,
    version: None,
    applied_index: None,
};

async fn exercise<D: Disk>(disk: D, dir: PathBuf) {
    let r = ReadOptions::default();
    let engine = Engine::open(disk.clone(), &dir, small_options())
        .await
        .expect("open");
    for i in 0..3000 {
        engine
            .put(&key(i), &value(i, 0), &NOSYNC)
            .await
            .expect("put");
    }
    let snap = engine.snapshot();
    for i in (0..3000).step_by(3) {
        engine
            .put(&key(i), &value(i, 1), &NOSYNC)
            .await
            .expect("overwrite");
    }
    for i in (1..3000).step_by(7) {
        engine.delete(&key(i), &NOSYNC).await.expect("delete");
    }
    engine
        .delete_range(&key(2000), &key(2100), &SYNC)
        .await
        .expect("delete_range");
    engine.flush().await.expect("flush");

    let expect_latest = |i: u32| -> Option<Vec<u8>> {
        if (2000..2100).contains(&i) || i % 7 == 1 {
            None
        } else if i.is_multiple_of(3) {
            Some(value(i, 1))
        } else {
            Some(value(i, 0))
        }
    };
    for i in (0..3000).step_by(13) {
        assert_eq!(
            engine.get(&key(i), &r).await.expect("get"),
            expect_latest(i),
            "key {i}"
        );
        assert_eq!(
            engine
                .get(&key(i), &snap.read_options())
                .await
                .expect("get"),
            Some(value(i, 0)),
            "snapshot key {i}"
        );
    }
    assert_eq!(engine.get(b"missing", &r).await.expect("get"), None);

    // Forward and reverse scans with bounds and limits.
    let fwd = engine
        .scan(Some(&key(1990)), Some(&key(2110)), &ScanOptions::default())
        .await
        .expect("scan");
    let want: Vec<u32> = (1990..2110)
        .filter(|&i| expect_latest(i).is_some())
        .collect();
    assert_eq!(
        fwd.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        want.iter().map(|&i| key(i)).collect::<Vec<_>>()
    );
    let rev = engine
        .scan(
            Some(&key(1990)),
            Some(&key(2110)),
            &ScanOptions {
                reverse: true,
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .expect("reverse scan");
    assert_eq!(
        rev.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        want.iter()
            .rev()
            .take(5)
            .map(|&i| key(i))
            .collect::<Vec<_>>()
    );
    let at_snap = engine
        .scan(
            None,
            None,
            &ScanOptions {
                version: Some(snap.version()),
                ..Default::default()
            },
        )
        .await
        .expect("scan");
    assert_eq!(at_snap.len(), 3000);

    // Atomic batch.
    let mut b = WriteBatch::new();
    b.put("batch-a", "1").put("batch-b", "2").delete(key(0));
    let v = engine.write(b, &SYNC).await.expect("batch");
    assert_eq!(
        engine.get(b"batch-a", &r).await.expect("get"),
        Some(b"1".to_vec())
    );
    assert_eq!(
        engine
            .get(
                &key(0),
                &ReadOptions {
                    version: Some(v - 1)
                }
            )
            .await
            .expect("get"),
        Some(value(0, 1))
    );
    assert_eq!(engine.get(&key(0), &r).await.expect("get"), None);

    drop(snap);
    engine.compact_range(None, None).await.expect("compact");
    let stats = engine.stats();
    assert!(stats.compactions > 0 && stats.flushes > 0);
    assert!(stats.write_amplification() > 1.0);
    assert_eq!(stats.files_per_level[0], 0, "compact_range empties L0");
    for i in (0..3000).step_by(11) {
        let want = if i == 0 { None } else { expect_latest(i) };
        assert_eq!(
            engine.get(&key(i), &r).await.expect("get"),
            want,
            "after compaction key {i}"
        );
    }
    let before = engine
        .scan(None, None, &ScanOptions::default())
        .await
        .expect("scan");
    engine.clone().close().await.expect("close");
    drop(engine);

    let engine = Engine::open(disk, &dir, small_options())
        .await
        .expect("reopen");
    let after = engine
        .scan(None, None, &ScanOptions::default())
        .await
        .expect("scan");
    assert_eq!(before, after, "reopen must see exactly what was there");
    engine.close().await.expect("close");
}

#[test]
fn api_on_simulated_disk() {
    run_local(|| exercise(SimDisk::new(11), PathBuf::from("/db")));
}

#[test]
fn api_on_real_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    run_local(move || exercise(RealDisk::new(), dir));
}

#[test]
fn bad_arguments_get_clear_errors() {
    run_local(|| async {
        let engine = Engine::open(SimDisk::new(1), Path::new("/db"), small_options())
            .await
            .expect("open");
        let big_key = vec![b'k'; 10 * 1024 + 1];
        assert!(matches!(
            engine.put(&big_key, b"v", &NOSYNC).await,
            Err(ferrisdb_lsm::Error::KeyTooLarge { .. })
        ));
        let big_value = vec![0u8; (1 << 20) + 1];
        assert!(matches!(
            engine.put(b"k", &big_value, &NOSYNC).await,
            Err(ferrisdb_lsm::Error::ValueTooLarge { .. })
        ));
        assert!(engine.delete_range(b"b", b"a", &NOSYNC).await.is_err());
        assert!(engine.write(WriteBatch::new(), &NOSYNC).await.is_err());
        let bad = WriteOptions {
            version: Some(0),
            ..Default::default()
        };
        assert!(
            engine.put(b"k", b"v", &bad).await.is_err(),
            "versions must increase"
        );
        assert!(
            engine
                .scan(Some(b"z"), Some(b"a"), &ScanOptions::default())
                .await
                .is_err()
        );
        engine
            .put(b"k", b"v", &SYNC)
            .await
            .expect("the engine still works");
        assert!(
            Engine::open(
                SimDisk::new(1),
                Path::new("/x"),
                Options {
                    levels: 1,
                    ..Options::default()
                }
            )
            .await
            .is_err()
        );
    });
}

#[test]
fn external_log_mode_records_the_applied_index_at_each_flush() {
    run_local(|| async {
        let disk = SimDisk::new(21);
        let dir = Path::new("/db");
        let opts = Options {
            log_mode: ferrisdb_lsm::LogMode::External,
            ..small_options()
        };
        let engine = Engine::open(disk.clone(), dir, opts.clone())
            .await
            .expect("open");
        for i in 1..=100u32 {
            let w = WriteOptions {
                sync: false,
                version: Some(u64::from(i) * 10),
                applied_index: Some(u64::from(i)),
            };
            engine.put(&key(i), &value(i, 0), &w).await.expect("put");
        }
        assert_eq!(engine.version(), 1000);
        assert_eq!(engine.flushed_applied_index(), 0, "nothing flushed yet");
        engine.flush().await.expect("flush");
        assert_eq!(engine.flushed_applied_index(), 100);
        for i in 101..=120u32 {
            let w = WriteOptions {
                sync: false,
                version: Some(u64::from(i) * 10),
                applied_index: Some(u64::from(i)),
            };
            engine.put(&key(i), &value(i, 0), &w).await.expect("put");
        }
        engine.close().await.expect("close");
        assert!(
            disk.paths()
                .iter()
                .all(|p| !p.to_string_lossy().contains("wal-")),
            "no WAL in external log mode"
        );

        // After a restart the engine holds what was flushed and reports the
        // index to replay the external log from.
        let engine = Engine::open(disk.crash_image(), dir, opts)
            .await
            .expect("reopen");
        assert_eq!(engine.flushed_applied_index(), 100);
        let r = ReadOptions::default();
        assert_eq!(
            engine.get(&key(100), &r).await.expect("get"),
            Some(value(100, 0))
        );
        assert_eq!(engine.get(&key(101), &r).await.expect("get"), None);
        assert_eq!(
            engine
                .get(&key(50), &ReadOptions { version: Some(499) })
                .await
                .expect("get"),
            None,
            "key 50 was written at version 500"
        );
        let replay = WriteOptions {
            sync: false,
            version: Some(1010),
            applied_index: Some(101),
        };
        engine
            .put(&key(101), &value(101, 0), &replay)
            .await
            .expect("replayed write");
        let stale = WriteOptions {
            version: Some(1000),
            ..Default::default()
        };
        assert!(
            engine.put(b"x", b"y", &stale).await.is_err(),
            "versions must keep increasing"
        );
    });
}

/// `compaction_bytes_per_sec` holds a compaction to its rate: a full
/// compaction writing W bytes at R bytes/s takes at least about W / R.
#[test]
fn compaction_rate_limit_paces_compaction_output() {
    const RATE: u64 = 2 << 20;
    run_local(|| async {
        let dir = PathBuf::from("/db");
        let opts = Options {
            compaction_bytes_per_sec: RATE,
            ..small_options()
        };
        let engine = Engine::open(SimDisk::new(1), &dir, opts)
            .await
            .expect("open");
        for i in 0..6000 {
            engine
                .put(&key(i), &value(i, 0), &NOSYNC)
                .await
                .expect("put");
        }
        engine.flush().await.expect("flush");
        let before = engine.stats().compaction_write_bytes;
        let started = std::time::Instant::now();
        engine.compact_range(None, None).await.expect("compact");
        let elapsed = started.elapsed();
        let written = engine.stats().compaction_write_bytes - before;
        assert!(
            written > 1 << 20,
            "the compaction rewrote the data: {written} bytes"
        );
        let due = std::time::Duration::from_secs_f64(written as f64 / RATE as f64);
        // The last step of up to 64 KiB of each merge (one per level) may
        // be unpaced.
        let slack = std::time::Duration::from_secs_f64(6.0 * (64 << 10) as f64 / RATE as f64);
        assert!(
            elapsed + slack >= due,
            "{written} bytes at {RATE} B/s took {elapsed:?}, due {due:?}"
        );
        engine.close().await.expect("close");
    });
}

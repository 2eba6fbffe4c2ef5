//! Bad bytes and failing devices: bit flips in tables, WAL and manifest, and
//! EIO on write or fsync. Never a panic, never wrong data, nothing acknowledged lost.

use ferrisdb_io::executor::run_local;
use ferrisdb_io::{SimDisk, SimFaults};
use ferrisdb_lsm::{Engine, Error, Options, ReadOptions, ScanOptions, WriteOptions};
use std::path::{Path, PathBuf};

fn options() -> Options {
    Options {
        memtable_bytes_max: 16 * 1024,
        block_bytes: 512,
        wal_segment_bytes: 64 * 1024,
        ..Options::default()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value{i:05}-{}", "p".repeat(20)).into_bytes()
}

const SYNC: WriteOptions = WriteOptions {
    sync: true,
    version: None,
    applied_index: None,
};

/// Writes `n` keys with sync, flushes, writes `tail` more (left in the WAL), closes.
async fn populate(disk: &SimDisk, n: u32, tail: u32) {
    let engine = Engine::open(disk.clone(), Path::new("/db"), options())
        .await
        .expect("open");
    for i in 0..n {
        engine.put(&key(i), &value(i), &SYNC).await.expect("put");
    }
    engine.flush().await.expect("flush");
    for i in n..n + tail {
        engine.put(&key(i), &value(i), &SYNC).await.expect("put");
    }
    engine.close().await.expect("close");
}

fn files_with(disk: &SimDisk, suffix: &str, prefix: &str) -> Vec<PathBuf> {
    disk.paths()
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(suffix) && name.starts_with(prefix)
        })
        .collect()
}

fn assert_names_file(err: &Error, file: &Path) {
    let (path, _) = err
        .location()
        .unwrap_or_else(|| panic!("error without a location: {err}"));
    assert_eq!(path, file, "error names the wrong file: {err}");
}

#[test]
fn bit_flips_in_tables_give_located_errors_never_wrong_data() {
    run_local(|| async {
        let clean = SimDisk::new(1);
        populate(&clean, 400, 0).await;
        let tables = files_with(&clean, ".sst", "");
        assert!(!tables.is_empty());
        let mut detected = 0;
        let mut flips = 0;
        for table in &tables {
            let len = clean.file_len(table).expect("table exists");
            for offset in (0..len).step_by(397) {
                let disk = clean.crash_image();
                disk.flip_bit(table, offset, (offset % 8) as u8);
                flips += 1;
                let engine = match Engine::open(disk, Path::new("/db"), options()).await {
                    Ok(e) => e,
                    Err(e) => {
                        assert_names_file(&e, table);
                        detected += 1;
                        continue;
                    }
                };
                let mut saw_error = false;
                for i in 0..400 {
                    match engine.get(&key(i), &ReadOptions::default()).await {
                        Ok(Some(v)) => {
                            assert_eq!(v, value(i), "flip at {offset} returned wrong data")
                        }
                        Ok(None) => panic!(
                            "flip at {offset} in {} lost key {i} silently",
                            table.display()
                        ),
                        Err(e) => {
                            assert_names_file(&e, table);
                            saw_error = true;
                        }
                    }
                }
                match engine.scan(None, None, &ScanOptions::default()).await {
                    Ok(all) => assert!(
                        !saw_error && all.len() == 400,
                        "a scan over a bad block must fail"
                    ),
                    Err(e) => assert_names_file(&e, table),
                }
                detected += u64::from(saw_error);
            }
        }
        // Flips in zero padding are harmless; most flips land in checked bytes.
        assert!(
            detected * 2 > flips,
            "only {detected} of {flips} flips detected"
        );
    });
}

#[test]
fn bit_flip_in_a_durable_wal_record_is_an_error_naming_file_and_offset() {
    run_local(|| async {
        let clean = SimDisk::new(2);
        populate(&clean, 0, 50).await;
        let mut wal = files_with(&clean, ".log", "wal-");
        wal.sort();
        assert!(!wal.is_empty());
        let disk = clean.crash_image();
        // The first chunk (page 1) of the oldest segment holds the first record;
        // 49 synced chunks follow it.
        disk.flip_bit(&wal[0], 4096 + 45, 1);
        let err = Engine::open(disk, Path::new("/db"), options())
            .await
            .err()
            .expect("open must fail");
        assert_names_file(&err, &wal[0]);
        let (_, offset) = err.location().expect("located");
        assert!(
            (4096..8192).contains(&offset),
            "offset {offset} is not in the damaged chunk"
        );
    });
}

#[test]
fn bit_flip_in_the_manifest_is_an_error_naming_file_and_offset() {
    run_local(|| async {
        let clean = SimDisk::new(3);
        populate(&clean, 300, 0).await;
        // More edits after the first, so the damaged one is not the tail.
        let engine = Engine::open(clean.clone(), Path::new("/db"), options())
            .await
            .expect("open");
        for i in 1000..1300 {
            engine.put(&key(i), &value(i), &SYNC).await.expect("put");
        }
        engine.flush().await.expect("flush");
        engine.close().await.expect("close");
        let manifest = files_with(&clean, ".log", "manifest-");
        let disk = clean.crash_image();
        disk.flip_bit(&manifest[0], 4096 + 40, 2);
        let err = Engine::open(disk, Path::new("/db"), options())
            .await
            .err()
            .expect("open must fail");
        assert_names_file(&err, &manifest[0]);
    });
}

/// Fails the n-th write or sync, then checks poisoning and that recovery keeps
/// every acknowledged write.
async fn eio_case(fail_write: Option<u64>, fail_sync: Option<u64>) -> bool {
    let disk = SimDisk::with_faults(
        9,
        SimFaults {
            fail_write,
            fail_sync,
            ..Default::default()
        },
    );
    let engine = Engine::open(disk.clone(), Path::new("/db"), options()).await;
    let Ok(engine) = engine else { return true };
    let mut acked = Vec::new();
    let mut failed = false;
    for i in 0..600 {
        match engine.put(&key(i), &value(i), &SYNC).await {
            Ok(_) => acked.push(i),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if failed || engine.poisoned().is_some() {
        // Fail closed: every later write is refused with a clear error.
        let err = engine
            .put(b"after", b"x", &SYNC)
            .await
            .expect_err("a poisoned engine refuses writes");
        assert!(matches!(err, Error::Poisoned(_)), "got {err}");
        assert!(engine.poisoned().is_some());
    }
    let _ = engine.close().await;
    let recovered = Engine::open(disk.crash_image(), Path::new("/db"), options())
        .await
        .expect("recovers");
    for &i in &acked {
        assert_eq!(
            recovered
                .get(&key(i), &ReadOptions::default())
                .await
                .expect("get"),
            Some(value(i)),
            "acknowledged key {i} lost (fail_write {fail_write:?}, fail_sync {fail_sync:?})"
        );
    }
    failed
}

#[test]
fn eio_on_write_or_fsync_poisons_and_loses_nothing_acknowledged() {
    run_local(|| async {
        let mut poisoned = 0;
        for n in (0..700).step_by(37) {
            poisoned += u32::from(eio_case(Some(n), None).await);
            poisoned += u32::from(eio_case(None, Some(n)).await);
        }
        assert!(
            poisoned > 20,
            "the injected failures must hit the write path ({poisoned})"
        );
    });
}

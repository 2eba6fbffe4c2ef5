//! The segmented log on both disks: round trips, group commit, torn tails,
//! corruption of durable data, poisoning, segment rolling and truncation.

use ferrisdb_io::executor::run_local;
use ferrisdb_io::log::{Log, LogOptions, Lsn};
use ferrisdb_io::{Disk, Error, RealDisk, SimDisk, SimFaults};
use std::path::{Path, PathBuf};
use std::rc::Rc;

fn small_opts() -> LogOptions {
    LogOptions {
        prefix: "wal".into(),
        segment_bytes_max: 64 * 1024,
        chunk_bytes_max: 16 * 1024,
        preallocate: false,
    }
}

async fn open_collect<D: Disk>(
    disk: D,
    dir: &Path,
    opts: LogOptions,
) -> ferrisdb_io::Result<(Rc<Log<D>>, Vec<(Lsn, Vec<u8>)>)> {
    let mut got = Vec::new();
    let (log, _) = Log::open(disk, dir, opts, 1, |lsn, bytes| {
        got.push((lsn, bytes.to_vec()));
        Ok(())
    })
    .await?;
    Ok((log, got))
}

fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 300) as usize)).into_bytes()
}

#[test]
fn real_disk_round_trip_from_fresh_empty_directory() {
    // Regression for the glommio 0.9 iopoll probe pitfall (DESIGN.md §9): the
    // first DMA file this thread opens is the log's new (empty) segment, and
    // reading it back afterwards must work.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("wal");
    run_local(move || async move {
        let disk = RealDisk::new();
        let (log, got) = open_collect(disk.clone(), &dir, small_opts())
            .await
            .expect("open");
        assert!(got.is_empty());
        for i in 1..=500u64 {
            let lsn = log.append(&payload(i)).expect("append");
            assert_eq!(lsn, i);
            if i % 50 == 0 {
                log.sync(lsn).await.expect("sync");
            }
        }
        log.clone().close().await.expect("close");
        drop(log);
        let (log, got) = open_collect(disk, &dir, small_opts())
            .await
            .expect("reopen");
        assert_eq!(got.len(), 500);
        for (lsn, bytes) in &got {
            assert_eq!(bytes, &payload(*lsn));
        }
        assert!(log.segment_count() > 1, "small segments must have rolled");
        assert_eq!(log.append(b"next").expect("append"), 501);
    });
}

#[test]
fn concurrent_syncs_share_fdatasyncs() {
    run_local(|| async {
        let disk = SimDisk::new(1);
        let dir = PathBuf::from("/db/wal");
        let (log, _) = open_collect(disk.clone(), &dir, small_opts())
            .await
            .expect("open");
        let before = disk.counters().syncs;
        let mut tasks = Vec::new();
        for i in 0..32u64 {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let lsn = log.append(&payload(i)).expect("append");
                log.sync(lsn).await.expect("sync");
                lsn
            }));
        }
        for t in tasks {
            let lsn = t.await;
            assert!(log.durable_lsn() >= lsn);
        }
        let syncs = disk.counters().syncs - before;
        assert!(
            syncs < 32,
            "32 concurrent writers used {syncs} syncs; group commit must batch"
        );
    });
}

#[test]
fn torn_tail_keeps_every_synced_record() {
    for seed in 0..40u64 {
        run_local(move || async move {
            let faults = SimFaults {
                tear_on_crash: true,
                ..Default::default()
            };
            let disk = SimDisk::with_faults(seed, faults);
            let dir = PathBuf::from("/db/wal");
            let (log, _) = open_collect(disk.clone(), &dir, small_opts())
                .await
                .expect("open");
            let mut synced = 0;
            for i in 1..=200u64 {
                let lsn = log.append(&payload(i)).expect("append");
                if i % 7 == 0 {
                    log.sync(lsn).await.expect("sync");
                    synced = lsn;
                } else if i % 5 == 0 {
                    log.write_out(lsn).await.expect("write");
                }
            }
            let crashed = disk.crash_image();
            let (log2, got) = open_collect(crashed.clone(), &dir, small_opts())
                .await
                .expect("recover");
            assert!(
                got.len() as u64 >= synced,
                "seed {seed}: lost synced records: got {} of {synced}",
                got.len()
            );
            for (n, (lsn, bytes)) in got.iter().enumerate() {
                assert_eq!(*lsn, n as u64 + 1);
                assert_eq!(bytes, &payload(*lsn), "seed {seed}: wrong bytes at {lsn}");
            }
            // The recovered log keeps working and survives a second reopen.
            let next = log2.append(b"after").expect("append");
            assert_eq!(next, got.len() as u64 + 1);
            log2.sync(next).await.expect("sync");
            let (_, again) = open_collect(crashed, &dir, small_opts())
                .await
                .expect("reopen");
            assert_eq!(again.len() as u64, next);
            assert_eq!(again.last().expect("record").1, b"after");
            drop(log);
        });
    }
}

#[test]
fn flipped_bit_in_durable_record_is_an_error_naming_file_and_offset() {
    run_local(|| async {
        let disk = SimDisk::new(7);
        let dir = PathBuf::from("/db/wal");
        let (log, _) = open_collect(disk.clone(), &dir, small_opts())
            .await
            .expect("open");
        for i in 1..=40u64 {
            let lsn = log.append(&payload(i)).expect("append");
            log.sync(lsn).await.expect("sync");
        }
        let seg = dir.join("wal-00000000000000000001.log");
        // Byte 42 of the first chunk (page 1) lies inside its first record.
        disk.flip_bit(&seg, 4096 + 42, 3);
        let err = open_collect(disk.clone(), &dir, small_opts())
            .await
            .err()
            .expect("must fail");
        match err {
            Error::Corrupt { path, offset, .. } => {
                assert_eq!(path, seg);
                assert!((4096..8192).contains(&offset), "offset {offset}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }
    });
}

#[test]
fn failed_write_poisons_the_log() {
    run_local(|| async {
        let disk = SimDisk::new(3);
        let dir = PathBuf::from("/db/wal");
        let (log, _) = open_collect(disk.clone(), &dir, small_opts())
            .await
            .expect("open");
        let lsn = log.append(b"durable").expect("append");
        log.sync(lsn).await.expect("sync");
        let writes = disk.counters().writes;
        disk.set_faults(SimFaults {
            fail_write: Some(writes),
            ..Default::default()
        });
        let lsn = log.append(b"lost").expect("append");
        assert!(log.sync(lsn).await.is_err());
        assert!(matches!(log.append(b"more"), Err(Error::Poisoned(_))));
        assert!(matches!(log.sync(lsn).await, Err(Error::Poisoned(_))));
        disk.set_faults(SimFaults::default());
        let (_, got) = open_collect(disk.crash_image(), &dir, small_opts())
            .await
            .expect("recover");
        assert_eq!(got, vec![(1, b"durable".to_vec())]);
    });
}

#[test]
fn truncate_before_removes_only_fully_covered_segments() {
    run_local(|| async {
        let disk = SimDisk::new(5);
        let dir = PathBuf::from("/db/wal");
        let (log, _) = open_collect(disk.clone(), &dir, small_opts())
            .await
            .expect("open");
        for i in 1..=2000u64 {
            let lsn = log.append(&payload(i)).expect("append");
            if i % 100 == 0 {
                log.sync(lsn).await.expect("sync");
            }
        }
        let segments = log.segment_count();
        assert!(segments > 3);
        let removed = log.truncate_before(1500).await.expect("truncate");
        assert!(removed > 0 && removed < segments);
        let mut got = Vec::new();
        Log::open(disk, &dir, small_opts(), 1500, |lsn, _| {
            got.push(lsn);
            Ok(())
        })
        .await
        .expect("reopen");
        assert_eq!(got, (1500..=2000).collect::<Vec<_>>());
    });
}

#[test]
fn oversized_record_is_refused() {
    run_local(|| async {
        let disk = SimDisk::new(2);
        let (log, _) = open_collect(disk, Path::new("/db/wal"), small_opts())
            .await
            .expect("open");
        let max = small_opts().record_bytes_max();
        assert!(log.append(&vec![1u8; max]).is_ok());
        assert!(matches!(
            log.append(&vec![1u8; max + 1]),
            Err(Error::RecordTooLarge { .. })
        ));
        log.sync(1)
            .await
            .expect("a record of exactly the maximum size is written");
    });
}

#[test]
fn relative_directory_paths_work_on_the_real_disk() {
    // Regression: glommio opens paths relative to no directory, so a
    // relative data directory (`./bench-data/demo`) failed with EBADF.
    let tmp = tempfile::tempdir_in(".").expect("tempdir in the working directory");
    let name = tmp.path().file_name().expect("name").to_owned();
    let dir = PathBuf::from(".").join(name).join("wal");
    run_local(move || async move {
        let disk = RealDisk::new();
        let (log, _) = open_collect(disk.clone(), &dir, small_opts())
            .await
            .expect("open");
        let lsn = log.append(b"relative").expect("append");
        log.sync(lsn).await.expect("sync");
        drop(log);
        let (_, got) = open_collect(disk, &dir, small_opts())
            .await
            .expect("reopen");
        assert_eq!(got, vec![(1, b"relative".to_vec())]);
    });
}

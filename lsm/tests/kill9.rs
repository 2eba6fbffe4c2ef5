//! A real crash test: a child process writes with sync on the real io_uring
//! path and is killed with SIGKILL at random moments; after each restart every
//! acknowledged write must be present and nothing unwritten may appear.
//!
//! CI runs a few cycles; for a long run:
//! `FERRISDB_KILL9_CYCLES=500 cargo test --release -p ferrisdb-lsm --test kill9 -- --nocapture`

use ferrisdb_io::RealDisk;
use ferrisdb_io::executor::run_local;
use ferrisdb_lsm::{Engine, Options, ScanOptions, WriteOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TASKS: usize = 4;
const CHILD_DIR: &str = "FERRISDB_KILL9_DIR";
const CHILD_START: &str = "FERRISDB_KILL9_START";
/// Upper bound on a child's lifetime if nobody kills it.
const CHILD_SECONDS_MAX: u64 = 30;

fn options() -> Options {
    Options {
        memtable_bytes_max: 128 * 1024,
        block_bytes: 1024,
        level1_bytes_max: 512 * 1024,
        sst_bytes_target: 128 * 1024,
        l0_compaction_trigger: 2,
        wal_segment_bytes: 256 * 1024,
        ..Options::default()
    }
}

fn key(task: usize, i: u64) -> Vec<u8> {
    format!("t{task}-{i:010}").into_bytes()
}

fn value(task: usize, i: u64) -> Vec<u8> {
    format!("value-{task}-{i}-{}", "w".repeat((i % 200) as usize)).into_bytes()
}

fn parse_key(k: &[u8]) -> Option<(usize, u64)> {
    let s = std::str::from_utf8(k).ok()?.strip_prefix('t')?;
    let (task, i) = s.split_once('-')?;
    Some((task.parse().ok()?, i.parse().ok()?))
}

/// The writer, run in a child process: TASKS concurrent tasks, each writing
/// its own keys in order with sync, printing `ack TASK I` after each ack.
#[test]
#[ignore = "child process of kill9_loses_no_acknowledged_write"]
fn kill9_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let start: Vec<u64> = std::env::var(CHILD_START)
        .expect("start indexes")
        .split(',')
        .map(|s| s.parse().expect("number"))
        .collect();
    run_local(move || async move {
        let engine = Engine::open(RealDisk::new(), Path::new(&dir), options())
            .await
            .expect("child open");
        let deadline = Instant::now() + Duration::from_secs(CHILD_SECONDS_MAX);
        let mut tasks = Vec::new();
        for (task, &first) in start.iter().enumerate() {
            let engine = engine.clone();
            tasks.push(glommio::spawn_local(async move {
                let w = WriteOptions {
                    sync: true,
                    ..Default::default()
                };
                let mut i = first;
                while Instant::now() < deadline {
                    engine
                        .put(&key(task, i), &value(task, i), &w)
                        .await
                        .expect("child put");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {task} {i}").expect("stdout");
                    out.flush().expect("stdout");
                    i += 1;
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    });
}

/// Reads back the directory: per task, the first index not present; checks
/// every key present is one the child could have written, with its value.
fn verify(dir: &Path, acked: &[Option<u64>], attempted_from: &[u64]) -> Vec<u64> {
    let dir = dir.to_path_buf();
    let acked = acked.to_vec();
    let from = attempted_from.to_vec();
    run_local(move || async move {
        let engine = Engine::open(RealDisk::new(), &dir, options())
            .await
            .expect("reopen after SIGKILL");
        let all = engine
            .scan(None, None, &ScanOptions::default())
            .await
            .expect("scan");
        let mut next = vec![0u64; TASKS];
        for (k, v) in &all {
            let (task, i) = parse_key(k).unwrap_or_else(|| panic!("unexpected key {k:?}"));
            assert_eq!(v, &value(task, i), "wrong value for {k:?}");
            assert_eq!(
                i, next[task],
                "task {task}: key {i} present but {} missing",
                next[task]
            );
            next[task] = i + 1;
        }
        for task in 0..TASKS {
            if let Some(a) = acked[task] {
                assert!(
                    next[task] > a,
                    "task {task}: acknowledged key {a} lost (have up to {})",
                    next[task]
                );
            }
            // Each task has at most one write in flight beyond its last ack.
            let limit = acked[task].map_or(from[task], |a| a + 1);
            assert!(
                next[task] <= limit + 1,
                "task {task}: keys beyond anything written ({} > {limit})",
                next[task]
            );
        }
        engine.close().await.expect("close");
        next
    })
}

fn run_cycle(dir: &Path, start: &[u64], kill_after: Duration) -> Vec<Option<u64>> {
    let start_arg = start
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "kill9_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_START, start_arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let acked = Arc::new(Mutex::new(vec![None; TASKS]));
    let first_ack = Arc::new(Mutex::new(None::<Instant>));
    let stdout = child.stdout.take().expect("piped");
    let reader = {
        let acked = acked.clone();
        let first_ack = first_ack.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(rest) = line.strip_prefix("ack ") else {
                    continue;
                };
                let (t, i) = rest.split_once(' ').expect("ack line");
                let (t, i): (usize, u64) = (t.parse().expect("task"), i.parse().expect("index"));
                acked.lock().expect("lock")[t] = Some(i);
                first_ack
                    .lock()
                    .expect("lock")
                    .get_or_insert_with(Instant::now);
            }
        })
    };
    // Kill a random time after writes started flowing (bounded wait).
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        let started = *first_ack.lock().expect("lock");
        match started {
            Some(t) if t.elapsed() >= kill_after => break,
            _ if Instant::now() > give_up => panic!("child produced no acknowledgement in 20 s"),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap child");
    reader.join().expect("reader thread");

    acked.lock().expect("lock").clone()
}

#[test]
fn kill9_loses_no_acknowledged_write() {
    let cycles: u64 = std::env::var("FERRISDB_KILL9_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().join("db");
    let mut seed = 0x5EED_u64 ^ std::process::id() as u64;
    let mut start = vec![0u64; TASKS];
    let mut total_acked = 0;
    for cycle in 0..cycles {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = Duration::from_millis(50 + (seed >> 33) % 400);
        let acked = run_cycle(&dir, &start, kill_after);
        let next = verify(&dir, &acked, &start);
        total_acked += next.iter().zip(&start).map(|(n, s)| n - s).sum::<u64>();
        eprintln!(
            "cycle {cycle}: killed after {kill_after:?}, acked {acked:?}, recovered up to {next:?}"
        );
        start = next;
    }
    assert!(total_acked > 0, "the children must have written something");
}

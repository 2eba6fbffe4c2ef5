//! `ferrisdb inspect` end to end: a real data directory written by the engine
//! (io_uring, O_DIRECT), then the built binary run against it, clean and with
//! one byte flipped, truncated or replaced.

use ferrisdb_io::RealDisk;
use ferrisdb_io::executor::run_local;
use ferrisdb_lsm::{Engine, Options, WriteOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Keys written before the first flush: `key000000..key000199`.
const FIRST_PUTS: u32 = 200;
/// Keys written before the second flush: `key000200..key000299`.
const SECOND_PUTS: u32 = 100;
/// Keys left only in the WAL: `key000300..key000349`.
const WAL_ONLY_PUTS: u32 = 50;
/// One delete and one delete_range, both before the first flush.
const DELETES: u64 = 2;
const WAL_RECORDS: u64 = (FIRST_PUTS + SECOND_PUTS + WAL_ONLY_PUTS) as u64 + DELETES;
/// LSN of the last record the second flush covered.
const FLUSHED_LSN: u64 = (FIRST_PUTS + SECOND_PUTS) as u64 + DELETES;

const SYNC: WriteOptions = WriteOptions {
    sync: true,
    version: None,
    applied_index: None,
};

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}-{}", "v".repeat((i % 40) as usize)).into_bytes()
}

/// Writes the reference data directory with the engine, once per test run;
/// every test works on its own copy.
fn pristine() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect-cli-data");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create data dir");
        let engine_dir = dir.clone();
        run_local(move || async move {
            let opts = Options {
                memtable_bytes_max: 64 * 1024,
                block_bytes: 1024,
                // Segments are preallocated; keep the per-test copies small.
                wal_segment_bytes: 8 << 20,
                ..Options::default()
            };
            let e = Engine::open(RealDisk::new(), &engine_dir, opts).await?;
            for i in 0..FIRST_PUTS {
                e.put(&key(i), &value(i), &SYNC).await?;
            }
            e.delete(&key(5), &SYNC).await?;
            e.delete_range(&key(100), &key(110), &SYNC).await?;
            e.flush().await?;
            for i in FIRST_PUTS..FIRST_PUTS + SECOND_PUTS {
                e.put(&key(i), &value(i), &SYNC).await?;
            }
            e.flush().await?;
            for i in FIRST_PUTS + SECOND_PUTS..FIRST_PUTS + SECOND_PUTS + WAL_ONLY_PUTS {
                e.put(&key(i), &value(i), &SYNC).await?;
            }
            e.close().await
        })
        .expect("write the data directory");
        dir
    })
}

/// A private copy of the reference directory.
fn fresh_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(pristine()).expect("list data dir") {
        let entry = entry.expect("dir entry");
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).expect("copy file");
    }
    tmp
}

fn ferrisdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrisdb"))
        .args(args)
        .output()
        .expect("run ferrisdb")
}

fn inspect(args: &[&str]) -> Output {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    ferrisdb(&all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).expect("read file");
    bytes[at as usize] ^= 0x5a;
    std::fs::write(path, bytes).expect("write file");
}

/// Asserts a failed run printed `error: <file>: offset <N>: ...` naming
/// `file`, and returns N.
fn error_offset(o: &Output, file: &Path) -> u64 {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
    let prefix = format!("error: {}: offset ", file.display());
    let rest = err
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in: {err}"));
    rest.split(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in: {err}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn verify_dir_passes_on_a_clean_directory() {
    let dir = fresh_copy();
    let o = inspect(&["verify-dir", s(dir.path())]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    let tables = files_ending(dir.path(), ".sst");
    assert_eq!(tables.len(), 2, "two flushes make two tables");
    for file in tables.iter().chain(&files_ending(dir.path(), ".log")) {
        assert!(
            text.contains(&format!("ok: {}", file.display())),
            "{} not checked:\n{text}",
            file.display()
        );
    }
    assert!(text.contains("every checksum matches"), "{text}");

    let report = json(&inspect(&["verify-dir", s(dir.path()), "--json"]));
    assert_eq!(report["ok"], Value::Bool(true));
    assert_eq!(u(&report["summary"]["tables"]), 2);
    assert_eq!(u(&report["summary"]["wal_segments"]), 1);
    assert!(report["error"].is_null());
}

#[test]
fn inspect_sst_shows_properties_index_and_entries() {
    let dir = fresh_copy();
    let tables = files_ending(dir.path(), ".sst");
    let first = &tables[0];
    let o = inspect(&["sst", s(first), "--entries", "--verbose"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("properties: 201 entries"), "{text}");
    assert!(text.contains("smallest \"key000000\""), "{text}");
    assert!(text.contains("largest \"key000199\""), "{text}");
    assert!(text.contains("\"key000005\" @"), "{text}");
    assert!(text.contains(" delete value 0 bytes"), "{text}");

    let report = json(&inspect(&[
        "sst",
        s(first),
        "--json",
        "--verbose",
        "--entries",
    ]));
    let props = &report["properties"];
    assert_eq!(u(&props["entries"]), u64::from(FIRST_PUTS) + 1);
    assert_eq!(u(&props["deletes"]), 1);
    let blocks = u(&props["data_blocks"]);
    assert!(blocks > 1, "1 KiB blocks split 200 entries");
    assert_eq!(u(&report["index"]["count"]), blocks);
    assert_eq!(
        report["index"]["entries"]
            .as_array()
            .expect("index entries")
            .len() as u64,
        blocks
    );
    let entries = report["entries"].as_array().expect("entries");
    assert_eq!(entries.len() as u64, u64::from(FIRST_PUTS) + 1);
    assert_eq!(entries[0]["key"], "key000000");
    assert!(u(&report["filter"]["bits"]) >= 64);
    assert!(u(&report["filter"]["hash_count"]) >= 1);

    let second = json(&inspect(&["sst", s(&tables[1]), "--json"]));
    assert_eq!(u(&second["properties"]["entries"]), u64::from(SECOND_PUTS));
    assert_eq!(second["properties"]["smallest_key"], "key000200");
    assert!(second["entries"].is_null(), "entries only with --entries");
}

#[test]
fn inspect_wal_shows_every_record_and_batch() {
    let dir = fresh_copy();
    let wals = files_ending(dir.path(), ".log")
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("wal-"))
        })
        .collect::<Vec<_>>();
    assert_eq!(wals.len(), 1);
    let o = inspect(&["wal", s(&wals[0])]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(&format!("{WAL_RECORDS} records")), "{text}");
    assert!(text.contains("put \"key000349\" = \"value-349-"), "{text}");
    assert!(text.contains("delete \"key000005\""), "{text}");
    assert!(
        text.contains("delete_range [\"key000100\", \"key000110\")"),
        "{text}"
    );

    let report = json(&inspect(&["wal", s(dir.path()), "--json"]));
    assert_eq!(u(&report["records"]), WAL_RECORDS);
    assert_eq!(u(&report["next_lsn"]), WAL_RECORDS + 1);
    assert!(report["torn_tail"].is_null());
    let chunks = report["segments"][0]["chunks"].as_array().expect("chunks");
    let records: Vec<&Value> = chunks
        .iter()
        .flat_map(|c| c["records"].as_array().expect("records"))
        .collect();
    assert_eq!(records.len() as u64, WAL_RECORDS);
    assert_eq!(u(&records[0]["lsn"]), 1);
    let op = &records[0]["batch"]["ops"][0];
    assert_eq!(op["op"], "put");
    assert_eq!(op["key"], "key000000");
    assert_eq!(u(&records[0]["batch"]["op_count"]), 1);
}

#[test]
fn inspect_manifest_shows_edits_and_final_state() {
    let dir = fresh_copy();
    let o = inspect(&["manifest", s(dir.path())]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("L0: 2 tables"), "{text}");
    assert!(
        text.contains("add tombstone [\"key000100\", \"key000110\")"),
        "{text}"
    );

    let report = json(&inspect(&["manifest", s(dir.path()), "--json"]));
    let edits = report["edits"].as_array().expect("edits");
    let added: usize = edits
        .iter()
        .map(|e| e["added"].as_array().expect("added").len())
        .sum();
    assert_eq!(added, 2, "one table per flush");
    let state = &report["state"];
    assert_eq!(u(&state["files"]), 2);
    assert_eq!(state["levels"][0]["files"].as_array().expect("L0").len(), 2);
    assert_eq!(u(&state["wal_flushed_lsn"]), FLUSHED_LSN);
    assert_eq!(state["tombstones"].as_array().expect("tombstones").len(), 1);
    assert!(u(&state["next_file_number"]) > 2);
}

#[test]
fn a_flipped_byte_in_a_data_block_fails_verify_dir_at_that_block() {
    let dir = fresh_copy();
    let table = files_ending(dir.path(), ".sst").remove(0);
    let report = json(&inspect(&["sst", s(&table), "--json", "--verbose"]));
    let block = &report["index"]["entries"][1];
    let (offset, len) = (u(&block["offset"]), u(&block["len"]));
    flip_byte(&table, offset + len / 2);

    let o = inspect(&["verify-dir", s(dir.path())]);
    let at = error_offset(&o, &table);
    assert!(
        (offset..offset + len).contains(&at),
        "offset {at} outside the damaged block {offset}+{len}"
    );
    let o = inspect(&["sst", s(&table)]);
    assert_eq!(error_offset(&o, &table), at);

    let report: Value =
        serde_json::from_slice(&inspect(&["verify-dir", s(dir.path()), "--json"]).stdout)
            .expect("JSON even on failure");
    assert_eq!(report["ok"], Value::Bool(false));
    assert_eq!(u(&report["problem"]["offset"]), at);
}

#[test]
fn a_flipped_byte_in_a_synced_wal_record_fails_verify_dir() {
    let dir = fresh_copy();
    let report = json(&inspect(&["wal", s(dir.path()), "--json"]));
    let segment = &report["segments"][0];
    let wal = PathBuf::from(segment["file"].as_str().expect("file"));
    let record = &segment["chunks"][0]["records"][0];
    let offset = u(&record["offset"]);
    // Inside the payload; every later record was synced after this one.
    flip_byte(&wal, offset + 8 + 3);

    let o = inspect(&["verify-dir", s(dir.path())]);
    assert_eq!(error_offset(&o, &wal), offset);
    let o = inspect(&["wal", s(&wal)]);
    assert_eq!(error_offset(&o, &wal), offset);
}

#[test]
fn a_torn_wal_tail_is_a_note_not_a_failure() {
    let dir = fresh_copy();
    let report = json(&inspect(&["wal", s(dir.path()), "--json"]));
    let segment = &report["segments"][0];
    let wal = PathBuf::from(segment["file"].as_str().expect("file"));
    let last = segment["chunks"]
        .as_array()
        .expect("chunks")
        .last()
        .expect("a chunk");
    let chunk_at = u(&last["offset"]);
    flip_byte(&wal, chunk_at + 40);

    let o = inspect(&["verify-dir", s(dir.path())]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let note = format!(
        "torn tail at {} offset {chunk_at}: recovery will cut it",
        wal.display()
    );
    assert!(stdout(&o).contains(&note), "{}", stdout(&o));
    let report = json(&inspect(&["wal", s(&wal), "--json"]));
    assert_eq!(u(&report["records"]), WAL_RECORDS - 1);
}

#[test]
fn a_wal_cut_at_a_chunk_boundary_before_the_flushed_lsn_is_a_note() {
    let dir = fresh_copy();
    let report = json(&inspect(&["wal", s(dir.path()), "--json"]));
    let segment = &report["segments"][0];
    let wal = PathBuf::from(segment["file"].as_str().expect("file"));
    let second_chunk = u(&segment["chunks"][1]["offset"]);
    let bytes = std::fs::read(&wal).expect("read");
    std::fs::write(&wal, &bytes[..second_chunk as usize]).expect("truncate");

    let o = inspect(&["verify-dir", s(dir.path())]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "the WAL ends at LSN 1, before the manifest's flushed LSN {FLUSHED_LSN}"
        )),
        "{text}"
    );
}

#[test]
fn a_flipped_byte_in_a_manifest_record_fails_verify_dir() {
    let dir = fresh_copy();
    let report = json(&inspect(&["manifest", s(dir.path()), "--json"]));
    let edits = report["edits"].as_array().expect("edits");
    assert!(
        edits.len() >= 2,
        "a later synced edit proves the first durable"
    );
    let file = PathBuf::from(edits[0]["file"].as_str().expect("file"));
    let offset = u(&edits[0]["offset"]);
    flip_byte(&file, offset + 8 + 2);

    let o = inspect(&["verify-dir", s(dir.path())]);
    assert_eq!(error_offset(&o, &file), offset);
    let o = inspect(&["manifest", s(dir.path())]);
    assert_eq!(error_offset(&o, &file), offset);
}

#[test]
fn a_truncated_table_fails_with_an_error_not_a_panic() {
    let dir = fresh_copy();
    let table = files_ending(dir.path(), ".sst").remove(0);
    let len = std::fs::metadata(&table).expect("stat").len();
    let bytes = std::fs::read(&table).expect("read");
    std::fs::write(&table, &bytes[..(len / 2) as usize]).expect("truncate");

    let o = inspect(&["verify-dir", s(dir.path())]);
    error_offset(&o, &table);
    let o = inspect(&["sst", s(&table)]);
    error_offset(&o, &table);

    std::fs::write(&table, b"").expect("empty");
    let o = inspect(&["sst", s(&table)]);
    assert_eq!(error_offset(&o, &table), 0);
    assert!(stderr(&o).contains("too short"), "{}", stderr(&o));
}

#[test]
fn random_bytes_named_like_a_table_are_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (name, len) in [
        ("00000000000000000007.sst", 12_288usize),
        ("x.sst", 64),
        ("y.sst", 3),
    ] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let o = inspect(&["sst", s(&path)]);
        error_offset(&o, &path);
    }
    // Garbage named like a log segment is an error too.
    let wal = dir.path().join("wal-00000000000000000001.log");
    std::fs::write(&wal, vec![0xa5; 5000]).expect("write");
    let o = inspect(&["wal", s(&wal)]);
    assert_eq!(error_offset(&o, &wal), 0);
    assert!(stderr(&o).contains("magic"), "{}", stderr(&o));
    let o = inspect(&["manifest", s(&wal)]);
    assert_eq!(error_offset(&o, &wal), 0);

    // In a data directory, an unnamed table is an orphan: a note, not a failure.
    let data = fresh_copy();
    let orphan = data.path().join("00000000000000000099.sst");
    std::fs::copy(dir.path().join("00000000000000000007.sst"), &orphan).expect("copy");
    let o = inspect(&["verify-dir", s(data.path())]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert!(stdout(&o).contains("orphan table"), "{}", stdout(&o));
}

#[test]
fn a_table_named_by_the_manifest_but_missing_fails_verify_dir() {
    let dir = fresh_copy();
    let table = files_ending(dir.path(), ".sst").remove(1);
    std::fs::remove_file(&table).expect("remove");
    let o = inspect(&["verify-dir", s(dir.path())]);
    error_offset(&o, &table);
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
}

#[test]
fn a_nonexistent_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let o = inspect(&["verify-dir", s(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(s(&missing)), "{err}");
    assert!(err.contains("No such file"), "{err}");

    let o = inspect(&["verify-dir", s(dir.path())]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an empty directory has no manifest"
    );
    assert!(stderr(&o).contains("no manifest"), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_with_status_2() {
    assert_eq!(inspect(&["verify-dir"]).status.code(), Some(2));
    assert_eq!(inspect(&["frobnicate", "x"]).status.code(), Some(2));
    assert_eq!(ferrisdb(&[]).status.code(), Some(2));
}

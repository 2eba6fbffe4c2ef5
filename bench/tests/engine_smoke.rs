//! Runs `ferrisdb-bench engine` end to end with tiny sizes, so the benchmark
//! never rots: every benchmark prints a db_bench line, the JSON holds every
//! result with the right op counts, and reads find what fills wrote.

mod support;

use support::{bench_err, bench_ok, read_json};

const BENCHMARKS: [&str; 9] = [
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "readseq",
    "seekrandom",
    "readwhilewriting",
    "fillsync",
];

/// `name : x micros/op n ops/sec;...` as db_bench prints it.
fn is_db_bench_line(line: &str, name: &str) -> bool {
    let Some(rest) = line.strip_prefix(name) else {
        return false;
    };
    let Some(rest) = rest.trim_start().strip_prefix(": ") else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.len() >= 4
        && fields[0].parse::<f64>().is_ok()
        && fields[0].split('.').nth(1).is_some_and(|d| d.len() == 3)
        && fields[1] == "micros/op"
        && fields[2].parse::<u64>().is_ok()
        && fields[3].starts_with("ops/sec;")
}

#[test]
fn every_benchmark_reports_in_db_bench_format_and_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("ferrisdb");
    let json = tmp.path().join("out.json");
    let stdout = bench_ok(&[
        "engine",
        "--num=2000",
        &format!("--benchmarks={},fillsync[threads=8]", BENCHMARKS.join(",")),
        &format!("--db={}", db.display()),
        &format!("--json={}", json.display()),
        "--fsync_probe_secs=0.1",
    ]);

    for name in BENCHMARKS {
        assert!(
            stdout.lines().any(|l| is_db_bench_line(l, name)),
            "no db_bench line for {name}:\n{stdout}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| is_db_bench_line(l, "fillsync[threads=8]"))
    );
    let readrandom = stdout
        .lines()
        .find(|l| l.starts_with("readrandom "))
        .expect("readrandom");
    assert!(readrandom.ends_with("(2000 of 2000 found)"), "{readrandom}");
    let readmissing = stdout
        .lines()
        .find(|l| l.starts_with("readmissing "))
        .expect("readmissing");
    assert!(readmissing.ends_with("(0 of 2000 found)"), "{readmissing}");
    assert!(stdout.contains("Microseconds per write:\nCount: 2000 Average: "));
    assert!(stdout.contains("Percentiles: P50: "));
    assert!(stdout.lines().any(|l| l.starts_with("fsync-probe  : ")));

    let doc = read_json(&json);
    let results = doc["results"].as_array().expect("results");
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    let mut want = BENCHMARKS.to_vec();
    want.push("fillsync");
    assert_eq!(names, want);
    for r in results {
        let name = r["name"].as_str().expect("name");
        let ops = r["ops"].as_u64().expect("ops");
        // fillsync does num/100 sync writes, at least 1000.
        let want_ops = if name == "fillsync" { 1000 } else { 2000 };
        assert_eq!(ops, want_ops, "{name}");
        assert_eq!(r["engine"], "ferrisdb");
        for field in [
            "ops_per_sec",
            "micros_per_op",
            "p50_micros",
            "p99_micros",
            "p9999_micros",
            "write_amp",
        ] {
            assert!(
                r[field].as_f64().is_some_and(|v| v > 0.0),
                "{name}.{field} = {}",
                r[field]
            );
        }
        assert!(
            r["db_bytes"].as_u64().is_some_and(|b| b > 0),
            "{name}.db_bytes"
        );
        assert!(
            r["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0),
            "{name}.peak_rss_bytes"
        );
    }
    assert_eq!(results[3]["found"], 2000);
    assert_eq!(results[4]["found"], 0);
    assert_eq!(results[4]["not_found"], 2000);
    assert_eq!(results[9]["threads"], 8);
    assert!(
        results[7]["background_writes"]
            .as_u64()
            .is_some_and(|w| w > 0)
    );
    assert_eq!(doc["config"]["num"], 2000);
    assert!(doc["machine"]["nproc"].as_u64().is_some_and(|n| n >= 1));
    assert!(
        doc["machine"]["kernel"]
            .as_str()
            .is_some_and(|k| k.starts_with("Linux"))
    );
    assert!(
        doc["device_probe"]["ops_per_sec"]
            .as_f64()
            .is_some_and(|v| v > 0.0)
    );

    assert!(db.is_dir(), "the DB directory is left in place");
    assert!(
        std::fs::read_dir(&db)
            .expect("read db dir")
            .next()
            .is_some()
    );
}

#[test]
fn use_existing_db_skips_fills_and_reads_what_is_there() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    let db_flag = format!("--db={}", db.display());
    let run = |extra: &[&str]| {
        let mut args = vec!["engine", "--num=500", "--histogram=0", &db_flag];
        args.extend_from_slice(extra);
        bench_ok(&args)
    };
    run(&["--benchmarks=fillrandom"]);
    let text = run(&["--benchmarks=fillseq,readrandom", "--use_existing_db"]);
    assert!(
        text.contains("fillseq      : skipped (--use_existing_db is true)"),
        "{text}"
    );
    assert!(text.contains("(500 of 500 found)"), "{text}");
    assert!(
        !text.contains("Microseconds per"),
        "--histogram=0 prints no histogram"
    );
}

#[test]
fn bad_flags_fail_with_a_message() {
    let stderr = bench_err(&[
        "engine",
        "--num=100000",
        "--key_size=3",
        "--benchmarks=fillseq",
    ]);
    assert!(stderr.contains("--key_size"), "{stderr}");
}

//! `ferrisdb-bench ycsb` end to end against real `ferrisdb` nodes with
//! tiny parameters, so YCSB never rots: the standard A–F sequence (load
//! once, then run A, B, C, F, D, E, as YCSB's documentation runs them)
//! with verified data against a running node, an open-loop run with a
//! spawned node, `plot` on the results, and bad input.

mod support;

use std::path::Path;
use support::{Node, bench_err, bench_ok, ferrisdb_binary, read_json};

fn workload(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads")
        .join(name)
        .display()
        .to_string()
}

/// Record size small and data verified on every read.
const PROPS: [&str; 8] = [
    "-p",
    "recordcount=300",
    "-p",
    "fieldcount=4",
    "-p",
    "fieldlength=20",
    "-p",
    "dataintegrity=true",
];

/// `[SECTION], metric, value` lines of YCSB's output.
fn metric(stdout: &str, section: &str, name: &str) -> Option<f64> {
    let prefix = format!("[{section}], {name}, ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{section} {name}: {v}"))
        })
}

#[test]
fn core_workloads_load_once_then_run_a_to_f_against_a_running_node() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = Node::start(tmp.path(), "user5");
    let target = ["--endpoint", &node.endpoint, "--insecure", "--threads", "8"];
    let run = |phase: &str, name: &str, extra: &[&str]| -> String {
        let json = tmp.path().join(format!("{name}-{phase}.json"));
        let mut args = vec!["ycsb", phase, "-P"];
        let file = workload(name);
        args.push(&file);
        args.extend_from_slice(&PROPS);
        args.extend_from_slice(&target);
        args.extend_from_slice(extra);
        let json_flag = format!("--json={}", json.display());
        args.push(&json_flag);
        bench_ok(&args)
    };

    let load = run("load", "workloada", &[]);
    assert_eq!(metric(&load, "INSERT", "Return=OK"), Some(300.0), "{load}");
    assert!(metric(&load, "OVERALL", "Throughput(ops/sec)").is_some_and(|t| t > 0.0));

    // Expected operation sections of each workload's run.
    let expected: [(&str, &[&str]); 6] = [
        ("workloada", &["READ", "UPDATE"]),
        ("workloadb", &["READ", "UPDATE"]),
        ("workloadc", &["READ"]),
        ("workloadf", &["READ", "UPDATE", "READ-MODIFY-WRITE"]),
        ("workloadd", &["READ", "INSERT"]),
        ("workloade", &["SCAN", "INSERT"]),
    ];
    for (name, sections) in expected {
        let out = run(
            "run",
            name,
            &[
                "-p",
                "operationcount=400",
                "--hgrm-dir",
                &tmp.path().join("hgrm").display().to_string(),
            ],
        );
        assert!(
            out.contains(&format!("=== run phase: {name} (8 threads, closed loop)")),
            "{out}"
        );
        assert!(metric(&out, "OVERALL", "RunTime(ms)").is_some(), "{out}");
        let mut ok = 0.0;
        for op in ["READ", "UPDATE", "INSERT", "SCAN", "READ-MODIFY-WRITE"] {
            let count = metric(&out, op, "Return=OK");
            assert_eq!(
                count.is_some(),
                sections.contains(&op),
                "{name} {op}:\n{out}"
            );
            if let Some(n) = count {
                ok += n;
                assert_eq!(
                    metric(&out, op, "Operations"),
                    Some(n),
                    "{name} {op}: all OK"
                );
                let p99 = metric(&out, op, "99thPercentileLatency(us)").expect("p99");
                let p50 = metric(&out, op, "50thPercentileLatency(us)").expect("p50");
                assert!(p99 >= p50 && p50 > 0.0, "{name} {op}: p50 {p50} p99 {p99}");
            }
        }
        // Every operation returned OK: nothing failed, nothing was missing
        // (reads verified every field against what load wrote).
        assert!(
            !out.contains("-FAILED]") && !out.contains("Return=NOT_FOUND"),
            "{out}"
        );
        if name == "workloadf" {
            // A read-modify-write is also measured as a READ and an UPDATE.
            let rmw = metric(&out, "READ-MODIFY-WRITE", "Return=OK").expect("rmw");
            assert_eq!(metric(&out, "UPDATE", "Return=OK"), Some(rmw));
            assert_eq!(metric(&out, "READ", "Return=OK"), Some(400.0));
            ok -= 2.0 * rmw;
        }
        assert_eq!(ok, 400.0, "{name}: operations add up:\n{out}");

        let doc = read_json(&tmp.path().join(format!("{name}-run.json")));
        let phase = &doc["phases"][0];
        assert_eq!(
            (phase["phase"].as_str(), phase["operations"].as_u64()),
            (Some("run"), Some(400))
        );
        assert_eq!(phase["errors"], 0);
        assert!(phase["series"].as_array().is_some_and(|s| !s.is_empty()));
        assert!(
            phase["overall"]["response"]["spectrum"]
                .as_array()
                .is_some_and(|s| s.len() > 5)
        );
        assert_eq!(doc["properties"]["recordcount"], "300");
        assert_eq!(doc["label"], name);
    }
    let read_hgrm =
        std::fs::read_to_string(tmp.path().join("hgrm/workloadc-run-READ.hgrm")).expect("hgrm");
    assert!(read_hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    assert!(
        read_hgrm.contains("Total count    =          400]"),
        "{read_hgrm}"
    );

    // Pictures of two runs, with their overlay.
    let plots = tmp.path().join("plots");
    let listed = bench_ok(&[
        "plot",
        &tmp.path().join("workloada-run.json").display().to_string(),
        &tmp.path().join("workloade-run.json").display().to_string(),
        "-o",
        &plots.display().to_string(),
    ]);
    for stem in [
        "workloada-run-latency",
        "workloada-run-timeline",
        "workloade-run-latency",
        "overlay-latency",
    ] {
        let png = std::fs::read(plots.join(format!("{stem}.png"))).expect("png written");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{stem}.png"
        );
        let svg = std::fs::read_to_string(plots.join(format!("{stem}.svg"))).expect("svg written");
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{stem}.svg");
        assert!(listed.contains(&format!("{stem}.png")), "{listed}");
    }
    let spectrum = std::fs::read_to_string(plots.join("workloada-run-latency.svg")).expect("svg");
    for text in ["99.9%", "READ (", "UPDATE (", "latency (ms)"] {
        assert!(spectrum.contains(text), "the spectrum shows {text}");
    }
    drop(node);
}

#[test]
fn an_open_loop_run_on_a_spawned_node_reports_response_and_service_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("c.json");
    let stdout = bench_ok(&[
        "ycsb",
        "run",
        &format!("--spawn-node={}", ferrisdb_binary().display()),
        "--node_settle_secs=5",
        &format!("--data-dir={}", tmp.path().display()),
        "-P",
        &workload("workloadc"),
        "-p",
        "recordcount=200",
        "-p",
        "operationcount=300",
        "--threads=4",
        "--target=1000",
        "--progress=lines",
        "--status-secs=0.1",
        &format!("--json={}", json.display()),
    ]);
    // The spawned node is empty, so `run` loads it first, closed loop.
    assert!(
        stdout.contains("=== load phase: workloadc (4 threads, closed loop)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("=== run phase: workloadc (4 threads, open loop at 1000 ops/s)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("[Intended-INSERT]"),
        "the load ran closed loop: {stdout}"
    );
    assert!(
        stdout.contains("[Intended-READ], 99thPercentileLatency(us), "),
        "{stdout}"
    );
    assert_eq!(metric(&stdout, "READ", "Return=OK"), Some(300.0));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("node: pid ") && l.contains("stopped"))
    );

    let doc = read_json(&json);
    let phases = doc["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 2);
    let run = &phases[1];
    assert_eq!(run["target_ops_per_sec"], 1000.0);
    // 300 operations due 1 ms apart take 0.3 s at least.
    assert!(
        run["runtime_ms"].as_f64().is_some_and(|ms| ms >= 295.0),
        "{}",
        run["runtime_ms"]
    );
    assert!(
        run["throughput_ops_per_sec"]
            .as_f64()
            .is_some_and(|t| t <= 1020.0)
    );
    let read = &run["operations_by_type"][0];
    assert_eq!(read["name"], "READ");
    // Response time runs from an operation's due time, service time from
    // its sending. In the open loop a worker sends a due operation only
    // once its (millisecond) timer has fired, so on average the response
    // time is the longer; in the closed-loop load the two are one time.
    let mean = |l: &serde_json::Value, side: &str| {
        assert_eq!(l[side]["count"], l["service"]["count"], "{side} count");
        l[side]["mean_us"].as_f64().expect("mean")
    };
    let (response, service) = (mean(&read["ok"], "response"), mean(&read["ok"], "service"));
    assert!(
        response > service && service > 0.0,
        "open loop: mean response {response} µs, service {service} µs"
    );
    let insert = &phases[0]["operations_by_type"][0];
    assert_eq!(insert["name"], "INSERT");
    assert_eq!(
        mean(&insert["ok"], "response"),
        mean(&insert["ok"], "service"),
        "closed loop: response time is service time"
    );
    assert!(phases[0]["target_ops_per_sec"].is_null());
    let leftovers = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("ferrisdb-node-")
                && e.path().is_dir()
        })
        .count();
    assert_eq!(leftovers, 0, "the spawned node's data directory is removed");
}

#[test]
fn bad_workloads_fail_with_one_clear_line_before_anything_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad_file = tmp.path().join("bad");
    std::fs::write(&bad_file, "recordcount=10\nreadproportion=lots\n").expect("write");
    let a = workload("workloada");
    let spawn = "--spawn-node=/nonexistent/ferrisdb";
    let bad = bad_file.display().to_string();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["-P", &a, "-p", "readproprtion=0.5"],
            "-p: unknown property `readproprtion` (did you mean `readproportion`?)".into(),
        ),
        (
            vec!["-P", &a, "-p", "recordcount=ten"],
            "-p: recordcount=ten: not a whole number".into(),
        ),
        (
            vec!["-P", &a, "-p", "fieldlength=20000"],
            "above the node's value limit of 100000 bytes".into(),
        ),
        (
            vec!["-P", &a, "-p", "requestdistribution=exponential"],
            "not supported here; one of uniform, zipfian, latest, hotspot".into(),
        ),
        (
            vec!["-P", &a, "-p", "operationcount=0"],
            "operationcount is 0 or not set".into(),
        ),
        (
            vec!["-P", &bad],
            format!("{bad}:2: readproportion=lots: not a number"),
        ),
    ];
    for (extra, want) in &cases {
        let mut args = vec!["ycsb", "run", spawn];
        args.extend(extra.iter().copied());
        let stderr = bench_err(&args);
        assert!(stderr.contains(want.as_str()), "{extra:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    let missing = bench_err(&["ycsb", "load", spawn, "-P", "/nonexistent/workloadz"]);
    assert!(missing.contains("/nonexistent/workloadz"), "{missing}");

    let not_result = tmp.path().join("x.json");
    std::fs::write(&not_result, "{\"results\": []}").expect("write");
    let stderr = bench_err(&[
        "plot",
        &not_result.display().to_string(),
        "-o",
        &tmp.path().display().to_string(),
    ]);
    assert!(
        stderr.contains("not a `ferrisdb-bench ycsb --json` result"),
        "{stderr}"
    );
}

#[cfg(not(feature = "rocksdb"))]
#[test]
fn compare_without_the_rocksdb_feature_says_how_to_get_it() {
    let stderr = bench_err(&["compare", "--num=10", "--benchmarks=fillrandom"]);
    assert!(
        stderr.contains("needs a build with `--features rocksdb`"),
        "{stderr}"
    );
}

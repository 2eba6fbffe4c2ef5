//! Runs `ferrisdb-bench net --spawn-node --compare-embedded` end to end with
//! a few hundred keys against a real `ferrisdb` node, so the network mode
//! never rots.
//! (The `ferrisdb` binary is built by `support::ferrisdb_binary`.)

mod support;

use support::{bench_err, bench_ok, ferrisdb_binary, read_json};

#[test]
fn net_mode_against_a_spawned_node_reports_like_engine_mode() {
    let node = ferrisdb_binary();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("ferrisdb");
    let json = tmp.path().join("net.json");
    // A configuration file for the node, under the benchmark's flags.
    let node_config = tmp.path().join("node.toml");
    std::fs::write(
        &node_config,
        "log_format = \"json\"\nio_depth = 8\ncores = 1\n",
    )
    .expect("write node config");
    let stdout = bench_ok(&[
        "net",
        &format!("--spawn-node={}", node.display()),
        &format!("--node-config={}", node_config.display()),
        "--cores=2",
        "--num=300",
        "--benchmarks=fillrandom,readrandom,readmissing,seekrandom",
        "--concurrency=8",
        "--connections=2",
        "--compare-embedded",
        "--fsync_probe_secs=0.1",
        "--node_settle_secs=5",
        &format!("--db={}", db.display()),
        &format!("--json={}", json.display()),
    ]);

    assert!(stdout.contains("=== ferrisdb-net (127.0.0.1:"), "{stdout}");
    let found: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("readrandom   :"))
        .collect();
    // Network, embedded, embedded durable: every read finds its key.
    assert_eq!(found.len(), 3, "{stdout}");
    assert!(
        found.iter().all(|l| l.ends_with("(300 of 300 found)")),
        "{stdout}"
    );
    assert!(
        stdout.contains("(0 of 300 found)"),
        "readmissing finds nothing: {stdout}"
    );
    assert!(stdout.contains("Microseconds per write:\nCount: 300 Average: "));
    assert!(
        stdout.contains("concurrency 8 over 2 connection(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("network / embedded (sync false, threads 1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("network / embedded durable (sync true, threads 8)"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("node: pid ") && l.contains("stopped")),
        "{stdout}"
    );

    let doc = read_json(&json);
    let results = doc["results"].as_array().expect("results");
    let engines: Vec<&str> = results
        .iter()
        .map(|r| r["engine"].as_str().expect("engine"))
        .collect();
    assert_eq!(engines.iter().filter(|e| **e == "ferrisdb-net").count(), 4);
    assert_eq!(engines.iter().filter(|e| **e == "ferrisdb").count(), 4);
    assert_eq!(engines.iter().filter(|e| **e == "ferrisdb-sync").count(), 4);
    let net = &results[0];
    assert_eq!(
        (net["name"].as_str(), net["ops"].as_u64()),
        (Some("fillrandom"), Some(300))
    );
    assert_eq!(net["network"]["concurrency"], 8);
    assert_eq!(net["network"]["node_cores"], 2);
    assert_eq!(net["network"]["durable_writes"], true);
    for field in [
        "ops_per_sec",
        "p50_micros",
        "p99_micros",
        "p999_micros",
        "max_micros",
    ] {
        assert!(
            net[field].as_f64().is_some_and(|v| v > 0.0),
            "{field} = {}",
            net[field]
        );
    }
    let comparisons = doc["comparisons"].as_array().expect("comparisons");
    assert_eq!(comparisons.len(), 8);
    assert!(
        comparisons
            .iter()
            .all(|c| c["throughput_ratio"].as_f64().is_some_and(|r| r > 0.0))
    );
    assert_eq!(doc["config"]["concurrency"], 8);
    assert_eq!(doc["device_probes"].as_array().map(Vec::len), Some(2));
    assert!(stdout.contains("(before the network run)"), "{stdout}");
    assert_eq!(doc["config"]["workload"]["num"], 300);
    let log = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).expect("read node log"))
        .expect("the node's log is kept");
    assert!(
        log.contains("\"io_depth\":8") && log.contains("\"cores\":2"),
        "the node ran with --node-config under --cores=2: {log}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ferrisdb-node-") && !n.ends_with(".log"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the node's data directory is removed: {leftovers:?}"
    );
}

/// `--batch_size` over a 2-core node whose shards split the benchmark's
/// keys: each batch's keys span both shards, so the bench sends one atomic
/// batch per shard (a node refuses a batch across shards), and every key
/// written is read back.
#[test]
fn net_batches_spanning_shards_are_split_per_shard() {
    let node = ferrisdb_binary();
    let tmp = tempfile::tempdir().expect("tempdir");
    let stdout = bench_ok(&[
        "net",
        &format!("--spawn-node={}", node.display()),
        "--cores=2",
        "--num=400",
        "--batch_size=16",
        "--benchmarks=fillrandom,readrandom",
        "--concurrency=4",
        "--fsync_probe_secs=0.1",
        &format!("--db={}", tmp.path().join("ferrisdb").display()),
    ]);
    assert!(stdout.contains("batch_size 16"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("readrandom   :") && l.ends_with("(400 of 400 found)")),
        "{stdout}"
    );
}

#[test]
fn net_mode_refuses_ambiguous_targets() {
    let stderr = bench_err(&[
        "net",
        "--endpoint=127.0.0.1:9",
        "--spawn-node",
        "--benchmarks=fillrandom",
    ]);
    assert!(stderr.contains("exclude each other"), "{stderr}");
}

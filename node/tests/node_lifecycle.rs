//! A real node's life: its admin endpoints while it runs, a graceful
//! shutdown (SIGTERM, SIGINT) with requests in flight and a clean restart,
//! and start-up refusals (malformed config file, data directory in use or
//! unwritable) that are one clear line and a non-zero exit
//! (`docs/operations.md`).

mod support;

use ferrisdb_client::Client;
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{NodeOptions, NodeProcess, WriteLoad, http_get, s};

/// Longest a SIGTERM'd node may take to exit: the node waits up to 10 s for
/// requests in flight and 0.5 s for clients to see the close, then flushes.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(20);
/// Longest an idle node may take to exit after SIGTERM.
const IDLE_SHUTDOWN_BOUND: Duration = Duration::from_secs(5);
/// Longest a start that must fail may run.
const REFUSAL_BOUND: Duration = Duration::from_secs(20);

#[test]
fn admin_endpoints_answer_on_a_running_node() {
    let mut node = NodeProcess::start();
    let (code, body) = http_get(node.admin, "/healthz").expect("GET /healthz");
    assert_eq!((code, body.trim()), (200, "ok"));

    let puts = 25u64;
    support::runtime().block_on(async {
        let client = Client::connect(node.client_config()).await.expect("client");
        for i in 0..puts {
            client.put(format!("m{i}"), "v").await.expect("put");
        }
        assert_eq!(client.get("m0").await.expect("get"), Some(b"v".to_vec()));
        let status: serde_json::Value =
            serde_json::from_str(&client.status().await.expect("Status request"))
                .expect("status is JSON");
        assert_eq!(
            status["cores"].as_array().map(Vec::len),
            Some(2),
            "{status}"
        );
    });

    let (code, metrics) = http_get(node.admin, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("ferrisdb_build_info{"), "{metrics}");
    for core in ["0", "1"] {
        assert!(
            metrics.contains(&format!("ferrisdb_open_connections{{core=\"{core}\"}}")),
            "core {core}: {metrics}"
        );
    }
    // Puts were answered by both cores; together they count every put.
    let answered: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("ferrisdb_requests_total{") && l.contains("op=\"put\""))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .expect("a sample value") as u64
        })
        .sum();
    assert!(answered >= puts, "{answered} puts counted: {metrics}");

    let (code, body) = http_get(node.admin, "/status").expect("GET /status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(status["limits"]["key_bytes_max"], 10_000, "{status}");
    assert_eq!(
        status["node"]["listen"],
        node.listen.to_string(),
        "{status}"
    );
    let cores = status["cores"].as_array().expect("cores");
    assert_eq!(cores.len(), 2);
    let shards: usize = cores
        .iter()
        .map(|c| c["shards"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(shards >= 2, "{status}");

    let (code, _) = http_get(node.admin, "/no-such-page").expect("GET unknown");
    assert_eq!(code, 404);
    node.assert_alive();
}

/// SIGTERM (or SIGINT) while eight writers have puts in flight: the node
/// exits 0 within the bound; every failed put failed with a retryable
/// error; after a restart every acknowledged put is there.
fn graceful_stop_under_load(signal: fn(&NodeProcess), name: &str, cores: usize) {
    let mut node = NodeProcess::start_with(NodeOptions {
        cores,
        ..NodeOptions::default()
    });
    let rt = support::runtime();
    let client = rt
        .block_on(Client::connect(node.client_config()))
        .expect("client");
    let load = WriteLoad::start(&rt, &client, name, 8, Duration::from_secs(5));
    assert!(
        rt.block_on(load.wait_acked(200, Duration::from_secs(120))),
        "load got going"
    );
    signal(&node);
    let signalled = Instant::now();
    // /healthz turns 503 while the node drains (if it is quick enough to see).
    let mut saw_draining = false;
    let exited = loop {
        if let Ok((503, body)) = http_get(node.admin, "/healthz") {
            assert_eq!(body.trim(), "shutting down");
            saw_draining = true;
        }
        if let Some(exit) = node.wait_exit(Duration::from_millis(50)) {
            break Some(exit);
        }
        if signalled.elapsed() > SHUTDOWN_BOUND {
            break None;
        }
    };
    let Some((status, _)) = exited else {
        panic!(
            "{name}: the node did not exit within {SHUTDOWN_BOUND:?}; log:\n{}",
            node.log()
        );
    };
    let took = signalled.elapsed();
    let logs = rt.block_on(load.finish(Duration::from_secs(30)));
    drop(client);
    assert_eq!(
        status.code(),
        Some(0),
        "{name}: exit status {status}; log:\n{}",
        node.log()
    );
    assert!(
        node.last_log().contains("node stopped cleanly"),
        "log:\n{}",
        node.log()
    );
    node.assert_no_panic();

    let (mut acked, mut attempted, mut errors) = (Vec::new(), HashSet::new(), 0);
    for log in logs {
        for err in &log.errors {
            assert!(
                err.is_retryable(),
                "{name}: a put in flight failed with a non-retryable error: {err}"
            );
        }
        errors += log.errors.len();
        acked.extend(log.acked);
        attempted.extend(log.attempted);
    }
    eprintln!(
        "{name}: exit 0 after {took:.1?} (drain seen on /healthz: {saw_draining}); \
         {} acknowledged, {errors} retryable failures",
        acked.len()
    );

    node.restart();
    let verified = rt.block_on(async {
        let client = Client::connect(node.client_config())
            .await
            .map_err(|e| e.to_string())?;
        support::verify_writes(&client, &acked, &attempted).await
    });
    if let Err(problem) = verified {
        panic!("{name}: after restart: {problem}; log:\n{}", node.log());
    }
    node.assert_alive();
}

// Restarting a two-core node hangs on core 1 (see
// a_restarted_two_core_node_serves_on_every_core), so the graceful-stop
// tests that run by default use one core.
#[test]
fn sigterm_under_load_exits_0_in_bound_and_a_restart_serves_every_acknowledged_write() {
    graceful_stop_under_load(NodeProcess::terminate, "sigterm", 1);
}

#[test]
fn sigint_under_load_exits_0_in_bound_and_a_restart_serves_every_acknowledged_write() {
    graceful_stop_under_load(NodeProcess::interrupt, "sigint", 1);
}

#[test]
fn sigterm_under_load_on_two_cores_and_a_restart_serves_every_acknowledged_write() {
    graceful_stop_under_load(NodeProcess::terminate, "sigterm-2-cores", 2);
}

/// Regression for the restart hang: a two-core node takes a few puts, is
/// stopped with SIGTERM (exit 0) and started again on the same data
/// directory, ten times; each time both cores must serve within 15 s.
///
/// Observed on 2026-11-24 (debug build, loaded 2-CPU machine): core 0 logs
/// `core serving` about a second after start, core 1 never does (once it
/// was the other way round); the hung core's thread
/// sleeps in `io_uring_enter` (wchan `io_cqring_wait`), and attaching a
/// debugger (which interrupts the syscall) makes it log `core serving` at
/// once, so a wake-up of that core's executor is lost during start-up. In a
/// shell loop of SIGTERM + restart, 10 of 11 restarts hung; with one core,
/// 0 of 8. Fixed by the wake guard of `ferrisdb_io::executor::run_pinned`
/// (glommio 0.9 loses cross-executor wake-ups while a reactor sleeps).
#[test]
fn a_restarted_two_core_node_serves_on_every_core() {
    let mut node = NodeProcess::start();
    let rt = support::runtime();
    for restart in 1..=10 {
        rt.block_on(async {
            let client = Client::connect(node.client_config()).await.expect("client");
            for i in 0..20 {
                client
                    .put(format!("r{restart}-{i}"), "v")
                    .await
                    .expect("put");
            }
        });
        node.terminate();
        let Some((status, _)) = node.wait_exit(SHUTDOWN_BOUND) else {
            panic!(
                "restart {restart}: no exit after SIGTERM; log:\n{}",
                node.log()
            );
        };
        assert_eq!(status.code(), Some(0), "log:\n{}", node.log());
        node.respawn();
        if !node.serving_within(Duration::from_secs(15)) {
            panic!(
                "restart {restart}: not every core serves after 15 s; threads:\n{}\nlog:\n{}",
                node.threads(),
                node.last_log()
            );
        }
    }
}

#[test]
fn sigterm_on_an_idle_node_exits_0_quickly() {
    let mut node = NodeProcess::start();
    node.terminate();
    let Some((status, took)) = node.wait_exit(IDLE_SHUTDOWN_BOUND) else {
        panic!(
            "an idle node did not exit within {IDLE_SHUTDOWN_BOUND:?}; log:\n{}",
            node.log()
        );
    };
    assert_eq!(status.code(), Some(0), "log:\n{}", node.log());
    eprintln!("idle node exited in {took:.1?}");
    node.assert_no_panic();
}

/// Runs `ferrisdb start ARGS` that must fail: returns its exit code and
/// stderr. Kills it (and fails) if it is still running after
/// [`REFUSAL_BOUND`], i.e. if it started instead of refusing.
fn start_must_fail(args: &[String], dir: &std::path::Path) -> (Option<i32>, String) {
    let err_path = dir.join(format!("refused-{}.err", std::process::id()));
    let err_file = std::fs::File::create(&err_path).expect("create stderr file");
    let mut child = Command::new(support::ferrisdb_bin())
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .expect("spawn ferrisdb start");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > REFUSAL_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ferrisdb {args:?} still running after {REFUSAL_BOUND:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err_path).expect("read stderr");
    (status.code(), stderr)
}

/// Exit status 1 and exactly one line, `error: <prefix>...`.
fn assert_one_line(code: Option<i32>, stderr: &str, prefix: &str) {
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: {prefix}")),
        "want `error: {prefix}...`, got: {stderr}"
    );
}

/// `start` arguments with the node's certificates and fresh ports, and
/// `data_dir` as the data directory.
fn start_args(node: &NodeProcess, data_dir: &str) -> Vec<String> {
    let (port, admin) = support::free_ports(2);
    let mut args = node.start_args();
    let at = |flag: &str| args.iter().position(|a| a == flag).expect("flag present") + 1;
    let (d, l, a) = (at("--data-dir"), at("--listen"), at("--admin"));
    args[d] = data_dir.to_string();
    args[l] = format!("127.0.0.1:{port}");
    args[a] = format!("127.0.0.1:{admin}");
    args
}

#[test]
fn a_malformed_config_file_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("not TOML", "data_dir = \"/x\"\ncores = [\n", "config file "),
        (
            "unknown key",
            "data_dir = \"/x\"\nlisten_addr = \"127.0.0.1:1\"\n",
            "config file ",
        ),
        (
            "wrong type",
            "data_dir = \"/x\"\ncores = \"two\"\n",
            "config file ",
        ),
        (
            "bad size",
            "data_dir = \"/x\"\nmemtable_bytes = \"64MB\"\n",
            "config file ",
        ),
    ];
    for (what, text, prefix) in cases {
        let file = dir.path().join("ferrisdb.toml");
        std::fs::write(&file, text).expect("write config");
        let args = [
            "start".to_string(),
            "--config".into(),
            s(&file).into(),
            "--insecure".into(),
        ];
        let (code, stderr) = start_must_fail(&args, dir.path());
        assert_one_line(code, &stderr, prefix);
        assert!(
            stderr.contains(s(&file)),
            "{what}: names the file: {stderr}"
        );
        assert!(stderr.contains("line "), "{what}: names the line: {stderr}");
        assert!(!dir.path().join("x").exists());
    }
    // A config file that does not exist.
    let missing = dir.path().join("missing.toml");
    let args = ["start".to_string(), "--config".into(), s(&missing).into()];
    let (code, stderr) = start_must_fail(&args, dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(s(&missing)),
        "{stderr}"
    );
}

#[test]
fn a_data_dir_in_use_is_one_line_naming_the_holder_and_the_holder_keeps_serving() {
    let mut node = NodeProcess::start();
    let args = start_args(&node, s(&node.data_dir));
    let (code, stderr) = start_must_fail(&args, node.dir());
    let want = format!(
        "data directory {} is in use by another ferrisdb process (pid {})",
        node.data_dir.display(),
        node.pid()
    );
    assert_one_line(code, &stderr, &want);
    assert_eq!(stderr.trim_end(), format!("error: {want}"));
    node.assert_alive();
    support::runtime().block_on(async {
        let client = Client::connect(node.client_config()).await.expect("client");
        client.put("still", "mine").await.expect("put");
    });
}

#[test]
fn an_unusable_data_dir_is_one_line_and_exit_1() {
    let node = NodeProcess::start();
    let file = node.dir().join("a-file");
    std::fs::write(&file, "x").expect("write");

    let under_file = file.join("data");
    let (code, stderr) = start_must_fail(&start_args(&node, s(&under_file)), node.dir());
    assert_one_line(
        code,
        &stderr,
        &format!("data directory {} is not writable: ", under_file.display()),
    );

    let (code, stderr) = start_must_fail(&start_args(&node, s(&file)), node.dir());
    assert_one_line(
        code,
        &stderr,
        &format!("data directory {} is not a directory", file.display()),
    );

    // A read-only directory, unless this process can write anywhere (root).
    use std::os::unix::fs::PermissionsExt;
    let read_only = node.dir().join("read-only");
    std::fs::create_dir(&read_only).expect("mkdir");
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    let data = read_only.join("data");
    if std::fs::create_dir(&data).is_ok() {
        eprintln!(
            "skipped the read-only directory case: this process writes through permissions (root)"
        );
        std::fs::remove_dir(&data).expect("rmdir");
    } else {
        let (code, stderr) = start_must_fail(&start_args(&node, s(&data)), node.dir());
        assert_one_line(
            code,
            &stderr,
            &format!("data directory {} is not writable: ", data.display()),
        );
    }
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o700))
        .expect("chmod back");
}

//! `ferrisdb tune` through the built binary, and a node that takes its
//! device settings from an io_properties.toml: `config print` shows them,
//! and `/status` shows the values the executors and engines actually run
//! with.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use support::{NodeOptions, NodeProcess, ferrisdb, http_get, s};

/// Shipped nominal figures of an NVMe server. Derived for 2 cores:
/// io_depth 64 (IOPS still grow at 64), background_shares 500 (2 GB/s of
/// sequential writes per core), compaction 953 MiB/s per core.
fn nvme_properties() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuning/profiles/nvme-server.io_properties.toml")
}
const NVME_IO_DEPTH: i64 = 64;
const NVME_SHARES: i64 = 500;
const NVME_COMPACTION: i64 = 953 << 20;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn one_line_error(o: &Output, want: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(want),
        "want {want}: {err}"
    );
}

fn printed(o: &Output) -> toml::Table {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    toml::from_str(&stdout(o)).expect("TOML")
}

/// A tiny `tune disk` run prints every figure and writes an
/// io_properties.toml that `tune config` and `config print` read back.
#[test]
fn tune_disk_writes_io_properties_that_the_rest_reads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).expect("mkdir");
    let out = ferrisdb(&[
        "tune",
        "disk",
        s(&dir),
        "--size",
        "2MiB",
        "--secs",
        "0.05",
        "--depths",
        "1,2",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "sequential write 1.0 MiB x 4",
        "sequential read  1.0 MiB x 4",
        "random read 4 KiB, depth 1",
        "random read 4 KiB, depth 2",
        "write 4 KiB + fdatasync",
        "write 4 KiB with O_DSYNC",
        "write 4 KiB + fdatasync, runtime",
        "wrote ",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let props_path = dir.join("io_properties.toml");
    let props: toml::Table =
        toml::from_str(&std::fs::read_to_string(&props_path).expect("written")).expect("TOML");
    assert_eq!(props["format_version"].as_integer(), Some(1));
    assert_eq!(props["random_read"].as_array().map(Vec::len), Some(2));
    assert!(props["dsync_write"]["ops_per_sec"].as_integer() > Some(0));
    assert!(props["runtime_fdatasync"]["ops_per_sec"].as_integer() > Some(0));
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["io_properties.toml"], "no test file left behind");

    let derived = printed(&ferrisdb(&[
        "tune",
        "config",
        "--cores",
        "1",
        "--memory",
        "1GiB",
        "--io-properties",
        s(&props_path),
    ]));
    assert!(
        derived["io_depth"]
            .as_integer()
            .is_some_and(|d| d == 1 || d == 2)
    );
    let config = printed(&ferrisdb(&[
        "config",
        "print",
        "--data-dir",
        s(&dir),
        "--insecure",
    ]));
    assert_eq!(
        config["io_depth"], derived["io_depth"],
        "the node derives the same"
    );
    assert_eq!(config["io_properties"].as_str(), Some(s(&props_path)));
}

#[test]
fn tune_disk_refuses_bad_input_in_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing");
    one_line_error(&ferrisdb(&["tune", "disk", s(&missing)]), "does not exist");
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    one_line_error(&ferrisdb(&["tune", "disk", s(&file)]), "is not a directory");
    let dir = tmp.path();
    one_line_error(
        &ferrisdb(&["tune", "disk", s(dir), "--secs", "0"]),
        "--secs is 0",
    );
    one_line_error(
        &ferrisdb(&["tune", "disk", s(dir), "--size", "4KiB"]),
        "--size is 4096 bytes",
    );
    one_line_error(
        &ferrisdb(&["tune", "disk", s(dir), "--depths", "8,2"]),
        "increasing",
    );
    one_line_error(
        &ferrisdb(&["tune", "config", "--io-properties", s(&file)]),
        "file: ",
    );
    let bad = ferrisdb(&["tune", "disk", s(dir), "--size", "lots"]);
    assert_eq!(bad.status.code(), Some(2), "a flag clap rejects");
    assert_eq!(
        std::fs::read_dir(dir).expect("list").count(),
        1,
        "only `file`"
    );
}

#[test]
fn config_print_takes_unset_device_settings_from_io_properties() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let base = [
        "config",
        "print",
        "--data-dir",
        s(&data),
        "--insecure",
        "--cores",
        "2",
    ];
    let plain = printed(&ferrisdb(&base));
    assert_eq!(
        plain["io_depth"].as_integer(),
        Some(256),
        "the default without a file"
    );
    assert!(!plain.contains_key("io_properties"));

    std::fs::copy(nvme_properties(), data.join("io_properties.toml")).expect("copy");
    let tuned = printed(&ferrisdb(&base));
    assert_eq!(tuned["io_depth"].as_integer(), Some(NVME_IO_DEPTH));
    assert_eq!(tuned["background_shares"].as_integer(), Some(NVME_SHARES));
    assert_eq!(
        tuned["compaction_bytes_per_sec"].as_integer(),
        Some(NVME_COMPACTION)
    );
    assert!(
        tuned["io_properties"]
            .as_str()
            .is_some_and(|p| p.ends_with("data/io_properties.toml"))
    );

    let mut args = base.to_vec();
    args.extend(["--io-depth", "8"]);
    let flagged = printed(&ferrisdb(&args));
    assert_eq!(
        flagged["io_depth"].as_integer(),
        Some(8),
        "a flag wins over the file"
    );
    assert_eq!(flagged["background_shares"].as_integer(), Some(NVME_SHARES));

    std::fs::write(data.join("io_properties.toml"), "format_version = 1\n").expect("write");
    one_line_error(&ferrisdb(&base), "io_properties.toml: missing field");
    let mut named = base.to_vec();
    let missing = tmp.path().join("none.toml");
    named.extend(["--io-properties", s(&missing)]);
    one_line_error(&ferrisdb(&named), "no such file");
}

/// A running node's executors and engines use what the io_properties.toml
/// derives: `/status` reads the values back from each core's executor
/// (io_depth, the background queue's shares in glommio) and its engines.
#[test]
fn a_node_runs_with_the_device_settings_of_its_io_properties() {
    let node = NodeProcess::start_with(NodeOptions {
        extra_args: vec!["--io-properties".into(), s(&nvme_properties()).into()],
        ..NodeOptions::default()
    });
    let (code, body) = http_get(node.admin, "/status").expect("status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let cores = status["cores"].as_array().expect("cores");
    assert_eq!(cores.len(), 2);
    for core in cores {
        let io = &core["io"];
        assert_eq!(io["io_depth"].as_i64(), Some(NVME_IO_DEPTH), "{core}");
        assert_eq!(
            io["background_shares"].as_i64(),
            Some(NVME_SHARES),
            "{core}"
        );
        assert_eq!(
            io["compaction_bytes_per_sec"].as_i64(),
            Some(NVME_COMPACTION),
            "{core}"
        );
        assert!(
            io["io_in_flight_max"]
                .as_i64()
                .is_some_and(|n| n <= NVME_IO_DEPTH),
            "{core}"
        );
    }
    assert!(node.log().contains("device settings"), "{}", node.log());
}

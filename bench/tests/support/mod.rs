//! Running `ferrisdb-bench` from the integration tests.

use std::path::Path;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrisdb-bench"))
        .args(args)
        .output()
        .expect("run ferrisdb-bench")
}

/// Runs `ferrisdb-bench ARGS`, which must succeed; returns its stdout.
pub fn bench_ok(args: &[&str]) -> String {
    let out = bench(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `ferrisdb-bench ARGS`, which must fail; returns its stderr.
pub fn bench_err(args: &[&str]) -> String {
    let out = bench(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON document the run wrote to `path`.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("json written");
    serde_json::from_str(&text).expect("json parses")
}

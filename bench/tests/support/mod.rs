//! Running `ferrisdb-bench` (and a `ferrisdb` node) from the integration
//! tests.

#![allow(dead_code, reason = "each test crate uses a part of the helpers")]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrisdb-bench"))
        .args(args)
        // Error output as a user sees it, without anyhow's backtraces.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
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

/// The `ferrisdb` binary of this workspace, built with this test's profile.
///
/// `CARGO_BIN_EXE_<name>` exists only for the binaries of the crate under
/// test, and a binary-only package cannot be a (dev-)dependency on stable
/// cargo (artifact dependencies are unstable). So this asks cargo itself:
/// it runs `$CARGO build -p ferrisdb-node` with the profile and target
/// directory of this test's own `ferrisdb-bench` (a no-op when the node is
/// up to date; cargo holds no lock while tests run), then takes `ferrisdb`
/// from the directory that holds `ferrisdb-bench`.
/// `FERRISDB_BIN=/path/to/ferrisdb` skips the build. Built once per test
/// binary: the tests that start nodes run in parallel, and each would
/// otherwise run its own cargo (which waits on the others' lock).
pub fn ferrisdb_binary() -> PathBuf {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(build_ferrisdb).clone()
}

fn build_ferrisdb() -> PathBuf {
    if let Some(path) = std::env::var_os("FERRISDB_BIN") {
        return PathBuf::from(path);
    }
    let bench = Path::new(env!("CARGO_BIN_EXE_ferrisdb-bench"));
    let profile_dir = bench.parent().expect("the binary has a directory");
    let target_dir = profile_dir.parent().expect("profile dir has a parent");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => panic!("unexpected binary path {}", bench.display()),
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cargo = Command::new(env!("CARGO"));
    // The variables cargo sets for this test process are not the caller's
    // environment: build scripts that watch one (ring's watches
    // CARGO_MANIFEST_DIR) would rerun and rebuild the node's whole
    // dependency tree on every test run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ]
            .contains(&name.as_ref())
        {
            cargo.env_remove(name.as_ref());
        }
    }
    let status = cargo
        .args([
            "build",
            "--quiet",
            "-p",
            "ferrisdb-node",
            "--bin",
            "ferrisdb",
        ])
        .args(["--profile", profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("run cargo build -p ferrisdb-node");
    assert!(status.success(), "cargo build -p ferrisdb-node failed");
    let node = profile_dir.join("ferrisdb");
    assert!(node.is_file(), "{} was not built", node.display());
    node
}

/// A 2-core `ferrisdb start --insecure` on free loopback ports, killed by
/// its PID when dropped.
pub struct Node {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
}

impl Node {
    /// Starts a node with its data directory and log under `dir`, shards
    /// split at `split_keys`, and waits (at most 60 s) until
    /// `ferrisdb status` gets an answer.
    pub fn start(dir: &Path, split_keys: &str) -> Node {
        let binary = ferrisdb_binary();
        let port = free_udp_ports(2);
        let admin = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free admin port");
        let endpoint = format!("127.0.0.1:{port}");
        let log = dir.join("node.log");
        let log_file = std::fs::File::create(&log).expect("create node log");
        let child = Command::new(&binary)
            .args([
                "start",
                "--insecure",
                "--cores",
                "2",
                "--split-keys",
                split_keys,
            ])
            .arg("--data-dir")
            .arg(dir.join("node-data"))
            .args(["--listen", &endpoint, "--admin", &admin.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log"))
            .stderr(log_file)
            .spawn()
            .expect("start ferrisdb");
        let node = Node {
            child,
            endpoint,
            log,
        };
        let start = Instant::now();
        loop {
            let status = Command::new(&binary)
                .args(["status", "--insecure", "--endpoint", &node.endpoint])
                .output()
                .expect("run ferrisdb status");
            if status.status.success() {
                return node;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the node did not answer: {}",
                node.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port P with P..P+count free for UDP right now.
fn free_udp_ports(count: u16) -> u16 {
    for _ in 0..50 {
        let first = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let base = first.local_addr().expect("address").port();
        if base.checked_add(count).is_none() {
            continue;
        }
        if (1..count).all(|i| UdpSocket::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no run of {count} free UDP ports");
}

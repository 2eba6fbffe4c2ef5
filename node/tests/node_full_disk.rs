//! A real node whose disk fills up: ext4 on a loop device of a few hundred
//! MiB, a write load until the node refuses writes, then space freed and a
//! restart. Needs root (to mount); skipped with a message otherwise.

mod support;

use ferrisdb_client::{Client, Error, ErrorCode};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{NodeOptions, NodeProcess, WriteLoad};

/// Size of the file system: room for the node's two 64 MiB WAL segments,
/// the ballast and some tables.
const IMAGE_MIB: u64 = 384;
/// Space taken before the node starts and given back before the restart.
const BALLAST_MIB: u64 = 96;
/// Longest the load may take to fill the disk.
const FILL_DEADLINE: Duration = Duration::from_secs(180);
const PUT_TIMEOUT: Duration = Duration::from_secs(10);
const WRITERS: usize = 16;

/// An ext4 image mounted through a loop device; unmounted when dropped.
struct LoopMount {
    dir: PathBuf,
}

impl LoopMount {
    fn create(image: &Path, dir: &Path) -> LoopMount {
        run("truncate", &["-s", &format!("{IMAGE_MIB}M"), s(image)]);
        run("mkfs.ext4", &["-q", "-F", s(image)]);
        std::fs::create_dir_all(dir).expect("mount point");
        run("mount", &["-o", "loop", s(image), s(dir)]);
        LoopMount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        // The loop device goes with the mount (mount -o loop sets autoclear).
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Writes `mib` MiB of zeros to `path` and syncs it (allocated blocks, not a
/// sparse file).
fn ballast(path: &Path, mib: u64) {
    let mut file = std::fs::File::create(path).expect("create ballast");
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        file.write_all(&chunk).expect("write ballast");
    }
    file.sync_all().expect("sync ballast");
}

/// Waits until `/healthz` answers 503 (a shard refuses writes); its body.
fn wait_refusing(node: &mut NodeProcess, deadline: Duration) -> String {
    let until = Instant::now() + deadline;
    loop {
        node.assert_alive();
        if let Ok((503, body)) = support::http_get(node.admin, "/healthz") {
            return body;
        }
        assert!(
            Instant::now() < until,
            "the disk did not fill within {deadline:?}; log:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_disk_refuses_writes_clearly_and_loses_nothing_acknowledged() {
    if !is_root() {
        eprintln!("skipped: mounting a loop file system needs root");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let mount = LoopMount::create(&work.path().join("fs.img"), &work.path().join("mnt"));
    let ballast_path = mount.dir.join("ballast");
    ballast(&ballast_path, BALLAST_MIB);
    let mut node = NodeProcess::start_with(NodeOptions {
        cores: 1,
        data_dir: Some(mount.dir.join("data")),
        ..NodeOptions::default()
    });
    let rt = support::runtime();
    let client = rt
        .block_on(Client::connect(node.client_config()))
        .expect("connect");

    // Fill the disk.
    let load = WriteLoad::start(&rt, &client, "full", WRITERS, PUT_TIMEOUT);
    let health = wait_refusing(&mut node, FILL_DEADLINE);
    let logs = rt.block_on(load.finish(PUT_TIMEOUT * 3));
    assert!(
        health.starts_with("refusing writes: shard 0: ") && health.contains("No space left"),
        "{health}"
    );
    let (mut acked, mut attempted, mut errors) = (Vec::new(), HashSet::new(), Vec::new());
    for log in logs {
        acked.extend(log.acked);
        attempted.extend(log.attempted);
        errors.extend(log.errors);
    }
    assert!(!acked.is_empty(), "some writes were acknowledged first");
    assert!(!errors.is_empty(), "the writers saw the refusal");
    for err in &errors {
        // Each failed put says why, and that retrying will not help.
        match err {
            Error::Server {
                code: ErrorCode::StorageFailed,
                message,
            } if message.contains("No space left on device") => {}
            other => panic!("unexpected error for a put on a full disk: {other:?}"),
        }
        assert!(!err.is_retryable());
    }
    // Reads go on; every acknowledged write is there.
    node.assert_alive();
    rt.block_on(support::verify_writes(&client, &acked, &attempted))
        .unwrap_or_else(|e| panic!("before the restart: {e}\nlog:\n{}", node.log()));
    drop(client);

    // The operator frees space and restarts the node.
    node.terminate();
    let (status, _) = node
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no exit after SIGTERM; log:\n{}", node.log()));
    node.assert_no_panic();
    eprintln!(
        "stopped with {status} after {} acknowledged puts",
        acked.len()
    );
    std::fs::remove_file(&ballast_path).expect("remove ballast");
    node.restart();
    let client = rt
        .block_on(Client::connect(node.client_config()))
        .expect("connect");
    rt.block_on(support::verify_writes(&client, &acked, &attempted))
        .unwrap_or_else(|e| panic!("after the restart: {e}\nlog:\n{}", node.log()));
    rt.block_on(client.put("after", "space freed"))
        .unwrap_or_else(|e| panic!("a put after the restart: {e}\nlog:\n{}", node.log()));
    assert_eq!(
        support::http_get(node.admin, "/healthz").expect("healthz"),
        (200, "ok\n".to_string())
    );
    node.assert_alive();
}

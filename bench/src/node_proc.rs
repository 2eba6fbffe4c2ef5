//! A `ferrisdb` node started by the benchmark (`net --spawn-node`): fresh
//! data directory, free loopback ports, `--insecure`, and stopped with
//! SIGTERM by its PID when the run ends (also on an error path, by `Drop`).

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for the node to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the node to exit after SIGTERM (it drains for up to 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Data-directory samples that must agree before a fresh node counts as settled.
const SETTLE_SAMPLES: u32 = 3;
const SETTLE_INTERVAL: Duration = Duration::from_millis(500);
/// Tries to find a run of free UDP ports before giving up.
const PORT_ATTEMPTS_MAX: usize = 50;
/// Lines of the node's log quoted when it exits before serving.
const LOG_TAIL_LINES: usize = 5;
/// Starts of a node that lost a port to another process before binding it.
pub const SPAWN_ATTEMPTS_MAX: usize = 3;

#[derive(Debug)]
pub struct NodeProcess {
    child: Option<Child>,
    pub endpoint: SocketAddr,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub cores: usize,
}

/// The `ferrisdb` binary: `given`, or for `auto` the one beside this
/// executable (cargo puts every workspace binary of a profile in the same
/// directory).
pub fn locate_binary(given: &Path) -> Result<PathBuf> {
    if given != Path::new(crate::target::SPAWN_NODE_BESIDE) {
        return Ok(given.to_path_buf());
    }
    let me = std::env::current_exe().context("find this executable")?;
    let beside = me.with_file_name("ferrisdb");
    if !beside.is_file() {
        bail!(
            "no `ferrisdb` beside {}; build it (`cargo build -p ferrisdb-node` with the same \
             profile) or give --spawn-node=PATH",
            me.display()
        );
    }
    Ok(beside)
}

impl NodeProcess {
    /// Starts `binary` with `cores` cores, a fresh data directory
    /// `data_dir` (removed first if it exists) and, if given, the
    /// configuration file `config` under the flags; returns once it is
    /// listening.
    pub fn start(
        binary: &Path,
        cores: usize,
        data_dir: &Path,
        split_keys: &[String],
        config: Option<&Path>,
    ) -> Result<NodeProcess> {
        crate::remove_dir_if_exists(data_dir)?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("create {}", data_dir.display()))?;
        let base = free_udp_ports(cores)?;
        let admin = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("find a free admin port")?;
        let endpoint = SocketAddr::from(([127, 0, 0, 1], base));
        // The log sits beside the data directory so that the directory
        // holds the node's files only, and the log survives its removal.
        let log_path = data_dir.with_extension("log");
        let log = File::create(&log_path)
            .with_context(|| format!("create node log {}", log_path.display()))?;
        let mut command = Command::new(binary);
        command.arg("start");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        if !split_keys.is_empty() {
            command.arg("--split-keys").arg(split_keys.join(","));
        }
        let child = command
            .arg("--insecure")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(endpoint.to_string())
            .arg("--admin")
            .arg(admin.to_string())
            .arg("--cores")
            .arg(cores.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("clone the log handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        println!(
            "node: started {} (pid {}, {cores} cores, QUIC {endpoint}, admin {admin}, data {}, log {})",
            binary.display(),
            child.id(),
            data_dir.display(),
            log_path.display()
        );
        Ok(NodeProcess {
            child: Some(child),
            endpoint,
            data_dir: data_dir.to_path_buf(),
            log_path,
            cores,
        })
    }

    /// Waits until `probe` succeeds (it connects a client), failing early if
    /// the node exits.
    pub fn wait_ready(&mut self, mut probe: impl FnMut() -> bool) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("poll the node")?
            {
                self.child = None;
                bail!(
                    "the node exited with {status} before serving; the end of its log ({}):\n{}",
                    self.log_path.display(),
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
            if probe() {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "the node did not answer within {READY_TIMEOUT:?}; see {}",
                    self.log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of the node's log (empty if it cannot be read).
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the node's log says an address it was given was taken (by
    /// another process, between [`free_udp_ports`] and the node's bind).
    pub fn lost_a_port(&self) -> bool {
        std::fs::read_to_string(&self.log_path).is_ok_and(|log| log.contains("in use"))
    }

    /// Waits until the data directory stops growing (allocated bytes equal
    /// over [`SETTLE_SAMPLES`] samples [`SETTLE_INTERVAL`] apart), at most
    /// `limit`. A fresh node zero-fills a WAL segment and a spare for every
    /// shard (128 MiB each, 8 shards on 2 cores by default) in the
    /// background; a durable write measured meanwhile waits behind that
    /// I/O, which the embedded engine (one shard) does not pay. Returns the
    /// settled size and the time waited.
    pub fn settle(&self, limit: Duration) -> Result<(u64, Duration)> {
        let start = Instant::now();
        let mut last = crate::sysinfo::dir_bytes(&self.data_dir).allocated;
        let mut same = 0;
        while same < SETTLE_SAMPLES && start.elapsed() < limit {
            std::thread::sleep(SETTLE_INTERVAL);
            let now = crate::sysinfo::dir_bytes(&self.data_dir).allocated;
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        Ok((last, start.elapsed()))
    }

    /// Sends SIGTERM to the node's PID and waits for it to exit (SIGKILL
    /// after [`STOP_TIMEOUT`]). Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id().to_string();
        // `kill` by PID: this crate forbids the `unsafe` a libc call needs.
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.is_ok_and(|s| s.success()) {
            let _ = child.kill();
        }
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().context("wait for the node")? {
                println!("node: pid {pid} stopped ({status})");
                if !status.success() {
                    bail!(
                        "the node exited with {status}; see {}",
                        self.log_path.display()
                    );
                }
                return Ok(());
            }
            if start.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the node ignored SIGTERM for {STOP_TIMEOUT:?} and was killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("node: {err:#}");
        }
    }
}

/// A loopback port P with P..P+count all free for UDP right now (the node
/// binds core i to P + i). Another process may take one before the node
/// starts; then the node fails to start, says so in its log, and
/// `target::open` starts it again on other ports (at most
/// [`SPAWN_ATTEMPTS_MAX`] starts).
fn free_udp_ports(count: usize) -> Result<u16> {
    for _ in 0..PORT_ATTEMPTS_MAX {
        let first = UdpSocket::bind("127.0.0.1:0").context("bind a UDP socket")?;
        let base = first.local_addr().context("UDP socket address")?.port();
        if usize::from(base) + count > usize::from(u16::MAX) {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..count)
            .map(|i| UdpSocket::bind(("127.0.0.1", base + i as u16)))
            .collect();
        if rest.is_ok() {
            return Ok(base);
        }
    }
    bail!("no run of {count} free UDP ports on 127.0.0.1 after {PORT_ATTEMPTS_MAX} tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_taken_before_the_bind_is_read_from_the_log_which_is_quoted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_path = dir.path().join("node.log");
        let node = |log: &str| {
            std::fs::write(&log_path, log).expect("write log");
            NodeProcess {
                child: None,
                endpoint: SocketAddr::from(([127, 0, 0, 1], 1)),
                data_dir: dir.path().to_path_buf(),
                log_path: log_path.clone(),
                cores: 2,
            }
        };
        // The node's own last line for this case (`ferrisdb start`).
        let taken = node(
            "starting\nstopping: draining requests\n\
             error: listen on 127.0.0.1:47001 (core 1): Address already in use (os error 98)\n",
        );
        assert!(taken.lost_a_port());
        assert_eq!(
            taken.log_tail(2),
            "stopping: draining requests\n\
             error: listen on 127.0.0.1:47001 (core 1): Address already in use (os error 98)"
        );
        let other = node("error: the data directory is in a bad state\n");
        assert!(!other.lost_a_port());
        assert_eq!(
            other.log_tail(5),
            "error: the data directory is in a bad state"
        );
    }

    #[test]
    fn free_ports_are_consecutive_and_bindable() {
        let base = free_udp_ports(3).expect("free ports");
        for i in 0..3 {
            UdpSocket::bind(("127.0.0.1", base + i)).expect("still free");
        }
    }

    #[test]
    fn an_explicit_binary_is_taken_as_given() {
        let p = locate_binary(Path::new("/opt/ferrisdb")).expect("given");
        assert_eq!(p, PathBuf::from("/opt/ferrisdb"));
    }
}

//! A real `ferrisdb start` process on loopback, for the node's end-to-end
//! suites (`node_bad_input`, `node_tls`, `node_crash`, `node_lifecycle`).
//!
//! [`NodeProcess`] makes certificates with `ferrisdb cert`, picks free ports,
//! starts the node binary with its stderr in a log file, waits until every
//! core serves, and SIGKILLs the process (by its pid, and only it) when
//! dropped. Everything waits with a deadline: a node that does not come up,
//! or does not exit, fails the test instead of hanging it.

// Each test binary uses part of this module.
#![allow(dead_code)]

use ferrisdb_client::{ClientConfig, Security};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest wait for a node to serve on every core after it is spawned.
pub const START_DEADLINE: Duration = Duration::from_secs(60);
/// Longest wait for one admin HTTP exchange.
const HTTP_DEADLINE: Duration = Duration::from_secs(5);
/// How often a waiting helper looks again.
const POLL: Duration = Duration::from_millis(25);

pub fn ferrisdb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferrisdb")
}

/// Runs `ferrisdb ARGS` to completion with an empty environment.
pub fn ferrisdb(args: &[&str]) -> Output {
    Command::new(ferrisdb_bin())
        .args(args)
        .env_clear()
        .output()
        .expect("run ferrisdb")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run_ok(args: &[&str]) {
    let out = ferrisdb(args);
    assert!(
        out.status.success(),
        "ferrisdb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PEM files made by `ferrisdb cert`: a CA, a node certificate and a
/// client certificate it signed.
#[derive(Debug, Clone)]
pub struct Certs {
    pub ca_dir: PathBuf,
    pub ca: PathBuf,
    pub node_cert: PathBuf,
    pub node_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certs {
    /// A new CA under `dir` with a node and a client certificate.
    pub fn create(dir: &Path) -> Certs {
        let ca_dir = dir.join("ca");
        let node_dir = dir.join("node");
        let client_dir = dir.join("client");
        run_ok(&["cert", "create-ca", "--out", s(&ca_dir)]);
        run_ok(&[
            "cert",
            "create-node",
            "--ca",
            s(&ca_dir),
            "--out",
            s(&node_dir),
            "--name",
            "node1",
        ]);
        run_ok(&[
            "cert",
            "create-client",
            "--ca",
            s(&ca_dir),
            "--out",
            s(&client_dir),
            "--name",
            "app",
        ]);
        Certs {
            ca: ca_dir.join("ca.pem"),
            ca_dir,
            node_cert: node_dir.join("node.pem"),
            node_key: node_dir.join("node.key"),
            client_cert: client_dir.join("client.pem"),
            client_key: client_dir.join("client.key"),
        }
    }

    /// The client's rustls configuration (mutual TLS, ALPN `ferrisdb/1`).
    pub fn client_tls(&self) -> rustls::ClientConfig {
        ferrisdb_proto::tls::client_config(&self.ca, &self.client_cert, &self.client_key)
            .expect("client TLS config")
    }
}

/// Ports handed out in this process, so that two nodes of one test binary
/// never get the same ones.
static PORTS_TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A base UDP port P with P..P+cores free, and a free TCP port for admin.
/// Bound to see that they are free, then released: another process could
/// take them in between, which is unlikely enough for a test.
pub fn free_ports(cores: usize) -> (u16, u16) {
    let mut taken = PORTS_TAKEN.lock().expect("ports lock");
    let taken = taken.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let first = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let base = first.local_addr().expect("addr").port();
        if usize::from(base) + cores > usize::from(u16::MAX) || taken.contains(&base) {
            continue;
        }
        let mut held = vec![first];
        let all_free = (1..cores).all(|i| {
            let port = base + i as u16;
            !taken.contains(&port)
                && UdpSocket::bind(("127.0.0.1", port))
                    .map(|s| held.push(s))
                    .is_ok()
        });
        if !all_free {
            continue;
        }
        let admin = TcpListener::bind("127.0.0.1:0").expect("bind TCP");
        let admin_port = admin.local_addr().expect("addr").port();
        if taken.contains(&admin_port) {
            continue;
        }
        taken.extend((0..cores).map(|i| base + i as u16));
        taken.insert(admin_port);
        return (base, admin_port);
    }
    panic!("no free run of {cores} UDP ports found");
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub cores: usize,
    pub memtable_bytes: &'static str,
    pub extra_args: Vec<String>,
    /// The data directory; by default `data` in the node's temporary directory.
    pub data_dir: Option<PathBuf>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            cores: 2,
            memtable_bytes: "4MiB",
            extra_args: Vec::new(),
            data_dir: None,
        }
    }
}

/// A `ferrisdb start` process and its files (certificates, data directory,
/// logs), all in one temporary directory.
pub struct NodeProcess {
    pub certs: Certs,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub options: NodeOptions,
    child: Option<Child>,
    /// One log file per start: `node-<n>.log`.
    logs: Vec<PathBuf>,
    // Last: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl NodeProcess {
    /// A new node with default options, serving on every core.
    pub fn start() -> NodeProcess {
        NodeProcess::start_with(NodeOptions::default())
    }

    pub fn start_with(options: NodeOptions) -> NodeProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = Certs::create(&dir.path().join("certs"));
        let (port, admin_port) = free_ports(options.cores);
        let mut node = NodeProcess {
            certs,
            data_dir: options
                .data_dir
                .clone()
                .unwrap_or_else(|| dir.path().join("data")),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            options,
            child: None,
            logs: Vec::new(),
            dir,
        };
        node.spawn();
        node.wait_serving();
        node
    }

    /// The temporary directory holding everything of this node.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `ferrisdb start` arguments of this node.
    pub fn start_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "start",
            "--data-dir",
            s(&self.data_dir),
            "--listen",
            &self.listen.to_string(),
            "--admin",
            &self.admin.to_string(),
            "--cores",
            &self.options.cores.to_string(),
            "--memtable-bytes",
            self.options.memtable_bytes,
            "--block-cache-bytes",
            "8MiB",
            "--ca-cert",
            s(&self.certs.ca),
            "--cert",
            s(&self.certs.node_cert),
            "--key",
            s(&self.certs.node_key),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(self.options.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the node is already running");
        let log = self
            .dir
            .path()
            .join(format!("node-{}.log", self.logs.len()));
        let file = std::fs::File::create(&log).expect("create log file");
        let child = Command::new(ferrisdb_bin())
            .args(self.start_args())
            .env_clear()
            // The node's log filter; FERRISDB_TEST_NODE_LOG overrides it
            // (e.g. `debug`) when a test needs more of the node's story.
            .env(
                "RUST_LOG",
                std::env::var("FERRISDB_TEST_NODE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file)
            .spawn()
            .expect("spawn ferrisdb start");
        self.logs.push(log);
        self.child = Some(child);
    }

    /// Starts the node again on the same data directory, ports and
    /// certificates, and waits until it serves.
    pub fn restart(&mut self) {
        self.spawn();
        self.wait_serving();
    }

    /// Waits until `/status` shows every core serving (a core publishes its
    /// status only after its QUIC endpoint is bound). Panics with the log if
    /// the process exits or the deadline passes.
    pub fn wait_serving(&mut self) {
        if !self.serving_within(START_DEADLINE) {
            panic!(
                "node not serving on every core after {START_DEADLINE:?}; threads:\n{}\nlog:\n{}",
                self.threads(),
                self.log()
            );
        }
    }

    /// Whether every core serves within `deadline` (see [`Self::wait_serving`]).
    pub fn serving_within(&mut self, deadline: Duration) -> bool {
        let deadline = Instant::now() + deadline;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "node exited with {status} while starting; log:\n{}",
                    self.log()
                );
            }
            if let Ok((200, body)) = http_get(self.admin, "/status")
                && let Ok(json) = serde_json::from_str::<serde_json::Value>(&body)
                && json["cores"].as_array().is_some_and(|c| {
                    c.len() == self.options.cores && c.iter().all(|c| !c.is_null())
                })
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Starts the node again without waiting for it to serve.
    pub fn respawn(&mut self) {
        self.spawn();
    }

    /// The node's threads with their kernel wait channel and state, for
    /// diagnosing a node that hangs.
    pub fn threads(&self) -> String {
        let Some(child) = self.child.as_ref() else {
            return "not running".into();
        };
        let tasks = format!("/proc/{}/task", child.id());
        let mut out = String::new();
        for entry in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            let read = |name: &str| {
                std::fs::read_to_string(entry.path().join(name))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            let stat = read("stat");
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("?");
            out.push_str(&format!(
                "{} {} state={state} wchan={}\n",
                entry.file_name().to_string_lossy(),
                read("comm"),
                read("wchan")
            ));
        }
        out
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node running").id()
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().expect("try_wait")
    }

    /// Panics (with the log) unless the process is running and its log
    /// shows no panic.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("node was started");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("node exited with {status}; log:\n{}", self.log());
        }
        self.assert_no_panic();
    }

    pub fn assert_no_panic(&self) {
        let log = self.log();
        assert!(!log.contains("panicked"), "the node panicked; log:\n{log}");
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("node running");
        child.kill().expect("SIGKILL the node");
        child.wait().expect("reap the node");
    }

    /// Sends SIGTERM (a graceful shutdown).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT (Ctrl-C, also a graceful shutdown).
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    /// Sends signal `name` to the node's pid with kill(1): the node crate
    /// keeps to safe code, and `libc::kill` is an `unsafe fn`. The pid is our
    /// own child, not yet reaped, so it cannot name another process.
    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("node running").id();
        let status = Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Waits up to `bound` for the process to exit; returns its status and
    /// how long it took, or `None` (process still running) after `bound`.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        while started.elapsed() < bound {
            if let Some(status) = self.try_wait() {
                self.child = None;
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(POLL);
        }
        None
    }

    /// Every start's log, concatenated.
    pub fn log(&self) -> String {
        let mut all = String::new();
        for (i, path) in self.logs.iter().enumerate() {
            all.push_str(&format!("--- start {i} ---\n"));
            all.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        all
    }

    /// The log of the latest start.
    pub fn last_log(&self) -> String {
        self.logs
            .last()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Address of core `i`'s QUIC endpoint.
    pub fn core_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.listen.ip(), self.listen.port() + i as u16)
    }

    /// A client configuration with this node's CA and client certificate.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(
            vec![self.listen],
            Security::MutualTls {
                ca_cert: self.certs.ca.clone(),
                cert: self.certs.client_cert.clone(),
                key: self.certs.client_key.clone(),
            },
        );
        config.connect_timeout = Duration::from_secs(5);
        config.request_timeout = Duration::from_secs(10);
        config
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One `GET` to the admin listener over a plain TCP stream: the status code
/// and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_DEADLINE)?;
    stream.set_read_timeout(Some(HTTP_DEADLINE))?;
    stream.set_write_timeout(Some(HTTP_DEADLINE))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no end of head in {text:?}")))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    Ok((code, body.to_string()))
}

/// A multi-threaded tokio runtime for a test's client side.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A quinn client configuration around `tls` (whatever certificates and
/// ALPN it carries).
pub fn quic_config(tls: rustls::ClientConfig) -> quinn::ClientConfig {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("TLS 1.3 config");
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(Duration::from_secs(20)).expect("fits"),
    ));
    config.transport_config(Arc::new(transport));
    config
}

/// A raw QUIC connection to `addr` (server name `127.0.0.1`), within 10 s.
pub async fn quic_connect(
    addr: SocketAddr,
    config: quinn::ClientConfig,
) -> Result<(quinn::Endpoint, quinn::Connection), quinn::ConnectionError> {
    let endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client endpoint");
    let connecting = endpoint
        .connect_with(config, addr, "127.0.0.1")
        .expect("connect_with");
    let connection = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .expect("handshake within 10 s")?;
    Ok((endpoint, connection))
}

/// How a lane ended, seen from the client.
#[derive(Debug)]
pub enum LaneEnd {
    /// The node finished its side of the stream.
    Finished,
    /// The node reset its side, or the connection closed.
    Failed(String),
    /// Nothing happened before the deadline.
    TimedOut,
}

/// One bidirectional stream on which a test writes raw bytes and reads
/// response frames.
pub struct RawLane {
    pub send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: ferrisdb_proto::FrameDecoder<ferrisdb_proto::ResponseFrame>,
    /// Bytes read but not yet taken by the decoder.
    pending: Vec<u8>,
}

impl RawLane {
    pub async fn open(connection: &quinn::Connection) -> RawLane {
        let (send, recv) = connection.open_bi().await.expect("open a stream");
        RawLane {
            send,
            recv,
            decoder: ferrisdb_proto::FrameDecoder::new(),
            pending: Vec::new(),
        }
    }

    /// Writes `bytes`; an error (the node stopped reading) is returned, not
    /// a panic, since some bad inputs make the node stop the stream.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), quinn::WriteError> {
        self.send.write_all(bytes).await
    }

    /// Finishes our side. Ignores a stream the node already stopped.
    pub fn finish(&mut self) {
        let _ = self.send.finish();
    }

    /// The next response frame, or how the lane ended instead, within
    /// `deadline`. A frame the decoder refuses fails the test.
    pub async fn next(
        &mut self,
        deadline: Duration,
    ) -> Result<ferrisdb_proto::ResponseFrame, LaneEnd> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            while !self.pending.is_empty() {
                let taken = self
                    .decoder
                    .push(&self.pending)
                    .expect("the node sends well-formed frames");
                self.pending.drain(..taken);
                if let Some(frame) = self.decoder.pop() {
                    return Ok(frame.expect("the node sends valid archives"));
                }
            }
            match tokio::time::timeout_at(until, self.recv.read_chunk(64 * 1024, true)).await {
                Err(_) => return Err(LaneEnd::TimedOut),
                Ok(Ok(Some(chunk))) => self.pending.extend_from_slice(&chunk.bytes),
                Ok(Ok(None)) => {
                    self.decoder
                        .finish()
                        .expect("the node ends its stream between frames");
                    return Err(LaneEnd::Finished);
                }
                Ok(Err(err)) => return Err(LaneEnd::Failed(err.to_string())),
            }
        }
    }

    /// Every frame until the lane ends (or `deadline` passes).
    pub async fn read_to_end(
        &mut self,
        deadline: Duration,
    ) -> (Vec<ferrisdb_proto::ResponseFrame>, LaneEnd) {
        let until = tokio::time::Instant::now() + deadline;
        let mut frames = Vec::new();
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(frame) => frames.push(frame),
                Err(end) => return (frames, end),
            }
        }
    }
}

/// A small deterministic generator for garbage bytes (no `rand` here).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// The value a load writer puts under `key`: derived from the key, so a
/// read can be checked without a table, 16 to ~1 KiB long so that
/// memtables fill and flush during a run.
pub fn value_for(key: &[u8]) -> Vec<u8> {
    let seed = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let len = 16 + (seed % 1000) as usize;
    let mut value = key.to_vec();
    value.push(b'=');
    value.extend(XorShift(seed | 1).bytes(len));
    value
}

/// What one writer of a [`WriteLoad`] did.
#[derive(Debug, Default)]
pub struct WriterLog {
    /// Every key it sent a put for (acknowledged or not), in order.
    pub attempted: Vec<Vec<u8>>,
    /// Keys whose put was acknowledged (`Written`), in order.
    pub acked: Vec<Vec<u8>>,
    /// Every failed put.
    pub errors: Vec<ferrisdb_client::Error>,
}

/// Concurrent writers (tokio tasks) putting distinct keys
/// `<prefix>-w<writer>-<seq>` with [`value_for`] values until stopped,
/// each recording what was acknowledged. A failed put is recorded and the
/// writer goes on with the next key after a short pause (the node may be
/// gone; the test decides when to stop).
pub struct WriteLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    acked: Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<WriterLog>>,
}

impl WriteLoad {
    /// Starts `writers` tasks on `rt`; each put has `put_timeout` as its
    /// deadline.
    pub fn start(
        rt: &tokio::runtime::Runtime,
        client: &ferrisdb_client::Client,
        prefix: &str,
        writers: usize,
        put_timeout: Duration,
    ) -> WriteLoad {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks = (0..writers)
            .map(|w| {
                let client = client.with_timeout(put_timeout);
                let (stop, acked) = (stop.clone(), acked.clone());
                let prefix = format!("{prefix}-w{w:02}");
                rt.spawn(async move {
                    let mut log = WriterLog::default();
                    let mut seq = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let key = format!("{prefix}-{seq:07}").into_bytes();
                        seq += 1;
                        log.attempted.push(key.clone());
                        match client.put(&key, value_for(&key)).await {
                            Ok(_) => {
                                log.acked.push(key);
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(err) => {
                                log.errors.push(err);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    log
                })
            })
            .collect();
        WriteLoad { stop, acked, tasks }
    }

    /// Acknowledged puts so far.
    pub fn acked(&self) -> usize {
        self.acked.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until at least `n` puts were acknowledged; false after `deadline`.
    pub async fn wait_acked(&self, n: usize, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        while self.acked() < n {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops the writers and collects their logs (each writer ends after
    /// its put in progress, which has a deadline).
    pub async fn finish(self, deadline: Duration) -> Vec<WriterLog> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut logs = Vec::new();
        for task in self.tasks {
            let log = tokio::time::timeout(deadline, task)
                .await
                .expect("a writer stops within its deadline")
                .expect("a writer does not panic");
            logs.push(log);
        }
        logs
    }
}

/// Checks a node against what writers did: every acknowledged key reads
/// back with its value, and a full scan shows only keys some writer
/// attempted, each with its own value.
pub async fn verify_writes(
    client: &ferrisdb_client::Client,
    acked: &[Vec<u8>],
    attempted: &HashSet<Vec<u8>>,
) -> Result<(), String> {
    let chunks: Vec<Vec<Vec<u8>>> = acked
        .chunks(acked.len().div_ceil(8).max(1))
        .map(<[_]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for key in chunk {
                match client.get(&key).await {
                    Ok(Some(v)) if v == value_for(&key) => {}
                    Ok(Some(_)) => {
                        return Err(format!(
                            "acknowledged key {} has a wrong value",
                            String::from_utf8_lossy(&key)
                        ));
                    }
                    Ok(None) => {
                        return Err(format!(
                            "acknowledged key {} is missing",
                            String::from_utf8_lossy(&key)
                        ));
                    }
                    Err(err) => {
                        return Err(format!("get {}: {err}", String::from_utf8_lossy(&key)));
                    }
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| format!("verifier task: {e}"))??;
    }
    let entries = client
        .scan_collect(ferrisdb_client::ScanOptions::all())
        .await
        .map_err(|e| format!("full scan: {e}"))?;
    let mut seen = HashSet::new();
    for entry in &entries {
        if !attempted.contains(&entry.key) {
            return Err(format!(
                "key {} was never written",
                String::from_utf8_lossy(&entry.key)
            ));
        }
        if entry.value != value_for(&entry.key) {
            return Err(format!(
                "key {} has a wrong value in the scan",
                String::from_utf8_lossy(&entry.key)
            ));
        }
        seen.insert(entry.key.clone());
    }
    if let Some(missing) = acked.iter().find(|k| !seen.contains(*k)) {
        return Err(format!(
            "acknowledged key {} is missing from the scan",
            String::from_utf8_lossy(missing)
        ));
    }
    Ok(())
}

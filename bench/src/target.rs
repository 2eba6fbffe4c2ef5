//! The node a network benchmark (`net`, `ycsb`) talks to: its flags (a
//! running node's `--endpoint` with `--insecure` or certificates, or
//! `--spawn-node` to start one), how the client connects (connections,
//! lanes, client threads), and starting, probing and stopping it.

use crate::node_proc::{self, NodeProcess};
use anyhow::{Context, Result};
use clap::Args;
use ferrisdb_client::{Client, ClientConfig, Security};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `--spawn-node` without a path: the `ferrisdb` beside this executable.
pub const SPAWN_NODE_BESIDE: &str = "auto";
/// Upper bound on `--connections` (each is a `Client` with its own UDP socket).
pub const CONNECTIONS_MAX: usize = 64;
/// Upper bound on `--lanes` (the protocol's streams per connection).
pub const LANES_MAX: usize = ferrisdb_proto::STREAMS_PER_CONNECTION_MAX as usize;
/// Upper bound on `--client_threads` (tokio worker threads).
pub const CLIENT_THREADS_MAX: usize = 64;
/// Upper bound on `--cores` of a spawned node (the node's own limit may be lower).
pub const NODE_CORES_MAX: usize = 256;

/// Which node, and how the client reaches it.
#[derive(Debug, Clone, Args, Serialize)]
pub struct NodeArgs {
    /// Address of a node core (any core answers with the shard map). Not
    /// with --spawn-node.
    #[arg(long, value_name = "HOST:PORT")]
    pub endpoint: Option<String>,
    /// No certificates (the node runs with --insecure; loopback only).
    #[arg(long)]
    pub insecure: bool,
    /// CA certificate (PEM) that signed the node's certificate.
    #[arg(long = "ca-cert", alias = "ca_cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The client's certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client's private key (PEM, PKCS#8).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Client connections (separate `Client`s); worker w uses connection
    /// w mod K.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// QUIC streams ("lanes") per connection.
    #[arg(long, default_value_t = 4)]
    pub lanes: usize,
    /// Tokio worker threads of the client; 1 is a current-thread runtime.
    #[arg(long = "client_threads", alias = "client-threads", default_value_t = 1)]
    pub client_threads: usize,
    /// Let the client combine puts and deletes made at about the same time
    /// for one shard into one batch request (its default);
    /// `--combine_writes=false` sends every write on its own.
    #[arg(long = "combine_writes", alias = "combine-writes", default_value_t = true,
          action = clap::ArgAction::Set, value_name = "BOOL")]
    pub combine_writes: bool,
    /// Start a node from this `ferrisdb` binary (without a value, or
    /// `auto`: the `ferrisdb` next to this executable) with --insecure, a
    /// fresh data directory and free loopback ports; stop it with SIGTERM
    /// at the end.
    #[arg(long = "spawn-node", alias = "spawn_node", value_name = "FERRISDB",
          num_args = 0..=1, default_missing_value = SPAWN_NODE_BESIDE)]
    pub spawn_node: Option<PathBuf>,
    /// Cores of the spawned node.
    #[arg(long, default_value_t = 2)]
    pub cores: usize,
    /// Configuration file of the spawned node (`ferrisdb start --config`),
    /// e.g. one written by `ferrisdb tune config`; the flags the benchmark
    /// passes (--cores, --insecure, addresses, data directory) override it.
    #[arg(long = "node-config", alias = "node_config", value_name = "FILE")]
    pub node_config: Option<PathBuf>,
    /// Before the first benchmark, wait (at most this long) until the
    /// spawned node's data directory stops growing: a fresh node zero-fills
    /// its shards' WAL segments in the background. 0: start at once.
    #[arg(
        long = "node_settle_secs",
        alias = "node-settle-secs",
        default_value_t = 120.0
    )]
    pub node_settle_secs: f64,
}

impl NodeArgs {
    /// Rejects flag values outside their limits and contradicting flags.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) {
            return Err(format!("--connections must be 1..={CONNECTIONS_MAX}"));
        }
        if !(1..=LANES_MAX).contains(&self.lanes) {
            return Err(format!("--lanes must be 1..={LANES_MAX}"));
        }
        if !(1..=CLIENT_THREADS_MAX).contains(&self.client_threads) {
            return Err(format!("--client_threads must be 1..={CLIENT_THREADS_MAX}"));
        }
        if !(0.0..=3600.0).contains(&self.node_settle_secs) {
            return Err("--node_settle_secs must be in 0..=3600".into());
        }
        if !(1..=NODE_CORES_MAX).contains(&self.cores) {
            return Err(format!("--cores must be 1..={NODE_CORES_MAX}"));
        }
        match (&self.endpoint, &self.spawn_node) {
            (None, None) => return Err("give --endpoint HOST:PORT or --spawn-node".into()),
            (Some(_), Some(_)) => {
                return Err("--endpoint and --spawn-node exclude each other".into());
            }
            _ => {}
        }
        if self.node_config.is_some() && self.spawn_node.is_none() {
            return Err("--node-config needs --spawn-node".into());
        }
        let tls = [&self.ca_cert, &self.cert, &self.key];
        let tls_given = tls.iter().filter(|f| f.is_some()).count();
        if self.spawn_node.is_some() {
            if tls_given > 0 {
                return Err(
                    "a spawned node runs with --insecure: drop --ca-cert/--cert/--key".into(),
                );
            }
        } else if self.insecure == (tls_given == 3) || (tls_given != 0 && tls_given != 3) {
            return Err("give either --insecure or all of --ca-cert, --cert and --key".into());
        }
        Ok(())
    }

    fn security(&self) -> Security {
        match (&self.ca_cert, &self.cert, &self.key) {
            (Some(ca_cert), Some(cert), Some(key)) => Security::MutualTls {
                ca_cert: ca_cert.clone(),
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => Security::Insecure,
        }
    }
}

/// Where a series runs and how it connects.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint: SocketAddr,
    pub security: Security,
    /// The node's data directory when this process started the node.
    pub data_dir: Option<PathBuf>,
    pub node_cores: Option<usize>,
}

/// Starts the node (`--spawn-node`, its data directory in `parent`, one
/// shard per core split at `split_keys`) and waits until it serves, or
/// resolves `--endpoint`.
pub fn open(
    args: &NodeArgs,
    parent: &Path,
    split_keys: &[String],
) -> Result<(Option<NodeProcess>, Target)> {
    let Some(path) = &args.spawn_node else {
        let endpoint = args
            .endpoint
            .as_deref()
            .expect("validated: endpoint or spawn");
        let target = Target {
            endpoint: resolve(endpoint)?,
            security: args.security(),
            data_dir: None,
            node_cores: None,
        };
        return Ok((None, target));
    };
    let binary = node_proc::locate_binary(path)?;
    let dir = parent.join(format!("ferrisdb-node-{}", std::process::id()));
    let mut attempt = 1;
    let (node, target) = loop {
        let mut node = NodeProcess::start(
            &binary,
            args.cores,
            &dir,
            split_keys,
            args.node_config.as_deref(),
        )?;
        let target = Target {
            endpoint: node.endpoint,
            security: Security::Insecure,
            data_dir: Some(node.data_dir.clone()),
            node_cores: Some(node.cores),
        };
        match node.wait_ready(|| probe(&target)) {
            Ok(()) => break (node, target),
            // The free ports were free when picked, not when the node bound
            // them: another process took one. Pick others.
            Err(err) if attempt < node_proc::SPAWN_ATTEMPTS_MAX && node.lost_a_port() => {
                println!("node: {err:#}\nnode: a port was taken meanwhile; starting on others");
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    };
    if args.node_settle_secs > 0.0 {
        let (bytes, waited) = node.settle(Duration::from_secs_f64(args.node_settle_secs))?;
        println!(
            "node: data directory settled at {:.1} MB after {:.1} s (WAL segments preallocated)",
            bytes as f64 / 1048576.0,
            waited.as_secs_f64()
        );
    }
    Ok((Some(node), target))
}

/// Stops a node this process started and removes its data directory.
pub fn close(node: Option<NodeProcess>) -> Result<()> {
    if let Some(mut n) = node {
        n.stop()?;
        crate::remove_dir_if_exists(&n.data_dir)?;
    }
    Ok(())
}

/// `HOST:PORT` to one socket address (the first the resolver gives).
fn resolve(endpoint: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    endpoint
        .to_socket_addrs()
        .with_context(|| format!("resolve --endpoint {endpoint}"))?
        .next()
        .with_context(|| format!("--endpoint {endpoint} resolves to no address"))
}

/// Whether a client can connect and fetch the shard map right now.
pub fn probe(target: &Target) -> bool {
    let Ok(runtime) = runtime(1) else {
        return false;
    };
    runtime.block_on(async {
        let mut config = ClientConfig::new(vec![target.endpoint], target.security.clone());
        config.connect_timeout = Duration::from_millis(500);
        config.request_timeout = Duration::from_millis(500);
        Client::connect(config).await.is_ok()
    })
}

/// The client's tokio runtime: current-thread for 1, else multi-threaded.
pub fn runtime(client_threads: usize) -> Result<tokio::runtime::Runtime> {
    if client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(client_threads)
            .enable_all()
            .build()
    }
    .context("start the tokio runtime")
}

/// One client connection with `node`'s lanes and write combining, room
/// for `in_flight` requests and a `timeout` deadline per request.
pub async fn connect(
    target: &Target,
    node: &NodeArgs,
    in_flight: usize,
    timeout: Duration,
) -> Result<Client> {
    let mut config = ClientConfig::new(vec![target.endpoint], target.security.clone());
    config.request_timeout = timeout;
    config.lanes_per_connection = node.lanes;
    config.max_in_flight = in_flight;
    config.combine_writes = node.combine_writes;
    Client::connect(config)
        .await
        .with_context(|| format!("connect to the node at {}", target.endpoint))
}

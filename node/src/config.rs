//! The node's configuration: TOML file, `FERRISDB_*` environment variables
//! and command-line flags, in increasing order of precedence.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Certificates for mutual TLS. All three are required unless `insecure`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate (PEM) that signed the node's and the clients' certificates.
    pub ca_cert: Option<PathBuf>,
    /// This node's certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// This node's private key (PEM, PKCS#8).
    pub key: Option<PathBuf>,
}

/// The effective configuration of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// QUIC address of core 0; core i listens on the same host at port + i.
    pub listen: SocketAddr,
    /// HTTP address of `/metrics`, `/healthz`, `/status`.
    pub admin: SocketAddr,
    /// Pinned executors (one per core), each owning its shards.
    pub cores: usize,
    /// Shards each core owns; the key space is split into `cores * shards_per_core` ranges.
    pub shards_per_core: u32,
    /// No TLS client authentication and a throwaway server certificate; only
    /// loopback listen addresses are accepted.
    pub insecure: bool,
    pub tls: TlsFiles,
    pub log_format: LogFormat,
    /// Memtable size of each shard's engine, in bytes.
    pub memtable_bytes: u64,
    /// Block cache of each core, in bytes.
    pub block_cache_bytes: u64,
    /// Deadline of a request that carries none, in milliseconds.
    pub request_timeout_ms: u32,
}

/// Flags of `ferrisdb start` and `ferrisdb config print` (highest precedence).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file (lowest precedence).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    #[arg(long, value_name = "HOST:PORT")]
    pub admin: Option<SocketAddr>,
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Plain (unauthenticated) TLS, loopback only.
    #[arg(long)]
    pub insecure: bool,
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (file, environment, flags merged) as TOML.
    Print(ConfigArgs),
}

/// Merges file, environment and flags into the effective configuration.
pub fn load(_args: &ConfigArgs) -> anyhow::Result<NodeConfig> {
    anyhow::bail!("configuration loading is not built yet")
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        ConfigCommand::Print(args) => {
            let config = load(&args)?;
            print!("{}", toml::to_string(&config)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

//! The node's configuration: TOML file, `FERRISDB_*` environment variables
//! and command-line flags, in increasing order of precedence.
//!
//! `resolve` is the pure part (layers merged over the defaults, then every
//! rule that does not depend on the machine); [`load`] reads the file and the
//! process environment, calls it, then checks what depends on the machine
//! (CPUs available, TLS files readable). `docs/operations.md` lists every key.

mod tuned;

use crate::cert;
use anyhow::{Context, bail};
use ferrisdb_proto::tls;
use serde::{Deserialize, Deserializer, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

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
///
/// # Invariants (after `resolve`)
/// `1 <= cores <= CORES_MAX`, `listen.port() + cores - 1 <= 65535`, every
/// size and the timeout within its bounds below, and when `insecure` both
/// `listen` and `admin` are loopback addresses; otherwise all three TLS
/// files are set (and [`load`] has read them).
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
    /// Keys where shards start (escaped as `ferrisdb shell` prints keys,
    /// e.g. `user5` or `\x80`), strictly increasing; when set they replace
    /// the even split of `cores * shards_per_core`. Read only when a data
    /// directory is first created: the shard layout is fixed after that.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split_keys: Vec<String>,
    /// No TLS client authentication and a throwaway server certificate; only
    /// loopback listen addresses are accepted.
    pub insecure: bool,
    pub log_format: LogFormat,
    /// Memtable size of each shard's engine, in bytes.
    pub memtable_bytes: u64,
    /// Block cache of each core, in bytes.
    pub block_cache_bytes: u64,
    /// Deadline of a request that carries none, in milliseconds.
    pub request_timeout_ms: u32,
    /// Disk operations each core keeps in flight at most.
    pub io_depth: u32,
    /// CPU shares of each core's background queue (flush, compaction)
    /// against the foreground's 1000.
    pub background_shares: u32,
    /// Output bytes per second of each core's compactions (0: no limit).
    pub compaction_bytes_per_sec: u64,
    /// The io_properties.toml the device settings not set explicitly came
    /// from, if one was found (`config/tuned.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_properties: Option<PathBuf>,
    /// Last, because TOML writes tables after plain values.
    pub tls: TlsFiles,
}

pub const LISTEN_DEFAULT: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7400);
pub const ADMIN_DEFAULT: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7480);
pub const CORES_DEFAULT: usize = 1;
/// Cores one node runs at most (also bounded by the CPUs available to it).
pub const CORES_MAX: usize = 64;
pub const SHARDS_PER_CORE_DEFAULT: u32 = 1;
pub const SHARDS_PER_CORE_MAX: u32 = 256;
pub const MEMTABLE_BYTES_DEFAULT: u64 = 64 << 20;
pub const MEMTABLE_BYTES_MIN: u64 = 64 << 10;
pub const MEMTABLE_BYTES_MAX: u64 = 4 << 30;
pub const BLOCK_CACHE_BYTES_DEFAULT: u64 = 256 << 20;
pub const BLOCK_CACHE_BYTES_MIN: u64 = 1 << 20;
pub const BLOCK_CACHE_BYTES_MAX: u64 = 1 << 40;
pub const REQUEST_TIMEOUT_MS_DEFAULT: u32 = 10_000;
pub const IO_DEPTH_DEFAULT: u32 = ferrisdb_io::executor::IO_DEPTH_DEFAULT as u32;
pub const IO_DEPTH_MAX: u32 = ferrisdb_io::executor::IO_DEPTH_MAX as u32;
pub const BACKGROUND_SHARES_DEFAULT: u32 = ferrisdb_io::executor::BACKGROUND_SHARES_DEFAULT as u32;
pub const BACKGROUND_SHARES_MAX: u32 = ferrisdb_io::executor::BACKGROUND_SHARES_MAX as u32;
/// 0 (no limit) or at least this: slower compaction falls behind any load.
pub const COMPACTION_BYTES_PER_SEC_MIN: u64 = 1 << 20;
pub const COMPACTION_BYTES_PER_SEC_MAX: u64 = 1 << 40;
/// A request may not ask for a longer deadline either (protocol limit).
pub const REQUEST_TIMEOUT_MS_MAX: u32 = ferrisdb_proto::limits::REQUEST_TIMEOUT_MS_MAX;

const _: () = assert!(REQUEST_TIMEOUT_MS_DEFAULT <= REQUEST_TIMEOUT_MS_MAX);
const _: () = assert!(MEMTABLE_BYTES_MIN <= MEMTABLE_BYTES_DEFAULT);
const _: () = assert!(MEMTABLE_BYTES_DEFAULT <= MEMTABLE_BYTES_MAX);
const _: () = assert!(BLOCK_CACHE_BYTES_MIN <= BLOCK_CACHE_BYTES_DEFAULT);
const _: () = assert!(BLOCK_CACHE_BYTES_DEFAULT <= BLOCK_CACHE_BYTES_MAX);
const _: () = assert!(CORES_DEFAULT <= CORES_MAX && SHARDS_PER_CORE_DEFAULT <= SHARDS_PER_CORE_MAX);

/// Names the configuration file when `--config` is not given.
pub const ENV_CONFIG: &str = "FERRISDB_CONFIG";
pub const ENV_DATA_DIR: &str = "FERRISDB_DATA_DIR";
pub const ENV_LISTEN: &str = "FERRISDB_LISTEN";
pub const ENV_ADMIN: &str = "FERRISDB_ADMIN";
pub const ENV_CORES: &str = "FERRISDB_CORES";
pub const ENV_SHARDS_PER_CORE: &str = "FERRISDB_SHARDS_PER_CORE";
pub const ENV_SPLIT_KEYS: &str = "FERRISDB_SPLIT_KEYS";
pub const ENV_INSECURE: &str = "FERRISDB_INSECURE";
pub const ENV_LOG_FORMAT: &str = "FERRISDB_LOG_FORMAT";
pub const ENV_MEMTABLE_BYTES: &str = "FERRISDB_MEMTABLE_BYTES";
pub const ENV_BLOCK_CACHE_BYTES: &str = "FERRISDB_BLOCK_CACHE_BYTES";
pub const ENV_REQUEST_TIMEOUT_MS: &str = "FERRISDB_REQUEST_TIMEOUT_MS";
pub const ENV_CA_CERT: &str = "FERRISDB_CA_CERT";
pub const ENV_CERT: &str = "FERRISDB_CERT";
pub const ENV_KEY: &str = "FERRISDB_KEY";
pub const ENV_IO_DEPTH: &str = "FERRISDB_IO_DEPTH";
pub const ENV_BACKGROUND_SHARES: &str = "FERRISDB_BACKGROUND_SHARES";
pub const ENV_COMPACTION_BYTES_PER_SEC: &str = "FERRISDB_COMPACTION_BYTES_PER_SEC";
pub const ENV_IO_PROPERTIES: &str = "FERRISDB_IO_PROPERTIES";
/// Every variable this module reads; no other is looked at.
pub const ENV_NAMES: [&str; 19] = [
    ENV_CONFIG,
    ENV_DATA_DIR,
    ENV_LISTEN,
    ENV_ADMIN,
    ENV_CORES,
    ENV_SHARDS_PER_CORE,
    ENV_SPLIT_KEYS,
    ENV_INSECURE,
    ENV_LOG_FORMAT,
    ENV_MEMTABLE_BYTES,
    ENV_BLOCK_CACHE_BYTES,
    ENV_REQUEST_TIMEOUT_MS,
    ENV_CA_CERT,
    ENV_CERT,
    ENV_KEY,
    ENV_IO_DEPTH,
    ENV_BACKGROUND_SHARES,
    ENV_COMPACTION_BYTES_PER_SEC,
    ENV_IO_PROPERTIES,
];

impl NodeConfig {
    /// `split_keys` as bytes: each unescaped, non-empty, at most
    /// `KEY_BYTES_MAX` long, strictly increasing, and few enough shards.
    pub fn split_key_bytes(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(self.split_keys.len());
        for text in &self.split_keys {
            let key =
                crate::escape::unescape(text).map_err(|e| anyhow::anyhow!("split_keys: {e}"))?;
            if key.is_empty() || key.len() > ferrisdb_proto::KEY_BYTES_MAX {
                bail!(
                    "split_keys: {text:?} must be 1..={} bytes",
                    ferrisdb_proto::KEY_BYTES_MAX
                );
            }
            if keys.last().is_some_and(|prev| *prev >= key) {
                bail!(
                    "split_keys: {text:?} is not after the key before it; give them in increasing order"
                );
            }
            keys.push(key);
        }
        let shards = keys.len() + 1;
        if shards > crate::server::layout::SHARDS_MAX as usize {
            bail!(
                "split_keys: {shards} shards; a node holds at most {}",
                crate::server::layout::SHARDS_MAX
            );
        }
        Ok(keys)
    }
}

/// Flags of `ferrisdb start` and `ferrisdb config print` (highest precedence).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file (lowest precedence) [env: FERRISDB_CONFIG].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (required) [env: FERRISDB_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// QUIC address of core 0; core i uses port + i [default: 127.0.0.1:7400] [env: FERRISDB_LISTEN].
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// HTTP address of /metrics, /healthz and /status [default: 127.0.0.1:7480] [env: FERRISDB_ADMIN].
    #[arg(long, value_name = "IP:PORT")]
    pub admin: Option<SocketAddr>,
    /// Cores (pinned executors) [default: 1] [env: FERRISDB_CORES].
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Shards owned by each core [default: 1] [env: FERRISDB_SHARDS_PER_CORE].
    #[arg(long, value_name = "N")]
    pub shards_per_core: Option<u32>,
    /// Keys where shards start, comma-separated, `\xHH` escapes allowed;
    /// used when the data directory is created [env: FERRISDB_SPLIT_KEYS].
    #[arg(long, value_name = "KEY,KEY,...", value_delimiter = ',')]
    pub split_keys: Option<Vec<String>>,
    /// No mutual TLS; listen and admin must be loopback addresses [env: FERRISDB_INSECURE].
    #[arg(long)]
    pub insecure: bool,
    /// Log line format [default: pretty] [env: FERRISDB_LOG_FORMAT].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// CA certificate (PEM) that signs nodes and clients [env: FERRISDB_CA_CERT].
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// This node's certificate chain (PEM) [env: FERRISDB_CERT].
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// This node's private key (PEM) [env: FERRISDB_KEY].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Memtable size of each shard, bytes or e.g. 64MiB [default: 64MiB] [env: FERRISDB_MEMTABLE_BYTES].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memtable_bytes: Option<u64>,
    /// Block cache of each core, bytes or e.g. 256MiB [default: 256MiB] [env: FERRISDB_BLOCK_CACHE_BYTES].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub block_cache_bytes: Option<u64>,
    /// Deadline of a request that carries none [default: 10000] [env: FERRISDB_REQUEST_TIMEOUT_MS].
    #[arg(long, value_name = "MS")]
    pub request_timeout_ms: Option<u32>,
    /// Disk operations each core keeps in flight [default: from io_properties.toml, else 256] [env: FERRISDB_IO_DEPTH].
    #[arg(long, value_name = "N")]
    pub io_depth: Option<u32>,
    /// CPU shares of each core's flush and compaction queue against the foreground's 1000 [default: from io_properties.toml, else 250] [env: FERRISDB_BACKGROUND_SHARES].
    #[arg(long, value_name = "N")]
    pub background_shares: Option<u32>,
    /// Compaction output per core per second, 0 for no limit [default: from io_properties.toml, else 0] [env: FERRISDB_COMPACTION_BYTES_PER_SEC].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub compaction_bytes_per_sec: Option<u64>,
    /// Device measurements from `ferrisdb tune disk` [default: DATA_DIR/io_properties.toml if present] [env: FERRISDB_IO_PROPERTIES].
    #[arg(long, value_name = "FILE")]
    pub io_properties: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (file, environment, flags merged) as TOML.
    Print(ConfigArgs),
}

/// One source of settings: every key optional. The file is parsed straight
/// into it, so its field names are the file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    cores: Option<usize>,
    shards_per_core: Option<u32>,
    split_keys: Option<Vec<String>>,
    insecure: Option<bool>,
    log_format: Option<LogFormat>,
    #[serde(default, deserialize_with = "de_bytes")]
    memtable_bytes: Option<u64>,
    #[serde(default, deserialize_with = "de_bytes")]
    block_cache_bytes: Option<u64>,
    request_timeout_ms: Option<u32>,
    io_depth: Option<u32>,
    background_shares: Option<u32>,
    #[serde(default, deserialize_with = "de_bytes")]
    compaction_bytes_per_sec: Option<u64>,
    io_properties: Option<PathBuf>,
    #[serde(default)]
    tls: TlsFiles,
}

impl Layer {
    /// `self` with every key `higher` sets replaced by its value.
    fn under(self, higher: Layer) -> Layer {
        Layer {
            data_dir: higher.data_dir.or(self.data_dir),
            listen: higher.listen.or(self.listen),
            admin: higher.admin.or(self.admin),
            cores: higher.cores.or(self.cores),
            shards_per_core: higher.shards_per_core.or(self.shards_per_core),
            split_keys: higher.split_keys.or(self.split_keys),
            insecure: higher.insecure.or(self.insecure),
            log_format: higher.log_format.or(self.log_format),
            memtable_bytes: higher.memtable_bytes.or(self.memtable_bytes),
            block_cache_bytes: higher.block_cache_bytes.or(self.block_cache_bytes),
            request_timeout_ms: higher.request_timeout_ms.or(self.request_timeout_ms),
            io_depth: higher.io_depth.or(self.io_depth),
            background_shares: higher.background_shares.or(self.background_shares),
            compaction_bytes_per_sec: higher
                .compaction_bytes_per_sec
                .or(self.compaction_bytes_per_sec),
            io_properties: higher.io_properties.or(self.io_properties),
            tls: TlsFiles {
                ca_cert: higher.tls.ca_cert.or(self.tls.ca_cert),
                cert: higher.tls.cert.or(self.tls.cert),
                key: higher.tls.key.or(self.tls.key),
            },
        }
    }

    fn from_file(path: &Path, text: &str) -> anyhow::Result<Layer> {
        toml::from_str(text).map_err(|err| {
            let place = match err.span() {
                Some(span) => {
                    let (line, column) = line_column(text, span.start);
                    format!("line {line}, column {column}: ")
                }
                None => String::new(),
            };
            // toml's messages may span lines; an error is one line here.
            let message = err.message().trim().replace('\n', "; ");
            anyhow::anyhow!("config file {}: {place}{message}", path.display())
        })
    }

    fn from_env(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Layer> {
        // An empty variable counts as unset (`FERRISDB_CORES= ferrisdb start`).
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        fn parsed<T>(
            name: &str,
            value: Option<String>,
            parse: impl Fn(&str) -> Result<T, String>,
        ) -> anyhow::Result<Option<T>> {
            value
                .map(|v| {
                    parse(v.trim())
                        .map_err(|why| anyhow::anyhow!("environment variable {name}={v:?}: {why}"))
                })
                .transpose()
        }
        fn from_str<T: std::str::FromStr>(v: &str) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            v.parse::<T>().map_err(|e| e.to_string())
        }
        Ok(Layer {
            data_dir: get(ENV_DATA_DIR).map(PathBuf::from),
            listen: parsed(ENV_LISTEN, get(ENV_LISTEN), from_str)?,
            admin: parsed(ENV_ADMIN, get(ENV_ADMIN), from_str)?,
            cores: parsed(ENV_CORES, get(ENV_CORES), from_str)?,
            shards_per_core: parsed(ENV_SHARDS_PER_CORE, get(ENV_SHARDS_PER_CORE), from_str)?,
            split_keys: get(ENV_SPLIT_KEYS).map(|v| v.split(',').map(str::to_string).collect()),
            insecure: parsed(ENV_INSECURE, get(ENV_INSECURE), parse_bool)?,
            log_format: parsed(ENV_LOG_FORMAT, get(ENV_LOG_FORMAT), |v| {
                <LogFormat as clap::ValueEnum>::from_str(v, true)
                    .map_err(|_| "expected pretty or json".to_string())
            })?,
            memtable_bytes: parsed(ENV_MEMTABLE_BYTES, get(ENV_MEMTABLE_BYTES), parse_bytes)?,
            block_cache_bytes: parsed(
                ENV_BLOCK_CACHE_BYTES,
                get(ENV_BLOCK_CACHE_BYTES),
                parse_bytes,
            )?,
            request_timeout_ms: parsed(
                ENV_REQUEST_TIMEOUT_MS,
                get(ENV_REQUEST_TIMEOUT_MS),
                from_str,
            )?,
            io_depth: parsed(ENV_IO_DEPTH, get(ENV_IO_DEPTH), from_str)?,
            background_shares: parsed(ENV_BACKGROUND_SHARES, get(ENV_BACKGROUND_SHARES), from_str)?,
            compaction_bytes_per_sec: parsed(
                ENV_COMPACTION_BYTES_PER_SEC,
                get(ENV_COMPACTION_BYTES_PER_SEC),
                parse_bytes,
            )?,
            io_properties: get(ENV_IO_PROPERTIES).map(PathBuf::from),
            tls: TlsFiles {
                ca_cert: get(ENV_CA_CERT).map(PathBuf::from),
                cert: get(ENV_CERT).map(PathBuf::from),
                key: get(ENV_KEY).map(PathBuf::from),
            },
        })
    }

    fn from_args(args: &ConfigArgs) -> Layer {
        Layer {
            data_dir: args.data_dir.clone(),
            listen: args.listen,
            admin: args.admin,
            cores: args.cores,
            shards_per_core: args.shards_per_core,
            split_keys: args.split_keys.clone(),
            // A flag can only turn insecure mode on.
            insecure: args.insecure.then_some(true),
            log_format: args.log_format,
            memtable_bytes: args.memtable_bytes,
            block_cache_bytes: args.block_cache_bytes,
            request_timeout_ms: args.request_timeout_ms,
            io_depth: args.io_depth,
            background_shares: args.background_shares,
            compaction_bytes_per_sec: args.compaction_bytes_per_sec,
            io_properties: args.io_properties.clone(),
            tls: TlsFiles {
                ca_cert: args.ca_cert.clone(),
                cert: args.cert.clone(),
                key: args.key.clone(),
            },
        }
    }
}

/// A configuration file: where it was read from (for messages) and its text.
#[derive(Debug, Clone, Copy)]
pub struct ConfigFile<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

/// Merges defaults < file < environment < flags and checks every rule that
/// does not depend on the machine. Pure: `env` stands for the process
/// environment and is asked only for the `FERRISDB_*` names this module
/// knows (others are left alone: test suites use some). No io_properties.toml
/// is read ([`resolve_with`] reads one; the node uses that).
#[cfg(test)]
pub fn resolve(
    file: Option<ConfigFile<'_>>,
    env: &dyn Fn(&str) -> Option<String>,
    args: &ConfigArgs,
) -> anyhow::Result<NodeConfig> {
    resolve_with(file, env, args, &|_| Ok(None))
}

/// `resolve` (test builds), with the device settings left unset taken from the
/// io_properties.toml that `io_properties` reads (`None`: no such file).
pub fn resolve_with(
    file: Option<ConfigFile<'_>>,
    env: &dyn Fn(&str) -> Option<String>,
    args: &ConfigArgs,
    io_properties: &tuned::IoReader<'_>,
) -> anyhow::Result<NodeConfig> {
    let file = match file {
        Some(f) => Layer::from_file(f.path, f.text)?,
        None => Layer::default(),
    };
    let merged = file
        .under(Layer::from_env(env)?)
        .under(Layer::from_args(args));
    let Some(data_dir) = merged.data_dir.filter(|d| !d.as_os_str().is_empty()) else {
        bail!(
            "no data directory: pass --data-dir DIR, set {ENV_DATA_DIR} or set data_dir in the config file"
        );
    };
    let cores = merged.cores.unwrap_or(CORES_DEFAULT);
    let device = tuned::DeviceLayer {
        io_depth: merged.io_depth,
        background_shares: merged.background_shares,
        compaction_bytes_per_sec: merged.compaction_bytes_per_sec,
        io_properties: merged.io_properties,
    }
    .resolve(&data_dir, cores, io_properties)?;
    let config = NodeConfig {
        data_dir,
        listen: merged.listen.unwrap_or(LISTEN_DEFAULT),
        admin: merged.admin.unwrap_or(ADMIN_DEFAULT),
        cores,
        shards_per_core: merged.shards_per_core.unwrap_or(SHARDS_PER_CORE_DEFAULT),
        split_keys: merged.split_keys.unwrap_or_default(),
        insecure: merged.insecure.unwrap_or(false),
        log_format: merged.log_format.unwrap_or(LogFormat::Pretty),
        memtable_bytes: merged.memtable_bytes.unwrap_or(MEMTABLE_BYTES_DEFAULT),
        block_cache_bytes: merged
            .block_cache_bytes
            .unwrap_or(BLOCK_CACHE_BYTES_DEFAULT),
        request_timeout_ms: merged
            .request_timeout_ms
            .unwrap_or(REQUEST_TIMEOUT_MS_DEFAULT),
        io_depth: device.io_depth,
        background_shares: device.background_shares,
        compaction_bytes_per_sec: device.compaction_bytes_per_sec,
        io_properties: device.io_properties,
        tls: merged.tls,
    };
    validate(&config)?;
    Ok(config)
}

/// The rules that hold on any machine; each failure is one line naming the key.
fn validate(c: &NodeConfig) -> anyhow::Result<()> {
    if !(1..=CORES_MAX).contains(&c.cores) {
        bail!("cores is {}; it must be between 1 and {CORES_MAX}", c.cores);
    }
    if c.listen.port() == 0 {
        bail!(
            "listen port is 0; give a port: core i listens on port + i, which clients learn from the shard map"
        );
    }
    let last_port = usize::from(c.listen.port()) + c.cores - 1;
    if last_port > usize::from(u16::MAX) {
        bail!(
            "listen port {} with {} cores needs ports up to {last_port}, beyond 65535",
            c.listen.port(),
            c.cores
        );
    }
    if !(1..=SHARDS_PER_CORE_MAX).contains(&c.shards_per_core) {
        bail!(
            "shards_per_core is {}; it must be between 1 and {SHARDS_PER_CORE_MAX}",
            c.shards_per_core
        );
    }
    c.split_key_bytes()?;
    check_range(
        "memtable_bytes",
        c.memtable_bytes,
        MEMTABLE_BYTES_MIN,
        MEMTABLE_BYTES_MAX,
    )?;
    check_range(
        "block_cache_bytes",
        c.block_cache_bytes,
        BLOCK_CACHE_BYTES_MIN,
        BLOCK_CACHE_BYTES_MAX,
    )?;
    if !(1..=REQUEST_TIMEOUT_MS_MAX).contains(&c.request_timeout_ms) {
        bail!(
            "request_timeout_ms is {}; it must be between 1 and {REQUEST_TIMEOUT_MS_MAX}",
            c.request_timeout_ms
        );
    }
    tuned::validate(c)?;
    if c.insecure {
        // Nothing the node serves is authenticated in insecure mode, so
        // nothing it binds may be reachable from another machine.
        for (key, addr) in [("listen", c.listen), ("admin", c.admin)] {
            if !is_loopback(addr.ip()) {
                bail!(
                    "insecure mode binds loopback only, but {key} is {addr}: use 127.0.0.1 or ::1, \
                     or run with mutual TLS (see `ferrisdb cert`)"
                );
            }
        }
    } else {
        let missing: Vec<&str> = [
            ("ca_cert (--ca-cert)", &c.tls.ca_cert),
            ("cert (--cert)", &c.tls.cert),
            ("key (--key)", &c.tls.key),
        ]
        .into_iter()
        .filter(|(_, path)| path.is_none())
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            bail!(
                "mutual TLS needs tls.{}: make them with `ferrisdb cert`, or pass --insecure \
                 for a loopback-only node without TLS",
                missing.join(", tls.")
            );
        }
    }
    Ok(())
}

fn check_range(key: &str, value: u64, min: u64, max: u64) -> anyhow::Result<()> {
    if !(min..=max).contains(&value) {
        bail!(
            "{key} is {value}; it must be between {} and {}",
            show_bytes(min),
            show_bytes(max)
        );
    }
    Ok(())
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Checks what depends on this machine: the CPUs available to the process
/// and the TLS files (present, readable, holding a certificate or a key,
/// the key matching the certificate).
pub fn check_host(config: &NodeConfig, cpus_available: usize) -> anyhow::Result<()> {
    if config.cores > cpus_available {
        bail!(
            "cores is {} but only {cpus_available} CPUs are available to this process",
            config.cores
        );
    }
    if !config.insecure {
        let tls = &config.tls;
        let (Some(ca), Some(cert), Some(key)) = (&tls.ca_cert, &tls.cert, &tls.key) else {
            unreachable!("validate requires every TLS file unless insecure");
        };
        let roots = tls::load_roots(ca).context("tls.ca_cert")?;
        let chain = tls::load_certs(cert).context("tls.cert")?;
        let key_der = tls::load_private_key(key).context("tls.key")?;
        cert::check_key_matches(chain.clone(), key_der).with_context(|| {
            format!("tls.key {} and tls.cert {}", key.display(), cert.display())
        })?;
        // Caught here, a CA/certificate mix-up is one line at start instead
        // of every handshake failing later.
        cert::check_issued_by(&chain, &roots).with_context(|| {
            format!(
                "tls.cert {} is not valid under tls.ca_cert {}",
                cert.display(),
                ca.display()
            )
        })?;
    }
    Ok(())
}

/// Merges file, environment and flags into the effective configuration.
pub fn load(args: &ConfigArgs) -> anyhow::Result<NodeConfig> {
    for name in ENV_NAMES {
        if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
            bail!("environment variable {name} is not valid UTF-8");
        }
    }
    let env = |name: &str| std::env::var(name).ok();
    let path = args
        .config
        .clone()
        .or_else(|| env(ENV_CONFIG).filter(|v| !v.is_empty()).map(PathBuf::from));
    let text = match &path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("read config file {}", p.display()))?,
        ),
        None => None,
    };
    let file = path
        .as_deref()
        .zip(text.as_deref())
        .map(|(path, text)| ConfigFile { path, text });
    let config = resolve_with(file, &env, args, &tuned::read_io_properties)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    check_host(&config, cpus)?;
    Ok(config)
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        ConfigCommand::Print(args) => {
            let config = load(&args)?;
            print!(
                "{}",
                toml::to_string(&config).context("write the configuration as TOML")?
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A size in bytes: a plain number, or a number followed by KiB, MiB, GiB
/// or TiB (case-insensitive, optional space): `65536`, `64KiB`, `1 GiB`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" => 10,
        "mib" => 20,
        "gib" => 30,
        "tib" => 40,
        _ => {
            return Err(format!(
                "invalid size {text:?}: expected bytes, or a number with KiB, MiB, GiB or TiB (e.g. 64MiB)"
            ));
        }
    };
    let n: u64 = number.parse().map_err(|_| {
        format!("invalid size {text:?}: expected a number of bytes, e.g. 67108864 or 64MiB")
    })?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// `n` bytes in the largest binary unit that divides it exactly.
fn show_bytes(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n != 0 && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_string()),
    }
}

/// Sizes in the file: an integer, or a string such as "64MiB".
fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Bytes;
    impl serde::de::Visitor<'_> for Bytes {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a size in bytes: an integer or a string such as \"64MiB\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("size {v} is negative")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            parse_bytes(v).map_err(E::custom)
        }
    }
    d.deserialize_any(Bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn insecure_args(dir: &str) -> ConfigArgs {
        ConfigArgs {
            data_dir: Some(dir.into()),
            insecure: true,
            ..ConfigArgs::default()
        }
    }

    fn file<'a>(text: &'a str) -> Option<ConfigFile<'a>> {
        Some(ConfigFile {
            path: Path::new("/etc/ferrisdb.toml"),
            text,
        })
    }

    fn err(r: anyhow::Result<NodeConfig>) -> String {
        let e = format!("{:#}", r.expect_err("must be rejected"));
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = resolve(None, &no_env, &insecure_args("/d")).expect("valid");
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.listen, addr("127.0.0.1:7400"));
        assert_eq!(c.admin, addr("127.0.0.1:7480"));
        assert_eq!(c.cores, 1);
        assert_eq!(c.shards_per_core, SHARDS_PER_CORE_DEFAULT);
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.memtable_bytes, 64 << 20);
        assert_eq!(c.block_cache_bytes, 256 << 20);
        assert_eq!(c.request_timeout_ms, 10_000);
        assert_eq!(c.tls, TlsFiles::default());
    }

    #[test]
    fn file_then_env_then_flags_take_precedence() {
        let text = r#"
            data_dir = "/from-file"
            listen = "127.0.0.1:8000"
            admin = "127.0.0.1:8080"
            cores = 2
            shards_per_core = 8
            insecure = true
            log_format = "json"
            memtable_bytes = "1MiB"
            block_cache_bytes = 2097152
            request_timeout_ms = 500
            [tls]
            ca_cert = "/file/ca.pem"
        "#;
        // File alone.
        let c = resolve(file(text), &no_env, &ConfigArgs::default()).expect("valid");
        assert_eq!(c.data_dir, PathBuf::from("/from-file"));
        assert_eq!(c.listen.port(), 8000);
        assert_eq!(c.admin.port(), 8080);
        assert_eq!((c.cores, c.shards_per_core), (2, 8));
        assert!(c.insecure);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!((c.memtable_bytes, c.block_cache_bytes), (1 << 20, 2 << 20));
        assert_eq!(c.request_timeout_ms, 500);
        assert_eq!(c.tls.ca_cert, Some("/file/ca.pem".into()));

        // Environment over file.
        let vars: HashMap<&str, &str> = [
            (ENV_DATA_DIR, "/from-env"),
            (ENV_LISTEN, "127.0.0.1:9000"),
            (ENV_CORES, "1"),
            (ENV_LOG_FORMAT, "pretty"),
            (ENV_MEMTABLE_BYTES, "2MiB"),
            (ENV_CA_CERT, "/env/ca.pem"),
            (ENV_INSECURE, "yes"),
        ]
        .into();
        let env = |name: &str| vars.get(name).map(|v| v.to_string());
        let c = resolve(file(text), &env, &ConfigArgs::default()).expect("valid");
        assert_eq!(c.data_dir, PathBuf::from("/from-env"));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.admin.port(), 8080, "file value kept where env is silent");
        assert_eq!(c.cores, 1);
        assert_eq!(c.shards_per_core, 8);
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.memtable_bytes, 2 << 20);
        assert_eq!(c.tls.ca_cert, Some("/env/ca.pem".into()));

        // Flags over environment.
        let args = ConfigArgs {
            data_dir: Some("/from-flag".into()),
            listen: Some("[::1]:9500".parse().expect("addr")),
            log_format: Some(LogFormat::Json),
            memtable_bytes: Some(3 << 20),
            ca_cert: Some("/flag/ca.pem".into()),
            request_timeout_ms: Some(42),
            ..ConfigArgs::default()
        };
        let c = resolve(file(text), &env, &args).expect("valid");
        assert_eq!(c.data_dir, PathBuf::from("/from-flag"));
        assert_eq!(c.listen, addr("[::1]:9500"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.memtable_bytes, 3 << 20);
        assert_eq!(c.tls.ca_cert, Some("/flag/ca.pem".into()));
        assert_eq!(c.request_timeout_ms, 42);
        assert_eq!(c.cores, 1, "env value kept where flags are silent");
    }

    #[test]
    fn env_can_turn_insecure_off_and_empty_vars_count_as_unset() {
        let text = "data_dir = \"/d\"\ninsecure = true\n";
        let env = |name: &str| match name {
            ENV_INSECURE => Some("false".to_string()),
            ENV_LISTEN | ENV_DATA_DIR => Some(String::new()),
            _ => None,
        };
        let e = err(resolve(file(text), &env, &ConfigArgs::default()));
        assert!(e.contains("mutual TLS needs tls.ca_cert"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_line() {
        let e = err(resolve(
            file("data_dir = \"/d\"\nlisten_addr = \"x\"\n"),
            &no_env,
            &ConfigArgs::default(),
        ));
        assert!(
            e.starts_with(
                "config file /etc/ferrisdb.toml: line 2, column 1: unknown field `listen_addr`"
            ),
            "{e}"
        );
        let e = err(resolve(
            file("[tls]\nca = \"x\"\n"),
            &no_env,
            &ConfigArgs::default(),
        ));
        assert!(
            e.contains("line 2") && e.contains("unknown field `ca`"),
            "{e}"
        );
        let e = err(resolve(
            file("[logging]\nlevel = 1\n"),
            &no_env,
            &ConfigArgs::default(),
        ));
        assert!(
            e.contains("line 1") && e.contains("unknown field `logging`"),
            "{e}"
        );
    }

    #[test]
    fn malformed_toml_and_bad_values_name_the_line() {
        let e = err(resolve(
            file("data_dir = \"/d\"\ncores = \n"),
            &no_env,
            &ConfigArgs::default(),
        ));
        assert!(
            e.starts_with("config file /etc/ferrisdb.toml: line 2,"),
            "{e}"
        );
        let e = err(resolve(
            file("\n\ncores = \"four\"\n"),
            &no_env,
            &ConfigArgs::default(),
        ));
        assert!(e.contains("line 3") && e.contains("invalid type"), "{e}");
        let e = err(resolve(
            file("listen = \"localhost\"\n"),
            &no_env,
            &ConfigArgs::default(),
        ));
        assert!(e.contains("line 1") && e.contains("socket address"), "{e}");
        let e = err(resolve(
            file("memtable_bytes = \"64MB\"\n"),
            &no_env,
            &ConfigArgs::default(),
        ));
        assert!(
            e.contains("line 1") && e.contains("invalid size \"64MB\""),
            "{e}"
        );
        let e = err(resolve(
            file("memtable_bytes = -5\n"),
            &no_env,
            &ConfigArgs::default(),
        ));
        assert!(e.contains("negative"), "{e}");
    }

    #[test]
    fn a_known_env_var_with_a_bad_value_is_named_and_others_are_ignored() {
        for (name, value, why) in [
            (ENV_CORES, "many", "invalid digit"),
            (ENV_LISTEN, "localhost:1", "socket address"),
            (ENV_INSECURE, "maybe", "expected true or false"),
            (ENV_LOG_FORMAT, "xml", "expected pretty or json"),
            (ENV_BLOCK_CACHE_BYTES, "1 PB", "invalid size"),
            (ENV_REQUEST_TIMEOUT_MS, "-1", "invalid digit"),
        ] {
            let env = |n: &str| (n == name).then(|| value.to_string());
            let e = err(resolve(None, &env, &insecure_args("/d")));
            assert!(
                e.starts_with(&format!("environment variable {name}=\"{value}\": ")),
                "{e}"
            );
            assert!(e.contains(why), "{e}");
        }
        let asked = std::cell::RefCell::new(Vec::new());
        let env = |n: &str| {
            asked.borrow_mut().push(n.to_string());
            None
        };
        resolve(None, &env, &insecure_args("/d")).expect("valid");
        assert!(
            asked
                .borrow()
                .iter()
                .all(|n| ENV_NAMES.contains(&n.as_str())),
            "{asked:?}"
        );
        assert_eq!(
            asked.borrow().len(),
            ENV_NAMES.len() - 1,
            "all but FERRISDB_CONFIG (load reads it)"
        );
    }

    #[test]
    fn missing_data_dir_is_a_clear_error() {
        let args = ConfigArgs {
            insecure: true,
            ..ConfigArgs::default()
        };
        let e = err(resolve(None, &no_env, &args));
        assert!(
            e.starts_with("no data directory: pass --data-dir DIR"),
            "{e}"
        );
    }

    #[test]
    fn insecure_binds_loopback_only() {
        for (listen, admin, ok) in [
            ("127.0.0.1:7400", "127.0.0.1:7480", true),
            ("[::1]:7400", "[::1]:7480", true),
            ("[::ffff:127.0.0.1]:7400", "127.0.0.1:7480", true),
            ("0.0.0.0:7400", "127.0.0.1:7480", false),
            ("10.1.2.3:7400", "127.0.0.1:7480", false),
            ("127.0.0.1:7400", "0.0.0.0:7480", false),
            ("[::]:7400", "127.0.0.1:7480", false),
        ] {
            let args = ConfigArgs {
                listen: Some(listen.parse().expect("addr")),
                admin: Some(admin.parse().expect("addr")),
                ..insecure_args("/d")
            };
            let r = resolve(None, &no_env, &args);
            if ok {
                r.expect("loopback is fine");
            } else {
                let e = err(r);
                assert!(e.starts_with("insecure mode binds loopback only"), "{e}");
            }
        }
    }

    #[test]
    fn secure_mode_needs_every_tls_file() {
        let args = ConfigArgs {
            data_dir: Some("/d".into()),
            listen: Some("0.0.0.0:7400".parse().expect("addr")),
            cert: Some("/c/node.pem".into()),
            ..ConfigArgs::default()
        };
        let e = err(resolve(None, &no_env, &args));
        assert!(
            e.starts_with("mutual TLS needs tls.ca_cert (--ca-cert), tls.key (--key)"),
            "{e}"
        );
        let args = ConfigArgs {
            ca_cert: Some("/c/ca.pem".into()),
            key: Some("/c/node.key".into()),
            ..args
        };
        let c = resolve(None, &no_env, &args).expect("complete");
        assert!(!c.insecure);
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        type Change = fn(&mut ConfigArgs);
        let cases: [(Change, &str); 8] = [
            (
                |a| a.cores = Some(0),
                "cores is 0; it must be between 1 and 64",
            ),
            (|a| a.cores = Some(65), "cores is 65"),
            (
                |a| {
                    a.cores = Some(4);
                    a.listen = Some("127.0.0.1:65533".parse().expect("addr"));
                },
                "listen port 65533 with 4 cores needs ports up to 65536",
            ),
            (|a| a.shards_per_core = Some(0), "shards_per_core is 0"),
            (
                |a| a.memtable_bytes = Some(1000),
                "memtable_bytes is 1000; it must be between 64 KiB and 4 GiB",
            ),
            (
                |a| a.block_cache_bytes = Some(2 << 40),
                "block_cache_bytes is",
            ),
            (
                |a| a.request_timeout_ms = Some(0),
                "request_timeout_ms is 0",
            ),
            (
                |a| a.request_timeout_ms = Some(600_001),
                "request_timeout_ms is 600001",
            ),
        ];
        for (change, want) in cases {
            let mut args = insecure_args("/d");
            change(&mut args);
            let e = err(resolve(None, &no_env, &args));
            assert!(e.starts_with(want), "{e}");
        }
        let mut args = insecure_args("/d");
        args.cores = Some(3);
        args.listen = Some("127.0.0.1:65533".parse().expect("addr"));
        resolve(None, &no_env, &args).expect("ports 65533..=65535 fit");
    }

    #[test]
    fn printed_config_reads_back_as_the_same_config() {
        let args = ConfigArgs {
            data_dir: Some("/d".into()),
            ca_cert: Some("/c/ca.pem".into()),
            cert: Some("/c/node.pem".into()),
            key: Some("/c/node.key".into()),
            cores: Some(2),
            ..ConfigArgs::default()
        };
        let c = resolve(None, &no_env, &args).expect("valid");
        let text = toml::to_string(&c).expect("serialize");
        let back = resolve(file(&text), &no_env, &ConfigArgs::default()).expect("reads back");
        assert_eq!(back, c, "{text}");
    }

    #[test]
    fn host_checks_cpus() {
        let c = resolve(
            None,
            &no_env,
            &ConfigArgs {
                cores: Some(3),
                ..insecure_args("/d")
            },
        )
        .expect("valid");
        let e = format!("{:#}", check_host(&c, 2).expect_err("too many cores"));
        assert_eq!(
            e,
            "cores is 3 but only 2 CPUs are available to this process"
        );
        check_host(&c, 3).expect("enough CPUs");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("1 gib"), Ok(1 << 30));
        assert_eq!(parse_bytes("2TiB"), Ok(2 << 40));
        assert!(parse_bytes("64MB").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("").is_err());
        assert!(
            parse_bytes("99999999999TiB")
                .expect_err("overflow")
                .contains("too large")
        );
        assert_eq!(show_bytes(64 << 10), "64 KiB");
        assert_eq!(show_bytes(1000), "1000 bytes");
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
        assert_eq!(line_column("a\n", 99), (2, 1));
    }
}

//! `ferrisdb shell` and `ferrisdb status`: talk to a node through the client.
//!
//! The shell reads commands (see [`command`]) from `--exec` or from standard
//! input, a prompt shown only when standard input is a terminal, runs each
//! through `ferrisdb-client` and prints one result line per command
//! (`getrange` prints one line per entry, then a count line). Errors go to
//! standard error; with `--exec` the first one ends the shell with exit
//! status 1, from standard input the shell goes on and exits with status 1
//! at the end if any command failed.

mod command;

use crate::escape::escape_all;
use anyhow::{Context, bail};
use command::{Command, HELP};
use ferrisdb_client::{Client, ClientConfig, ScanOptions, Security};
use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the node is and how to authenticate (shared by `shell` and `status`).
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Address of any core of the node.
    #[arg(long, value_name = "HOST:PORT")]
    endpoint: String,
    /// No certificates: for a node started with --insecure (loopback only).
    #[arg(long, conflicts_with_all = ["ca_cert", "cert", "key"])]
    insecure: bool,
    /// CA certificate (PEM) that signed the node's certificate.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// This client's certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// This client's private key (PEM, PKCS#8).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Name the node's certificate must carry (default: the endpoint's IP).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Deadline of each command, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
}

#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Run these commands (separated by `;`) and exit; exit status 1 at the
    /// first that fails. A script that does not parse runs nothing.
    #[arg(long, value_name = "COMMANDS")]
    exec: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print the node's status document as JSON.
    #[arg(long)]
    json: bool,
}

impl ShellArgs {
    /// An interactive shell on a node at `endpoint`, authenticated with the
    /// given CA, client certificate and key (`ferrisdb demo`).
    pub fn mutual_tls(endpoint: SocketAddr, ca_cert: PathBuf, cert: PathBuf, key: PathBuf) -> Self {
        ShellArgs {
            connect: ConnectArgs {
                endpoint: endpoint.to_string(),
                insecure: false,
                ca_cert: Some(ca_cert),
                cert: Some(cert),
                key: Some(key),
                server_name: None,
                timeout_ms: 10_000,
            },
            exec: None,
        }
    }
}

/// Exit status when a command failed.
const EXIT_COMMAND_FAILED: u8 = 1;

pub fn run_shell(args: ShellArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    let client = runtime.block_on(connect(&args.connect))?;
    let mut out = std::io::stdout().lock();
    if let Some(script) = &args.exec {
        let commands = command::parse(script).context("parse --exec")?;
        for command in commands {
            if let Err(err) = runtime.block_on(execute(&client, command, &mut out)) {
                eprintln!("error: {err:#}");
                return Ok(ExitCode::from(EXIT_COMMAND_FAILED));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let interactive = std::io::stdin().is_terminal();
    let mut failed = false;
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            write!(out, "ferrisdb> ")?;
            out.flush()?;
        }
        let Some(line) = lines.next() else {
            break;
        };
        let commands = match command::parse(&line.context("read standard input")?) {
            Ok(commands) => commands,
            Err(err) => {
                eprintln!("error: {err}");
                failed = true;
                continue;
            }
        };
        for command in commands {
            if command == Command::Quit {
                return Ok(exit_status(failed && !interactive));
            }
            if let Err(err) = runtime.block_on(execute(&client, command, &mut out)) {
                eprintln!("error: {err:#}");
                failed = true;
            }
        }
    }
    Ok(exit_status(failed && !interactive))
}

pub fn run_status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    let client = runtime.block_on(connect(&args.connect))?;
    let status = runtime
        .block_on(client.status())
        .context("ask the node's status")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{status}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let map = client.shard_map();
    writeln!(out, "endpoint: {}", args.connect.endpoint)?;
    writeln!(
        out,
        "shard map: version {}, {} shards on {} cores",
        map.version,
        map.shards.len(),
        map.core_ports.len()
    )?;
    for shard in &map.shards {
        let end = shard
            .end
            .as_deref()
            .map_or_else(|| "(end)".to_string(), |e| format!("\"{}\"", escape_all(e)));
        writeln!(
            out,
            "  shard {}: [\"{}\", {end}) on core {} (port {})",
            shard.id,
            escape_all(&shard.start),
            shard.core,
            map.core_ports[shard.core as usize]
        )?;
    }
    match serde_json::from_str::<serde_json::Value>(&status) {
        Ok(serde_json::Value::Object(fields)) => {
            for (name, value) in fields {
                writeln!(out, "{name}: {value}")?;
            }
        }
        _ => writeln!(out, "status: {status}")?,
    }
    Ok(ExitCode::SUCCESS)
}

fn exit_status(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(EXIT_COMMAND_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// A runtime for the client: one worker thread keeps connections alive
/// (QUIC keep-alives, acknowledgements) while the main thread waits for
/// input.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("start the client runtime")
}

async fn connect(args: &ConnectArgs) -> anyhow::Result<Client> {
    let endpoint = resolve(&args.endpoint)?;
    let security = match (&args.ca_cert, &args.cert, &args.key) {
        _ if args.insecure => Security::Insecure,
        (Some(ca_cert), Some(cert), Some(key)) => Security::MutualTls {
            ca_cert: ca_cert.clone(),
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => bail!("pass --ca-cert, --cert and --key (mutual TLS), or --insecure"),
    };
    let mut config = ClientConfig::new(vec![endpoint], security);
    config.server_name = args.server_name.clone();
    config.request_timeout = Duration::from_millis(args.timeout_ms);
    Client::connect(config).await.context("fetch the shard map")
}

fn resolve(endpoint: &str) -> anyhow::Result<SocketAddr> {
    endpoint
        .to_socket_addrs()
        .with_context(|| format!("resolve {endpoint} (expected HOST:PORT)"))?
        .next()
        .with_context(|| format!("{endpoint} resolves to no address"))
}

/// Runs one command and prints its result.
async fn execute(client: &Client, command: Command, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        Command::Get(key) => match client.get(&key).await? {
            Some(value) => writeln!(out, "\"{}\"", escape_all(&value))?,
            None => writeln!(out, "(not found)")?,
        },
        Command::Set(key, value) => {
            client.put(&key, &value).await?;
            writeln!(out, "OK")?;
        }
        Command::Clear(key) => {
            client.delete(&key).await?;
            writeln!(out, "OK")?;
        }
        Command::ClearRange(start, end) => {
            client.delete_range(&start, &end).await?;
            writeln!(out, "OK")?;
        }
        Command::GetRange {
            start,
            end,
            limit,
            reverse,
        } => {
            let mut options = ScanOptions::range(start, end);
            options.limit = limit;
            options.reverse = reverse;
            let mut scan = client.scan(options)?;
            let mut count = 0u64;
            while let Some(entry) = scan.next().await? {
                let (key, value) = (escape_all(&entry.key), escape_all(&entry.value));
                writeln!(out, "\"{key}\" \"{value}\"")?;
                count += 1;
            }
            let noun = if count == 1 { "entry" } else { "entries" };
            writeln!(out, "({count} {noun})")?;
        }
        Command::Status => writeln!(out, "{}", client.status().await?)?,
        Command::Help => writeln!(out, "{HELP}")?,
        Command::Quit => {}
    }
    Ok(())
}

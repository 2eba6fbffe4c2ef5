//! `ferrisdb`: the FerrisDB node binary and its command-line tools.
//!
//! `start` runs a node; `cert` makes certificates; `config print` shows the
//! effective configuration; `shell` and `status` talk to a running node;
//! `inspect` gives read-only, offline views of a data directory; `tune`
//! measures the disk, derives a configuration and simulates compaction.

#![forbid(unsafe_code)]

/// mimalloc instead of glibc malloc: the request path allocates small
/// buffers per request, and glibc's free/trim showed up in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod cert;
mod config;
mod demo;
mod escape;
mod inspect;
mod lock;
mod logging;
mod metrics;
mod server;
mod shell;
mod tune;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "ferrisdb",
    version,
    about = "FerrisDB, a distributed key-value store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until SIGTERM or SIGINT.
    Start(config::ConfigArgs),
    /// Make a CA and node or client certificates for mutual TLS.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// An interactive (or `--exec`) shell against a running node.
    Shell(shell::ShellArgs),
    /// Start a local node with temporary data and certificates, run a short
    /// workload through the client, then open a shell on it.
    Demo(demo::DemoArgs),
    /// Status of a running node.
    Status(shell::StatusArgs),
    /// Read-only views of data files: WAL, SSTables, manifest, whole directories.
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
    /// Measure the disk, derive a configuration, simulate compaction.
    #[command(subcommand)]
    Tune(tune::TuneCommand),
}

/// Exit status when a command found a problem or could not run.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    // Usage errors exit with status 2 (clap's convention).
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(cmd) => inspect::run(cmd),
        Command::Start(args) => config::load(&args)
            .and_then(server::start)
            .map(|()| ExitCode::SUCCESS),
        Command::Cert(cmd) => cert::run(cmd),
        Command::Config(cmd) => config::run(cmd),
        Command::Shell(args) => shell::run_shell(args),
        Command::Status(args) => shell::run_status(args),
        Command::Demo(args) => demo::run(args),
        Command::Tune(cmd) => tune::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if !inspect::is_broken_pipe(&err) {
                eprintln!("error: {}", inspect::render_error(&err));
            }
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

//! `ferrisdb`: the FerrisDB node binary and its command-line tools.
//!
//! Today it offers `inspect` (read-only, offline views of a data directory);
//! `start`, `cert` and `shell` will join it as further subcommands.

#![forbid(unsafe_code)]

mod escape;
mod inspect;

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
    /// Read-only views of data files: WAL, SSTables, manifest, whole directories.
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
}

/// Exit status when a command found a problem or could not run.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    // Usage errors exit with status 2 (clap's convention).
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(cmd) => inspect::run(cmd),
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

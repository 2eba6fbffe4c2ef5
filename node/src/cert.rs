//! `ferrisdb cert`: make a CA and node/client certificates (rcgen).

#[derive(Debug, clap::Subcommand)]
pub enum CertCommand {}

pub fn run(cmd: CertCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {}
}

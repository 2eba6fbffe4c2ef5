//! `ferrisdb shell` and `ferrisdb status`: talk to a node through the client.

#[derive(Debug, clap::Args)]
pub struct ShellArgs {}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

pub fn run_shell(_args: ShellArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("the shell is not built yet")
}

pub fn run_status(_args: StatusArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("status is not built yet")
}

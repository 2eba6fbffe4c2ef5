//! The running node: one pinned executor per core, each owning its shards,
//! its QUIC endpoint and its block cache.

use crate::config::NodeConfig;

/// Runs a node until SIGTERM/SIGINT.
pub fn start(_config: NodeConfig) -> anyhow::Result<()> {
    anyhow::bail!("the node server is not built yet")
}

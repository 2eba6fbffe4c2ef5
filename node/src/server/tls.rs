//! The node's QUIC server configuration: mutual TLS against the cluster CA,
//! or (with `--insecure`, loopback only) a throwaway certificate and no
//! client authentication.

use crate::config::NodeConfig;
use anyhow::Context;
use ferrisdb_io::quic::{
    IdleTimeout, MtuDiscoveryConfig, QuicServerConfig, ServerConfig, TransportConfig, VarInt,
};
use std::sync::Arc;
use std::time::Duration;

/// A connection with no traffic for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-stream and per-connection receive windows.
const STREAM_WINDOW_BYTES: u32 = 8 << 20;
const CONNECTION_WINDOW_BYTES: u32 = 32 << 20;

pub fn server_config(config: &NodeConfig) -> anyhow::Result<ServerConfig> {
    let tls = if config.insecure {
        let (cert, key) =
            crate::cert::self_signed_node().context("make a throwaway certificate")?;
        ferrisdb_proto::tls::insecure_server_config(cert, key)?
    } else {
        let missing = |what: &str| {
            anyhow::anyhow!("TLS {what} is not configured (give --{what} or --insecure)")
        };
        let ca = config
            .tls
            .ca_cert
            .as_deref()
            .ok_or_else(|| missing("ca-cert"))?;
        let cert = config.tls.cert.as_deref().ok_or_else(|| missing("cert"))?;
        let key = config.tls.key.as_deref().ok_or_else(|| missing("key"))?;
        ferrisdb_proto::tls::server_config(ca, cert, key)?
    };
    let crypto = QuicServerConfig::try_from(tls).context("TLS configuration unusable for QUIC")?;
    let mut server = ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = TransportConfig::default();
    let mut mtu = MtuDiscoveryConfig::default();
    mtu.upper_bound(ferrisdb_proto::MTU_UPPER_BOUND);
    transport
        .mtu_discovery_config(Some(mtu))
        .max_concurrent_bidi_streams(VarInt::from_u32(ferrisdb_proto::STREAMS_PER_CONNECTION_MAX))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW_BYTES))
        .receive_window(VarInt::from_u32(CONNECTION_WINDOW_BYTES))
        .send_window(u64::from(CONNECTION_WINDOW_BYTES))
        .max_idle_timeout(Some(
            IdleTimeout::try_from(IDLE_TIMEOUT).expect("60 s fits"),
        ));
    server.transport_config(Arc::new(transport));
    Ok(server)
}

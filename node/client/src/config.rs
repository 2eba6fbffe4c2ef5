//! How a [`crate::Client`] connects: endpoints, certificates, timeouts and
//! the limits it keeps to.

use crate::error::Error;
use ferrisdb_proto::{
    IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX, MTU_UPPER_BOUND, REQUEST_TIMEOUT_MS_MAX,
};
use ferrisdb_proto::{STREAMS_PER_CONNECTION_MAX, tls};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the client authenticates the node and itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// Mutual TLS (the default of a node): the node's certificate must chain
    /// to `ca_cert`, and the client presents `cert` with `key` (PEM files).
    MutualTls {
        /// CA certificate (PEM) that signed the node's certificate.
        ca_cert: PathBuf,
        /// The client's certificate chain (PEM).
        cert: PathBuf,
        /// The client's private key (PEM, PKCS#8).
        key: PathBuf,
    },
    /// No certificate checks at all, for nodes started with `--insecure`.
    /// Only loopback endpoints are accepted with it.
    Insecure,
}

/// Configuration of a [`crate::Client`]. Build it with
/// [`ClientConfig::new`] and adjust the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Addresses of node cores to ask for the shard map first (any core of
    /// a node answers). The client then connects to each core it needs at
    /// the host of the endpoint that answered and the port the map names.
    pub endpoints: Vec<SocketAddr>,
    /// Name the node's certificate must carry; by default the IP address of
    /// the endpoint (so the certificate needs that IP as a subject
    /// alternative name).
    pub server_name: Option<String>,
    /// Certificates, or none.
    pub security: Security,
    /// Longest wait for a QUIC handshake to one core.
    pub connect_timeout: Duration,
    /// Deadline of a call made without an explicit one (see
    /// [`crate::Client::with_timeout`]); also sent to the node in the
    /// request frame. At most [`REQUEST_TIMEOUT_MS_MAX`] ms.
    pub request_timeout: Duration,
    /// Bidirectional streams ("lanes") opened on each connection; requests
    /// are spread over them. 1..=[`STREAMS_PER_CONNECTION_MAX`].
    pub lanes_per_connection: usize,
    /// Requests in flight on one connection; further calls wait (within
    /// their deadline). 1..=[`IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX`].
    pub max_in_flight: usize,
    /// Wait before the second attempt to reconnect to a core whose
    /// connection failed; doubled at each further failure.
    pub reconnect_backoff_min: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_backoff_max: Duration,
    /// Send puts and deletes made at about the same time for one shard as
    /// one atomic batch request (each call keeps its own deadline and
    /// result; combined writes share a commit version). Saves the node and
    /// the client per-request work under concurrent writes; a lone write
    /// goes out as before, after one turn of the runtime. On by default.
    pub combine_writes: bool,
}

impl ClientConfig {
    /// A configuration with the given endpoints and security, and default
    /// timeouts (connect 5 s, request 10 s) and limits (4 lanes, 1024
    /// requests in flight per connection, reconnect backoff 50 ms to 5 s),
    /// and write combining on.
    pub fn new(endpoints: Vec<SocketAddr>, security: Security) -> Self {
        ClientConfig {
            endpoints,
            server_name: None,
            security,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            lanes_per_connection: 4,
            max_in_flight: 1024,
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(5),
            combine_writes: true,
        }
    }

    /// Checks every field; the error says which is wrong and why.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |message: String| Err(Error::Config(message));
        if self.endpoints.is_empty() {
            return fail("no endpoints: name at least one node address".into());
        }
        let not_loopback = self.endpoints.iter().find(|a| !a.ip().is_loopback());
        if self.security == Security::Insecure
            && let Some(addr) = not_loopback
        {
            return fail(format!(
                "insecure connections are for loopback only; {addr} is not a loopback address"
            ));
        }
        let timeout_ms = self.request_timeout.as_millis();
        if timeout_ms == 0 || timeout_ms > u128::from(REQUEST_TIMEOUT_MS_MAX) {
            return fail(format!(
                "request_timeout of {timeout_ms} ms is outside 1..={REQUEST_TIMEOUT_MS_MAX} ms"
            ));
        }
        if self.connect_timeout.is_zero() {
            return fail("connect_timeout must be above zero".into());
        }
        let lanes_max = STREAMS_PER_CONNECTION_MAX as usize;
        if !(1..=lanes_max).contains(&self.lanes_per_connection) {
            return fail(format!(
                "lanes_per_connection {} is outside 1..={lanes_max}",
                self.lanes_per_connection
            ));
        }
        if !(1..=IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX).contains(&self.max_in_flight) {
            return fail(format!(
                "max_in_flight {} is outside 1..={IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX}",
                self.max_in_flight
            ));
        }
        if self.reconnect_backoff_min.is_zero()
            || self.reconnect_backoff_min > self.reconnect_backoff_max
        {
            return fail("reconnect backoff must satisfy 0 < min <= max".into());
        }
        Ok(())
    }

    /// The QUIC client configuration: rustls per [`Self::security`] and
    /// keep-alives so that an idle connection notices a dead node.
    pub(crate) fn quic(&self) -> Result<quinn::ClientConfig, Error> {
        let tls = match &self.security {
            Security::MutualTls { ca_cert, cert, key } => tls::client_config(ca_cert, cert, key)?,
            Security::Insecure => tls::insecure_client_config()?,
        };
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| Error::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
        let mut transport = quinn::TransportConfig::default();
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(MTU_UPPER_BOUND);
        transport.mtu_discovery_config(Some(mtu));
        transport.keep_alive_interval(Some(KEEP_ALIVE_INTERVAL));
        transport.max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(IDLE_TIMEOUT).expect("30 s fits a QUIC varint"),
        ));
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(transport));
        Ok(config)
    }
}

/// Keep-alive period on every connection.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// A connection silent for this long is considered lost.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        ClientConfig::new(vec!["127.0.0.1:7000".parse().unwrap()], Security::Insecure)
    }

    fn refused(change: impl FnOnce(&mut ClientConfig), needle: &str) {
        let mut config = config();
        change(&mut config);
        match config.validate() {
            Err(Error::Config(message)) => assert!(message.contains(needle), "{message}"),
            other => panic!("expected a config error about {needle}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().expect("defaults");
    }

    #[test]
    fn each_limit_is_checked() {
        refused(|c| c.endpoints.clear(), "no endpoints");
        refused(|c| c.request_timeout = Duration::ZERO, "request_timeout");
        refused(
            |c| c.request_timeout = Duration::from_millis(u64::from(REQUEST_TIMEOUT_MS_MAX) + 1),
            "request_timeout",
        );
        refused(|c| c.connect_timeout = Duration::ZERO, "connect_timeout");
        refused(|c| c.lanes_per_connection = 0, "lanes_per_connection");
        refused(
            |c| c.lanes_per_connection = STREAMS_PER_CONNECTION_MAX as usize + 1,
            "lanes_per_connection",
        );
        refused(|c| c.max_in_flight = 0, "max_in_flight");
        refused(
            |c| c.max_in_flight = IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX + 1,
            "max_in_flight",
        );
        refused(
            |c| c.reconnect_backoff_min = Duration::from_secs(60),
            "backoff",
        );
        refused(
            |c| c.endpoints.push("192.0.2.1:7000".parse().unwrap()),
            "loopback",
        );
    }
}

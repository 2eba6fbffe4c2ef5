//! `ferrisdb-client`: the async Rust client for FerrisDB over QUIC.
//!
//! The client asks a node for its shard map, opens one QUIC connection per
//! core it needs (mutual TLS by default) with a few long-lived streams
//! ("lanes") on each, and sends every request straight to the core that
//! owns the key's shard. Many requests are in flight at once on one
//! connection; each carries a deadline. A lost connection fails the
//! requests in flight with a retryable error and is re-established, with
//! exponential backoff, by the next call. The wire protocol is described in
//! `docs/protocol.md`.
//!
//! ```no_run
//! use ferrisdb_client::{Client, ClientConfig, ScanOptions, Security};
//!
//! # async fn run() -> Result<(), ferrisdb_client::Error> {
//! let config = ClientConfig::new(
//!     vec!["127.0.0.1:7000".parse().unwrap()],
//!     Security::MutualTls {
//!         ca_cert: "certs/ca.pem".into(),
//!         cert: "certs/client.pem".into(),
//!         key: "certs/client.key".into(),
//!     },
//! );
//! let client = Client::connect(config).await?;
//! client.put("greeting", "hello").await?;
//! assert_eq!(client.get("greeting").await?, Some(b"hello".to_vec()));
//! for entry in client.scan_collect(ScanOptions::range("a", "z").limit(10)).await? {
//!     println!("{:?} = {:?}", entry.key, entry.value);
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod batch;
mod client;
mod combine;
mod config;
mod connection;
mod error;
mod lane;
mod scan;

pub use batch::Batch;
pub use client::Client;
pub use config::{ClientConfig, Security};
pub use error::Error;
pub use ferrisdb_proto::{ErrorCode, KeyBound, KeyValue, ShardInfo, ShardMap};
pub use scan::{Scan, ScanOptions};

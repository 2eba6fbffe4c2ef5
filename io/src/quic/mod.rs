//! QUIC on the thread-per-core runtime.
//!
//! quinn's high-level runtime wants `Send + Sync` sockets and a multi-threaded
//! executor; glommio's sockets are neither. So each core drives
//! [`quinn_proto`] (the sans-IO QUIC state machine) from its own glommio
//! loop over its own UDP socket, with QUIC's timers on glommio's timer. One
//! [`Endpoint`] per core, each on its own port: a client that knows which core
//! owns a key sends the request straight to that core (shard-aware routing),
//! and no connection state is ever shared between threads.
//!
//! # Shape
//! - A *receiver* task reads datagrams and feeds them to the endpoint and
//!   their connections.
//! - A *driver* task, woken by the receiver, by application calls and by the
//!   earliest QUIC timer, collects what each touched connection wants to send
//!   and writes it to the socket, and wakes application tasks whose stream
//!   became readable or writable. Because it runs after the tasks it was woken
//!   by, responses written by many request tasks in one turn of the executor
//!   leave in as few packets as QUIC can pack them into.
//! - Application tasks use [`Connection`], [`SendStream`], [`RecvStream`]:
//!   async, single-threaded (`!Send`), and never holding a borrow across an
//!   await.

mod connection;
mod endpoint;

pub use connection::{Connection, RecvStream, SendStream};
pub use endpoint::{Endpoint, EndpointLimits};
pub use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
pub use quinn_proto::{
    ClientConfig, ConnectionError, IdleTimeout, MtuDiscoveryConfig, ServerConfig, TransportConfig,
    VarInt,
};

/// Why a QUIC operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    #[error("connection lost: {0}")]
    ConnectionLost(ConnectionError),
    /// The connection is gone (drained, or closed by this side).
    #[error("connection closed")]
    Closed,
    #[error("stream reset by the peer (code {0})")]
    Reset(u64),
    #[error("stream stopped by the peer (code {0})")]
    Stopped(u64),
    #[error("cannot connect: {0}")]
    Connect(quinn_proto::ConnectError),
    #[error("the endpoint is closed")]
    EndpointClosed,
}

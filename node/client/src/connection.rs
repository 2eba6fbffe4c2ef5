//! A connection to one core of a node: a QUIC connection with its lanes and
//! its limit of requests in flight.

use crate::error::{Error, connection_error_retryable};
use crate::lane::{Deliveries, Lane, Registration};
use bytes::Bytes;
use ferrisdb_proto::{Frame, RequestFrame, ResponseFrame};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) struct CoreConnection {
    addr: SocketAddr,
    connection: quinn::Connection,
    lanes: Vec<Lane>,
    next_lane: AtomicUsize,
    in_flight: Arc<Semaphore>,
    /// Set by a lane that failed: the connection must be replaced.
    dead: Arc<AtomicBool>,
}

/// What [`CoreConnection::open`] needs.
pub(crate) struct ConnectParams<'a> {
    pub endpoint: &'a quinn::Endpoint,
    pub quic: &'a quinn::ClientConfig,
    pub server_name: &'a str,
    pub connect_timeout: Duration,
    pub lanes: usize,
    pub max_in_flight: usize,
}

impl CoreConnection {
    /// Connects (within the connect timeout) and opens the lanes.
    pub(crate) async fn open(
        addr: SocketAddr,
        params: &ConnectParams<'_>,
    ) -> Result<CoreConnection, Error> {
        let connect_error = |reason: String, retryable| Error::Connect {
            addr,
            reason,
            retryable,
        };
        let connecting = params
            .endpoint
            .connect_with(params.quic.clone(), addr, params.server_name)
            .map_err(|e| connect_error(e.to_string(), false))?;
        let connection = match tokio::time::timeout(params.connect_timeout, connecting).await {
            Err(_) => {
                let ms = params.connect_timeout.as_millis();
                return Err(connect_error(format!("no handshake within {ms} ms"), true));
            }
            Ok(Err(err)) => {
                return Err(connect_error(
                    err.to_string(),
                    connection_error_retryable(&err),
                ));
            }
            Ok(Ok(connection)) => connection,
        };
        let dead = Arc::new(AtomicBool::new(false));
        let mut lanes = Vec::with_capacity(params.lanes);
        for _ in 0..params.lanes {
            let (send, recv) = connection.open_bi().await.map_err(|e| {
                connect_error(
                    format!("open a stream: {e}"),
                    connection_error_retryable(&e),
                )
            })?;
            lanes.push(Lane::start(addr, send, recv, dead.clone()));
        }
        tracing::debug!(%addr, lanes = lanes.len(), "connected");
        Ok(CoreConnection {
            addr,
            connection,
            lanes,
            next_lane: AtomicUsize::new(0),
            in_flight: Arc::new(Semaphore::new(params.max_in_flight)),
            dead,
        })
    }

    /// Whether the connection can still carry requests.
    pub(crate) fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::Acquire) && self.connection.close_reason().is_none()
    }

    /// Sends `frame` on the next lane (after waiting for an in-flight slot)
    /// and returns the stream of its responses.
    pub(crate) async fn send(&self, frame: &RequestFrame) -> Result<Responses, Error> {
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the in-flight semaphore is never closed");
        let bytes = frame.encode_frame().map_err(|e| Error::InvalidArgument {
            code: e.code(),
            message: e.to_string(),
        })?;
        let lane = self.next_lane.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        // Only a scan is answered by more than one frame.
        let streaming = matches!(frame.request, ferrisdb_proto::Request::Scan { .. });
        let (registration, deliveries) = self.lanes[lane]
            .send(frame.id, Bytes::from(bytes), streaming)
            .await?;
        Ok(Responses {
            addr: self.addr,
            deliveries,
            _registration: registration,
            _permit: permit,
        })
    }
}

impl Drop for CoreConnection {
    fn drop(&mut self) {
        self.connection.close(0u32.into(), b"client done");
    }
}

/// The responses to one request (one frame, or a scan's chunks). Dropping it
/// forgets the request and frees its in-flight slot.
pub(crate) struct Responses {
    addr: SocketAddr,
    deliveries: Deliveries,
    _registration: Registration,
    _permit: OwnedSemaphorePermit,
}

impl Responses {
    /// The next response frame. No deadline here: the caller wraps it.
    pub(crate) async fn next(&mut self) -> Result<ResponseFrame, Error> {
        match self.deliveries.recv().await {
            Some(Ok(frame)) => Ok(frame),
            Some(Err(failure)) => Err(failure.to_error(self.addr)),
            None => Err(Error::ConnectionLost {
                addr: self.addr,
                reason: "the lane stopped".into(),
            }),
        }
    }

    /// The address of the core answering.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

//! Connections and streams as the application sees them.

use super::QuicError;
use super::endpoint::Shared;
use bytes::Bytes;
use futures_lite::future;
use quinn_proto::{
    ConnectionError, ConnectionHandle, Dir, Event, ReadError, StreamEvent, StreamId, WriteError,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The driver's record of one connection: quinn-proto's state machine and
/// the tasks waiting on it.
pub(crate) struct Conn {
    pub(crate) inner: quinn_proto::Connection,
    /// Distinguishes this connection from a later one that reuses its handle.
    generation: u64,
    connected: bool,
    lost: Option<ConnectionError>,
    handshake_wakers: Vec<Waker>,
    accept_wakers: Vec<Waker>,
    open_wakers: Vec<Waker>,
    readers: HashMap<StreamId, Waker>,
    writers: HashMap<StreamId, Waker>,
}

impl Conn {
    pub(crate) fn new(inner: quinn_proto::Connection, generation: u64) -> Conn {
        Conn {
            inner,
            generation,
            connected: false,
            lost: None,
            handshake_wakers: Vec::new(),
            accept_wakers: Vec::new(),
            open_wakers: Vec::new(),
            readers: HashMap::new(),
            writers: HashMap::new(),
        }
    }

    pub(crate) fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.handshake_wakers.drain(..).for_each(Waker::wake);
            }
            Event::ConnectionLost { reason } => {
                self.lost = Some(reason);
                self.wake_all();
            }
            Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                self.accept_wakers.drain(..).for_each(Waker::wake);
            }
            Event::Stream(StreamEvent::Available { dir: Dir::Bi }) => {
                self.open_wakers.drain(..).for_each(Waker::wake);
            }
            Event::Stream(StreamEvent::Readable { id }) => {
                if let Some(waker) = self.readers.remove(&id) {
                    waker.wake();
                }
            }
            Event::Stream(
                StreamEvent::Writable { id }
                | StreamEvent::Finished { id }
                | StreamEvent::Stopped { id, .. },
            ) => {
                if let Some(waker) = self.writers.remove(&id) {
                    waker.wake();
                }
            }
            // Unidirectional streams and datagrams are not used.
            Event::Stream(_)
            | Event::HandshakeDataReady
            | Event::DatagramReceived
            | Event::DatagramsUnblocked => {}
        }
    }

    pub(crate) fn wake_all(&mut self) {
        self.handshake_wakers.drain(..).for_each(Waker::wake);
        self.accept_wakers.drain(..).for_each(Waker::wake);
        self.open_wakers.drain(..).for_each(Waker::wake);
        self.readers.drain().for_each(|(_, w)| w.wake());
        self.writers.drain().for_each(|(_, w)| w.wake());
    }

    fn lost_error(&self) -> Option<QuicError> {
        self.lost.clone().map(QuicError::ConnectionLost)
    }
}

/// A QUIC connection on this core. Cheap to clone; all clones name the same
/// connection.
#[derive(Clone)]
pub struct Connection {
    shared: Rc<Shared>,
    ch: ConnectionHandle,
    generation: u64,
}

impl Connection {
    pub(crate) fn new(shared: Rc<Shared>, ch: ConnectionHandle, generation: u64) -> Connection {
        Connection {
            shared,
            ch,
            generation,
        }
    }

    /// Runs `f` on the connection's state and schedules the driver, since
    /// almost anything done to a connection gives it something to send.
    fn with<R>(&self, f: impl FnOnce(&mut Conn) -> R) -> Result<R, QuicError> {
        let result = {
            let mut st = self.shared.state.borrow_mut();
            match st.conns.get_mut(&self.ch) {
                Some(conn) if conn.generation == self.generation => {
                    let result = f(conn);
                    st.dirty.push(self.ch);
                    Ok(result)
                }
                _ => Err(QuicError::Closed),
            }
        };
        self.shared.kick();
        result
    }

    fn poll_with<R>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Conn, &Waker) -> Poll<Result<R, QuicError>>,
    ) -> Poll<Result<R, QuicError>> {
        match self.with(|conn| f(conn, cx.waker())) {
            Ok(poll) => poll,
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    pub(crate) async fn handshake(&self) -> Result<(), QuicError> {
        future::poll_fn(|cx| {
            self.poll_with(cx, |conn, waker| {
                if let Some(err) = conn.lost_error() {
                    return Poll::Ready(Err(err));
                }
                if conn.connected {
                    return Poll::Ready(Ok(()));
                }
                conn.handshake_wakers.push(waker.clone());
                Poll::Pending
            })
        })
        .await
    }

    /// Waits for the peer to open a bidirectional stream.
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), QuicError> {
        let id = future::poll_fn(|cx| {
            self.poll_with(cx, |conn, waker| {
                if let Some(id) = conn.inner.streams().accept(Dir::Bi) {
                    return Poll::Ready(Ok(id));
                }
                if let Some(err) = conn.lost_error() {
                    return Poll::Ready(Err(err));
                }
                conn.accept_wakers.push(waker.clone());
                Poll::Pending
            })
        })
        .await?;
        Ok(self.stream_pair(id))
    }

    /// Opens a bidirectional stream, waiting while the peer's stream limit
    /// is reached.
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), QuicError> {
        let id = future::poll_fn(|cx| {
            self.poll_with(cx, |conn, waker| {
                if let Some(err) = conn.lost_error() {
                    return Poll::Ready(Err(err));
                }
                if let Some(id) = conn.inner.streams().open(Dir::Bi) {
                    return Poll::Ready(Ok(id));
                }
                conn.open_wakers.push(waker.clone());
                Poll::Pending
            })
        })
        .await?;
        Ok(self.stream_pair(id))
    }

    fn stream_pair(&self, id: StreamId) -> (SendStream, RecvStream) {
        let send = SendStream {
            conn: self.clone(),
            id,
            finished: false,
        };
        let recv = RecvStream {
            conn: self.clone(),
            id,
            ended: false,
        };
        (send, recv)
    }

    pub fn remote_address(&self) -> Option<SocketAddr> {
        self.with(|conn| conn.inner.remote_address()).ok()
    }

    /// The certificate chain the peer presented (DER), once the handshake
    /// got that far.
    pub fn peer_certificates(&self) -> Option<Vec<rustls_pki_types::CertificateDer<'static>>> {
        self.with(|conn| {
            conn.inner
                .crypto_session()
                .peer_identity()
                .and_then(|any| {
                    any.downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
                        .ok()
                })
                .map(|certs| *certs)
        })
        .ok()
        .flatten()
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<QuicError> {
        match self.with(|conn| conn.lost_error()) {
            Ok(reason) => reason,
            Err(err) => Some(err),
        }
    }

    /// Closes the connection; pending stream operations fail.
    pub fn close(&self, code: u32, reason: &[u8]) {
        let _ = self.with(|conn| {
            conn.inner
                .close(Instant::now(), code.into(), Bytes::copy_from_slice(reason));
        });
    }
}

/// The sending half of a bidirectional stream. Dropping it finishes the
/// stream (the peer sees a clean end).
pub struct SendStream {
    conn: Connection,
    id: StreamId,
    finished: bool,
}

impl SendStream {
    /// Writes all of `data`, waiting for flow-control credit as needed.
    pub async fn write_all(&mut self, mut data: &[u8]) -> Result<(), QuicError> {
        while !data.is_empty() {
            let id = self.id;
            let written = future::poll_fn(|cx| {
                self.conn.poll_with(cx, |conn, waker| {
                    if let Some(err) = conn.lost_error() {
                        return Poll::Ready(Err(err));
                    }
                    match conn.inner.send_stream(id).write(data) {
                        Ok(n) => Poll::Ready(Ok(n)),
                        Err(WriteError::Blocked) => {
                            conn.writers.insert(id, waker.clone());
                            Poll::Pending
                        }
                        Err(WriteError::Stopped(code)) => {
                            Poll::Ready(Err(QuicError::Stopped(code.into_inner())))
                        }
                        Err(WriteError::ClosedStream) => Poll::Ready(Err(QuicError::Closed)),
                    }
                })
            })
            .await?;
            data = &data[written..];
        }
        Ok(())
    }

    /// Ends the stream cleanly after the data written so far.
    pub fn finish(&mut self) -> Result<(), QuicError> {
        self.finished = true;
        let id = self.id;
        self.conn.with(|conn| {
            conn.inner
                .send_stream(id)
                .finish()
                .map_err(|_| QuicError::Closed)
        })?
    }

    /// Abandons the stream: unsent data is discarded, the peer sees `code`.
    pub fn reset(&mut self, code: u32) {
        self.finished = true;
        let id = self.id;
        let _ = self
            .conn
            .with(|conn| conn.inner.send_stream(id).reset(code.into()));
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.finish();
        }
    }
}

/// The receiving half of a bidirectional stream. Dropping it before the end
/// tells the peer to stop sending.
pub struct RecvStream {
    conn: Connection,
    id: StreamId,
    ended: bool,
}

impl RecvStream {
    /// The next chunk of at most `max` bytes; `None` at the end of the stream.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, QuicError> {
        let id = self.id;
        let chunk = future::poll_fn(|cx| {
            self.conn.poll_with(cx, |conn, waker| {
                let mut stream = conn.inner.recv_stream(id);
                let mut chunks = match stream.read(true) {
                    Ok(chunks) => chunks,
                    Err(_) => return Poll::Ready(Err(QuicError::Closed)),
                };
                let next = chunks.next(max);
                // Whether credit must be sent is handled by running the
                // driver after every call (`with` marks the connection dirty).
                let _ = chunks.finalize();
                match next {
                    Ok(Some(chunk)) => Poll::Ready(Ok(Some(chunk.bytes))),
                    Ok(None) => Poll::Ready(Ok(None)),
                    Err(ReadError::Blocked) => {
                        if let Some(err) = conn.lost_error() {
                            return Poll::Ready(Err(err));
                        }
                        conn.readers.insert(id, waker.clone());
                        Poll::Pending
                    }
                    Err(ReadError::Reset(code)) => {
                        Poll::Ready(Err(QuicError::Reset(code.into_inner())))
                    }
                }
            })
        })
        .await;
        if matches!(chunk, Ok(None) | Err(_)) {
            self.ended = true;
        }
        chunk
    }

    /// Tells the peer to stop sending on this stream.
    pub fn stop(&mut self, code: u32) {
        self.ended = true;
        let id = self.id;
        let _ = self
            .conn
            .with(|conn| conn.inner.recv_stream(id).stop(code.into()));
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        if !self.ended {
            self.stop(0);
        }
    }
}

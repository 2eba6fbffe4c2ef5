//! A lane: one long-lived bidirectional QUIC stream carrying many requests.
//!
//! A writer task owns the send half and writes whole frames from a channel,
//! so a frame is never interleaved with another and a caller that gives up
//! (deadline, dropped future) cannot leave half a frame on the stream. A
//! reader task owns the receive half, decodes response frames and hands each
//! to the waiter registered under its request id.

use bytes::Bytes;
use ferrisdb_proto::{ErrorReply, FrameDecoder, Response, ResponseFrame, STREAM_ERROR_ID};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, connection_error_retryable};

/// Encoded frames queued for the writer task of one lane.
const WRITE_QUEUE_FRAMES_MAX: usize = 64;
/// Most queued frames handed to the stream in one write.
const WRITE_BATCH_FRAMES_MAX: usize = 32;
/// Largest piece read from the stream at once.
const READ_CHUNK_BYTES_MAX: usize = 64 * 1024;

/// What a waiter receives: a response frame, or why the lane died.
pub(crate) type Delivery = Result<ResponseFrame, LaneFailure>;

/// Why a lane stopped.
#[derive(Debug, Clone)]
pub(crate) struct LaneFailure {
    reason: Arc<str>,
    /// False when the node refused the TLS handshake (it closes the
    /// connection with a TLS alert after the client's half completed).
    retryable: bool,
}

impl LaneFailure {
    fn new(reason: String, retryable: bool) -> Self {
        LaneFailure {
            reason: reason.into(),
            retryable,
        }
    }

    /// Why the lane stopped, for an error carried by a connection error.
    fn from_connection(what: &str, err: &quinn::ConnectionError) -> Self {
        Self::new(format!("{what}: {err}"), connection_error_retryable(err))
    }

    /// The error a call on the lane fails with.
    pub(crate) fn to_error(&self, addr: SocketAddr) -> Error {
        if self.retryable {
            Error::ConnectionLost {
                addr,
                reason: self.reason.to_string(),
            }
        } else {
            Error::Connect {
                addr,
                reason: self.reason.to_string(),
                retryable: false,
            }
        }
    }
}

/// Where the responses of one request go: a one-shot slot for requests
/// answered by one frame (most of them; no per-request channel buffer to
/// allocate), a channel for scans, which are answered by several.
pub(crate) enum Waiter {
    Once(oneshot::Sender<Delivery>),
    Stream(mpsc::UnboundedSender<Delivery>),
}

/// The receiving side of a [`Waiter`].
pub(crate) enum Deliveries {
    Once(Option<oneshot::Receiver<Delivery>>),
    Stream(mpsc::UnboundedReceiver<Delivery>),
}

impl Waiter {
    fn deliver(self, delivery: Delivery) {
        match self {
            Waiter::Once(tx) => drop(tx.send(delivery)),
            Waiter::Stream(tx) => drop(tx.send(delivery)),
        }
    }
}

impl Deliveries {
    /// The next response; `None` once no more can come.
    pub(crate) async fn recv(&mut self) -> Option<Delivery> {
        match self {
            Deliveries::Once(slot) => match slot.take() {
                Some(rx) => rx.await.ok(),
                None => None,
            },
            Deliveries::Stream(rx) => rx.recv().await,
        }
    }
}

/// Waiters of one lane, by request id.
#[derive(Default)]
struct Waiters {
    by_id: HashMap<u64, Waiter>,
    /// Set once the lane failed; no waiter is registered after that.
    failed: Option<LaneFailure>,
}

pub(crate) struct Lane {
    addr: SocketAddr,
    frames: mpsc::Sender<Bytes>,
    waiters: Arc<Mutex<Waiters>>,
}

impl Lane {
    /// Starts the writer and reader tasks of a freshly opened stream.
    /// `dead` is set when the lane fails, so that the connection is replaced.
    pub(crate) fn start(
        addr: SocketAddr,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        dead: Arc<AtomicBool>,
    ) -> Lane {
        let (frames, queue) = mpsc::channel(WRITE_QUEUE_FRAMES_MAX);
        let waiters = Arc::new(Mutex::new(Waiters::default()));
        tokio::spawn(write_frames(send, queue, waiters.clone(), dead.clone()));
        tokio::spawn(read_frames(recv, waiters.clone(), dead));
        Lane {
            addr,
            frames,
            waiters,
        }
    }

    /// Registers a waiter for `id` and queues `frame` (already encoded) for
    /// writing. Responses then arrive on the returned receiver until the
    /// [`Registration`] is dropped.
    pub(crate) async fn send(
        &self,
        id: u64,
        frame: Bytes,
        streaming: bool,
    ) -> Result<(Registration, Deliveries), Error> {
        let (tx, rx) = if streaming {
            let (tx, rx) = mpsc::unbounded_channel();
            (Waiter::Stream(tx), Deliveries::Stream(rx))
        } else {
            let (tx, rx) = oneshot::channel();
            (Waiter::Once(tx), Deliveries::Once(Some(rx)))
        };
        {
            let mut waiters = self.waiters.lock().expect("waiter lock poisoned");
            if let Some(failure) = &waiters.failed {
                return Err(failure.to_error(self.addr));
            }
            let previous = waiters.by_id.insert(id, tx);
            assert!(previous.is_none(), "request id {id} reused while in flight");
        }
        let registration = Registration {
            id,
            waiters: self.waiters.clone(),
        };
        if self.frames.send(frame).await.is_err() {
            let failure = self
                .waiters
                .lock()
                .expect("waiter lock poisoned")
                .failed
                .clone();
            let failure = failure.unwrap_or_else(|| LaneFailure::new("lane closed".into(), true));
            return Err(failure.to_error(self.addr));
        }
        Ok((registration, rx))
    }
}

/// Keeps a waiter registered; dropping it forgets the request, so responses
/// that arrive later (after a deadline) are discarded.
pub(crate) struct Registration {
    id: u64,
    waiters: Arc<Mutex<Waiters>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.by_id.remove(&self.id);
        }
    }
}

/// Marks the lane failed and tells every waiter why.
fn fail(waiters: &Mutex<Waiters>, dead: &AtomicBool, failure: LaneFailure) {
    dead.store(true, Ordering::Release);
    let mut waiters = waiters.lock().expect("waiter lock poisoned");
    let failure = waiters.failed.get_or_insert(failure).clone();
    for (_, waiter) in waiters.by_id.drain() {
        waiter.deliver(Err(failure.clone()));
    }
}

async fn write_frames(
    mut send: quinn::SendStream,
    mut queue: mpsc::Receiver<Bytes>,
    waiters: Arc<Mutex<Waiters>>,
    dead: Arc<AtomicBool>,
) {
    // Frames queued meanwhile go out in one write (no copy: QUIC takes the
    // buffers as they are).
    let mut frames = Vec::with_capacity(WRITE_BATCH_FRAMES_MAX);
    while queue.recv_many(&mut frames, WRITE_BATCH_FRAMES_MAX).await > 0 {
        let written = send.write_all_chunks(&mut frames).await;
        frames.clear();
        if let Err(err) = written {
            let failure = match &err {
                quinn::WriteError::ConnectionLost(lost) => {
                    LaneFailure::from_connection("write a request", lost)
                }
                other => LaneFailure::new(format!("write a request: {other}"), true),
            };
            fail(&waiters, &dead, failure);
            return;
        }
    }
    // Every sender is gone: the connection is being dropped.
    let _ = send.finish();
}

async fn read_frames(
    mut recv: quinn::RecvStream,
    waiters: Arc<Mutex<Waiters>>,
    dead: Arc<AtomicBool>,
) {
    let mut decoder = FrameDecoder::<ResponseFrame>::new();
    let failure = loop {
        let chunk = match recv.read_chunk(READ_CHUNK_BYTES_MAX, true).await {
            Ok(Some(chunk)) => chunk.bytes,
            Ok(None) => {
                let reason = match decoder.finish() {
                    Ok(()) => "the node closed the stream".to_string(),
                    Err(err) => format!("the node closed the stream: {err}"),
                };
                break LaneFailure::new(reason, true);
            }
            Err(quinn::ReadError::ConnectionLost(lost)) => {
                break LaneFailure::from_connection("read responses", &lost);
            }
            Err(err) => break LaneFailure::new(format!("read responses: {err}"), true),
        };
        if let Err(failure) = dispatch_chunk(&mut decoder, &chunk, &waiters) {
            break failure;
        }
    };
    fail(&waiters, &dead, failure);
}

/// Decodes every frame completed by `chunk` and delivers it.
fn dispatch_chunk(
    decoder: &mut FrameDecoder<ResponseFrame>,
    mut chunk: &[u8],
    waiters: &Mutex<Waiters>,
) -> Result<(), LaneFailure> {
    // The node broke the protocol; a new connection may fare better.
    let bad_frame = |e| LaneFailure::new(format!("bad response frame: {e}"), true);
    while !chunk.is_empty() {
        let taken = decoder.push(chunk).map_err(bad_frame)?;
        chunk = &chunk[taken..];
        if let Some(frame) = decoder.pop() {
            // A frame whose payload does not decode cannot be matched to its
            // request; the lane is no longer trustworthy.
            let frame = frame.map_err(bad_frame)?;
            if frame.id == STREAM_ERROR_ID {
                return Err(stream_error(frame.response));
            }
            deliver(waiters, frame);
        }
    }
    Ok(())
}

fn stream_error(response: Response) -> LaneFailure {
    match response {
        Response::Error(ErrorReply { code, message }) => LaneFailure::new(
            format!("the node refused the stream: {code}: {message}"),
            code.is_retryable(),
        ),
        other => LaneFailure::new(format!("unexpected response with id 0: {other:?}"), true),
    }
}

fn deliver(waiters: &Mutex<Waiters>, frame: ResponseFrame) {
    let mut waiters = waiters.lock().expect("waiter lock poisoned");
    // A scan's chunks before the last keep the waiter registered.
    let more = matches!(frame.response, Response::ScanChunk { done: false, .. });
    if more && let Some(Waiter::Stream(tx)) = waiters.by_id.get(&frame.id) {
        let _ = tx.send(Ok(frame));
        return;
    }
    match waiters.by_id.remove(&frame.id) {
        Some(waiter) => waiter.deliver(Ok(frame)),
        // The caller gave up (deadline) and forgot the request.
        None => tracing::debug!(id = frame.id, "response to a forgotten request dropped"),
    }
}

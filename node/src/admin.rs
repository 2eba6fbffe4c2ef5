//! The admin HTTP listener: `/metrics`, `/healthz` and `/status`, off the
//! data path.
//!
//! One std thread accepts; each connection is served by a short-lived
//! thread of its own, at most [`CONNECTIONS_MAX`] at once (past that a
//! connection is answered `503` at once, and past twice that closed).
//! A connection gets one request and one response (`Connection: close`),
//! and the whole exchange must finish within [`REQUEST_DEADLINE`], so a
//! slow or silent client holds one thread for a bounded time and never
//! delays the others. Requests are bounded too: a head of at most
//! [`REQUEST_HEAD_BYTES_MAX`] bytes and [`HEADERS_MAX`] header lines.
//! Only `GET` and `HEAD` are served.

use crate::metrics::Metrics;
use anyhow::Context;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Produces the body of `/status`; registered by the server.
pub type StatusFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Largest request line plus headers, in bytes.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Most header lines in a request.
pub const HEADERS_MAX: usize = 64;
/// Time a connection has to send its request and take the response.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const CONNECTIONS_MAX: usize = 32;
/// How often the accept loop checks for `stop` while idle.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// After an error response, input is drained for up to this long before
/// the socket closes, so the client reads the response instead of a reset.
const LINGER: Duration = Duration::from_millis(200);
const LINGER_BYTES_MAX: usize = 256 * 1024;

/// The limits above, as one value so tests can shorten them.
#[derive(Debug, Clone, Copy)]
struct Limits {
    head_bytes_max: usize,
    headers_max: usize,
    deadline: Duration,
    connections_max: usize,
}

const LIMITS: Limits = Limits {
    head_bytes_max: REQUEST_HEAD_BYTES_MAX,
    headers_max: HEADERS_MAX,
    deadline: REQUEST_DEADLINE,
    connections_max: CONNECTIONS_MAX,
};

struct Shared {
    metrics: Arc<Metrics>,
    status: StatusFn,
    limits: Limits,
    /// `/healthz` answers 503 once set.
    shutting_down: AtomicBool,
    /// The accept loop exits once set.
    stopping: AtomicBool,
    /// Connections being served.
    active: AtomicUsize,
    /// Connections being answered 503 because `active` was at its limit.
    rejecting: AtomicUsize,
}

/// The running admin listener. Dropping it stops it like [`AdminHandle::stop`].
pub struct AdminHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AdminHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Binds `addr` and serves on a thread named `ferrisdb-admin`.
pub fn spawn(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    status: StatusFn,
) -> anyhow::Result<AdminHandle> {
    spawn_with(addr, metrics, status, LIMITS)
}

fn spawn_with(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    status: StatusFn,
    limits: Limits,
) -> anyhow::Result<AdminHandle> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("bind the admin listener to {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .context("make the admin listener non-blocking")?;
    let addr = listener
        .local_addr()
        .context("read the admin listener's address")?;
    let shared = Arc::new(Shared {
        metrics,
        status,
        limits,
        shutting_down: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        active: AtomicUsize::new(0),
        rejecting: AtomicUsize::new(0),
    });
    let loop_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("ferrisdb-admin".to_string())
        .spawn(move || accept_loop(&listener, &loop_shared))
        .context("start the admin thread")?;
    tracing::info!(%addr, "admin listener serving /metrics, /healthz, /status");
    Ok(AdminHandle {
        addr,
        shared,
        thread: Some(thread),
    })
}

impl AdminHandle {
    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on `/healthz` answers 503, so load balancers stop sending
    /// work; everything else is still served.
    pub fn begin_shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
    }

    /// Stops accepting and joins the accept thread. Connections already
    /// being served finish on their own within [`REQUEST_DEADLINE`].
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.begin_shutdown();
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the admin accept thread panicked");
        }
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stopping.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, peer)) => admit(stream, peer, shared),
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(error = %e, "admin listener: accept failed");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// Gives a connection slot back however the connection thread ends.
struct SlotGuard {
    shared: Arc<Shared>,
    busy: bool,
}

impl SlotGuard {
    fn counter(&self) -> &AtomicUsize {
        if self.busy {
            &self.shared.rejecting
        } else {
            &self.shared.active
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.counter().fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `stream` on a thread of its own. Past `connections_max` the
/// connection is answered 503 (on a thread too: a lingering close must not
/// block the accept loop), and past twice that it is simply closed.
fn admit(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>) {
    let max = shared.limits.connections_max;
    let busy = shared.active.load(Ordering::Acquire) >= max;
    let guard = SlotGuard {
        shared: Arc::clone(shared),
        busy,
    };
    if guard.counter().fetch_add(1, Ordering::AcqRel) >= max {
        tracing::warn!(%peer, "admin listener: too many connections, closing one");
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("ferrisdb-admin-conn".to_string())
        .spawn(move || {
            let guard = guard;
            let result = if guard.busy {
                let deadline = Instant::now() + LINGER;
                reject(stream, deadline, 503, "busy: too many admin connections\n")
            } else {
                serve(stream, &guard.shared)
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "admin connection ended early");
            }
        });
    if let Err(e) = spawned {
        // The closure (and with it the guard and the stream) was dropped.
        tracing::warn!(%peer, error = %e, "admin listener: cannot start a connection thread");
    }
}

/// What a request head turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum Parsed<'a> {
    Request { method: &'a str, path: &'a str },
    Bad { code: u16, why: &'static str },
}

fn serve(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let deadline = Instant::now() + shared.limits.deadline;
    stream.set_nonblocking(false)?;
    let _ = stream.set_nodelay(true);
    let head = match read_head(&mut stream, deadline, shared.limits.head_bytes_max) {
        Ok(Some(head)) => head,
        // Closed before a whole request: nothing to answer.
        Ok(None) => return Ok(()),
        Err(HeadError::TooLarge) => {
            return reject(stream, deadline, 431, "request head too large\n");
        }
        Err(HeadError::Timeout) => return reject(stream, deadline, 408, "request timeout\n"),
        Err(HeadError::Io(e)) => return Err(e),
    };
    let (code, content_type, body, head_only) = match parse_head(&head, shared.limits.headers_max) {
        Parsed::Bad { code, why } => return reject(stream, deadline, code, why),
        Parsed::Request { method, .. } if method != "GET" && method != "HEAD" => {
            return reject(stream, deadline, 405, "only GET and HEAD are served\n");
        }
        Parsed::Request { method, path } => {
            let (code, content_type, body) = route(path, shared);
            (code, content_type, body, method == "HEAD")
        }
    };
    write_response(
        &mut stream,
        deadline,
        &response(code, content_type, &body, head_only),
    )?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// The status document; `None` (logged) when its callback panicked.
fn status(shared: &Shared) -> Option<serde_json::Value> {
    let status = catch_unwind(AssertUnwindSafe(|| (shared.status)()));
    if status.is_err() {
        tracing::error!("the /status callback panicked");
    }
    status.ok()
}

/// The shards whose engine failed and refuses writes until the node is
/// restarted (a full disk, an I/O error, corruption), as `shard N: why`,
/// read from the status snapshot; none when the status cannot be had.
fn refusing_writes(shared: &Shared) -> Vec<String> {
    let Some(status) = status(shared) else {
        return Vec::new();
    };
    let cores = status["cores"].as_array().into_iter().flatten();
    let shards = cores.flat_map(|core| core["shards"].as_array().into_iter().flatten());
    shards
        .filter_map(|shard| {
            let why = shard["poisoned"].as_str()?;
            Some(format!("shard {}: {why}", shard["id"]))
        })
        .collect()
}

fn route(path: &str, shared: &Shared) -> (u16, &'static str, Vec<u8>) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match path {
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render().into_bytes(),
        ),
        "/healthz" if shared.shutting_down.load(Ordering::Acquire) => {
            (503, TEXT, b"shutting down\n".to_vec())
        }
        "/healthz" => match refusing_writes(shared) {
            refusing if refusing.is_empty() => (200, TEXT, b"ok\n".to_vec()),
            refusing => {
                let body = format!("refusing writes: {}\n", refusing.join("; "));
                (503, TEXT, body.into_bytes())
            }
        },
        "/status" => match status(shared) {
            Some(value) => {
                let mut body = serde_json::to_vec_pretty(&value).unwrap_or_default();
                body.push(b'\n');
                (200, "application/json", body)
            }
            None => (500, TEXT, b"status unavailable\n".to_vec()),
        },
        _ => (404, TEXT, b"not found\n".to_vec()),
    }
}

#[derive(Debug)]
enum HeadError {
    TooLarge,
    Timeout,
    Io(std::io::Error),
}

/// Reads up to the blank line that ends a request head. `None` if the peer
/// closed first.
fn read_head(
    stream: &mut TcpStream,
    deadline: Instant,
    bytes_max: usize,
) -> Result<Option<Vec<u8>>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        stream.set_read_timeout(Some(left)).map_err(HeadError::Io)?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(HeadError::Timeout);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(HeadError::Io(e)),
        };
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&head[searched_from..]) {
            head.truncate(searched_from + end);
            return if head.len() > bytes_max {
                Err(HeadError::TooLarge)
            } else {
                Ok(Some(head))
            };
        }
        if head.len() > bytes_max {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Offset of the end of the head (before `\r\n\r\n` or a bare `\n\n`).
fn find_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_head(head: &[u8], headers_max: usize) -> Parsed<'_> {
    let bad = |why| Parsed::Bad { code: 400, why };
    let Ok(text) = std::str::from_utf8(head) else {
        return bad("request head is not text\n");
    };
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad("malformed request line\n");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return bad("malformed method\n");
    }
    if !version.starts_with("HTTP/1.") {
        return Parsed::Bad {
            code: 505,
            why: "only HTTP/1.x is served\n",
        };
    }
    if !target.starts_with('/') {
        return bad("request target must be a path\n");
    }
    let mut headers = 0;
    for line in lines {
        headers += 1;
        if headers > headers_max {
            return Parsed::Bad {
                code: 431,
                why: "too many header lines\n",
            };
        }
        if !line.contains(':') {
            return bad("malformed header line\n");
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Parsed::Request { method, path }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn response(code: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n{allow}Connection: close\r\n\r\n",
        reason(code),
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

fn write_response(stream: &mut TcpStream, deadline: Instant, bytes: &[u8]) -> std::io::Result<()> {
    // At least a moment to write even when the read used up the deadline.
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    stream.set_write_timeout(Some(left))?;
    stream.write_all(bytes)?;
    stream.flush()
}

/// Answers an error, then drains what the client still sends for a moment
/// (lingering close) so it sees the response and not a connection reset.
fn reject(mut stream: TcpStream, deadline: Instant, code: u16, why: &str) -> std::io::Result<()> {
    write_response(
        &mut stream,
        deadline,
        &response(code, "text/plain; charset=utf-8", why.as_bytes(), false),
    )?;
    stream.shutdown(Shutdown::Write)?;
    let until = Instant::now() + LINGER;
    let mut drained = 0;
    let mut sink = [0u8; 4096];
    while drained < LINGER_BYTES_MAX {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Op;

    fn status() -> StatusFn {
        Arc::new(|| serde_json::json!({"node": "test", "cores": 1}))
    }

    fn start(limits: Limits) -> (AdminHandle, Arc<Metrics>) {
        let metrics = Metrics::new(1);
        let addr = "127.0.0.1:0".parse().expect("addr");
        let handle = spawn_with(addr, Arc::clone(&metrics), status(), limits).expect("spawn");
        (handle, metrics)
    }

    /// Sends `request` raw and returns (status code, head, body).
    fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request).expect("send");
        read_response(&mut s)
    }

    fn read_response(s: &mut TcpStream) -> (u16, String, String) {
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read response");
        let text = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("status line: {head}"));
        (code, head.to_string(), body.to_string())
    }

    fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
    }

    #[test]
    fn serves_metrics_healthz_and_status_over_tcp() {
        let (admin, metrics) = start(LIMITS);
        let addr = admin.local_addr();
        assert_ne!(addr.port(), 0);
        metrics
            .core(0)
            .record_request(Op::Get, Duration::from_micros(5), true);

        let (code, head, body) = get(addr, "/metrics");
        assert_eq!(code, 200);
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(
            body.contains("ferrisdb_requests_total{core=\"0\",op=\"get\"} 1\n"),
            "{body}"
        );
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.parse().ok())
            .expect("content length");
        assert_eq!(length, body.len());

        let (code, _, body) = get(addr, "/healthz");
        assert_eq!((code, body.as_str()), (200, "ok\n"));
        let (code, head, body) = get(addr, "/status?verbose=1");
        assert_eq!(code, 200);
        assert!(head.contains("application/json"), "{head}");
        let value: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(value, serde_json::json!({"node": "test", "cores": 1}));

        assert_eq!(get(addr, "/nope").0, 404);
        let (code, head, _) =
            exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(code, 405);
        assert!(head.contains("Allow: GET, HEAD"), "{head}");
        let (code, _, body) = exchange(addr, b"HEAD /healthz HTTP/1.1\r\n\r\n");
        assert_eq!((code, body.as_str()), (200, ""));

        admin.begin_shutdown();
        assert_eq!(get(addr, "/healthz").0, 503);
        assert_eq!(get(addr, "/metrics").0, 200, "still scraped while draining");
        admin.stop();
        assert!(
            TcpStream::connect(addr).is_err(),
            "listener closed after stop"
        );
    }

    #[test]
    fn survives_garbage_oversized_and_silent_clients() {
        // Long enough that "answered while two clients idle" cannot be
        // mistaken for "answered after their deadlines", even on a busy machine.
        let limits = Limits {
            deadline: Duration::from_millis(1500),
            ..LIMITS
        };
        let (admin, _) = start(limits);
        let addr = admin.local_addr();

        assert_eq!(exchange(addr, b"\x00\xff\xfe garbage\r\n\r\n").0, 400);
        assert_eq!(exchange(addr, b"GET\r\n\r\n").0, 400);
        assert_eq!(exchange(addr, b"GET /x HTTP/2.0\r\n\r\n").0, 505);
        assert_eq!(
            exchange(addr, b"GET /x HTTP/1.1\r\nno colon\r\n\r\n").0,
            400
        );
        let oversized = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(REQUEST_HEAD_BYTES_MAX)
        );
        assert_eq!(exchange(addr, oversized.as_bytes()).0, 431);
        let endless = vec![b'a'; 64 * 1024];
        assert_eq!(exchange(addr, &endless).0, 431, "no end of head in sight");
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(HEADERS_MAX + 1)
        );
        assert_eq!(exchange(addr, many.as_bytes()).0, 431);

        // A silent client and one that stops mid-request do not hold up others.
        let silent = TcpStream::connect(addr).expect("connect");
        let mut partial = TcpStream::connect(addr).expect("connect");
        partial.write_all(b"GET /metr").expect("send");
        let before = Instant::now();
        assert_eq!(get(addr, "/healthz").0, 200);
        assert!(
            before.elapsed() < Duration::from_millis(1000),
            "answered while others idle"
        );
        // ... and the server gives up on them at the deadline.
        partial
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        assert_eq!(read_response(&mut partial).0, 408);
        drop(silent);

        // A client that connects and leaves at once.
        drop(TcpStream::connect(addr).expect("connect"));
        assert_eq!(get(addr, "/healthz").0, 200, "still serving");
    }

    #[test]
    fn connections_past_the_limit_get_503_at_once() {
        let limits = Limits {
            connections_max: 2,
            deadline: Duration::from_secs(30),
            ..LIMITS
        };
        let (admin, _) = start(limits);
        let addr = admin.local_addr();
        let idle: Vec<TcpStream> = (0..2)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        // Let the accept loop pick both up.
        let until = Instant::now() + Duration::from_secs(5);
        while admin.shared.active.load(Ordering::Acquire) < 2 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(get(addr, "/healthz").0, 503);
        drop(idle);
        let until = Instant::now() + Duration::from_secs(5);
        while admin.shared.active.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            get(addr, "/healthz").0,
            200,
            "slots come back when clients leave"
        );
    }

    #[test]
    fn healthz_names_the_shards_that_refuse_writes() {
        let metrics = Metrics::new(2);
        let status: StatusFn = Arc::new(|| {
            serde_json::json!({"cores": [
                {"core": 0, "shards": [{"id": 0, "poisoned": null}]},
                {"core": 1, "shards": [{"id": 1, "poisoned": "write 9.sst: No space left on device"}]},
            ]})
        });
        let admin = spawn("127.0.0.1:0".parse().expect("addr"), metrics, status).expect("spawn");
        let (code, _, body) = get(admin.local_addr(), "/healthz");
        assert_eq!(code, 503);
        assert_eq!(
            body,
            "refusing writes: shard 1: write 9.sst: No space left on device\n"
        );
    }

    #[test]
    fn a_panicking_status_callback_is_a_500() {
        let metrics = Metrics::new(1);
        let panics: StatusFn = Arc::new(|| panic!("status broke"));
        let admin = spawn("127.0.0.1:0".parse().expect("addr"), metrics, panics).expect("spawn");
        assert_eq!(get(admin.local_addr(), "/status").0, 500);
        assert_eq!(get(admin.local_addr(), "/healthz").0, 200);
    }

    #[test]
    fn binding_a_used_address_is_a_clear_error() {
        let (admin, metrics) = start(LIMITS);
        let e = spawn(admin.local_addr(), metrics, status())
            .expect_err("in use")
            .to_string();
        assert!(
            e.starts_with(&format!(
                "bind the admin listener to {}: ",
                admin.local_addr()
            )),
            "{e}"
        );
        assert!(e.contains("in use"), "{e}");
    }

    #[test]
    fn heads_parse() {
        assert_eq!(
            parse_head(b"GET /metrics?x=1 HTTP/1.0", 4),
            Parsed::Request {
                method: "GET",
                path: "/metrics"
            }
        );
        assert!(matches!(
            parse_head(b"get / HTTP/1.1", 4),
            Parsed::Bad { code: 400, .. }
        ));
        assert!(matches!(
            parse_head(b"GET http://x/ HTTP/1.1", 4),
            Parsed::Bad { code: 400, .. }
        ));
        assert_eq!(find_end(b"a\r\n\r\nb"), Some(1));
        assert_eq!(find_end(b"a\n\nb"), Some(1));
        assert_eq!(find_end(b"a\r\n"), None);
    }
}

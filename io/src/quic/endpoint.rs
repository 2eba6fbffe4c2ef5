//! One QUIC endpoint per core: the socket, the receiver and the driver.

use super::connection::{Conn, Connection};
use super::{ClientConfig, QuicError, ServerConfig};
use crate::notify::Notify;
use bytes::BytesMut;
use futures_lite::future;
use quinn_proto::{ConnectionHandle, DatagramEvent, EndpointConfig};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Largest UDP payload this endpoint reads (QUIC never sends more than the
/// path MTU; 64 KiB covers anything a peer could send).
const DATAGRAM_BYTES_MAX: usize = 65_535;
/// Datagrams the receiver handles before it yields to other tasks.
const RECEIVE_BURST_MAX: usize = 64;
/// Size of the buffer large datagrams are copied into (see [`ReceivePool`]).
const RECEIVE_POOL_BYTES: usize = 128 << 10;
/// Datagrams this large or larger go to the pool's buffer; a smaller one
/// gets an allocation of its own. A pooled datagram keeps at most
/// `RECEIVE_POOL_BYTES` alive, 4 times its size.
const POOLED_DATAGRAM_BYTES_MIN: usize = RECEIVE_POOL_BYTES / 4;

/// Hands out each large received datagram as a slice of a shared buffer.
///
/// quinn-proto keeps a datagram's bytes (as `Bytes` views of it) until the
/// application has read the stream data in it. One fresh allocation per
/// datagram of tens of KiB (loopback, jumbo frames) made the allocator
/// fault in and zero new huge pages at the datagram rate: 7% of a node
/// core's time under a pipelined write load (`clear_page_erms` under
/// `handle_datagram`, docs/performance.md). Slices of one buffer come back
/// to it once every view of them is gone; while any is alive, the next
/// buffer is a new one.
///
/// quinn-proto bounds what a peer can make it hold by counting each
/// datagram's own size (it compacts a stream's buffered data when that
/// count runs too far ahead of the data). A datagram that holds a whole
/// shared buffer alive is counted at a quarter of it at least, so a peer
/// that keeps stream data unread holds at most 4 times what quinn-proto
/// counts; small datagrams (Ethernet-sized ones, acknowledgements) are
/// not pooled, so a peer cannot pin a whole buffer with a few bytes.
#[derive(Default)]
struct ReceivePool {
    buf: BytesMut,
}

impl ReceivePool {
    /// A copy of `data`: in the pool's buffer if it is large.
    fn take(&mut self, data: &[u8]) -> BytesMut {
        if data.len() < POOLED_DATAGRAM_BYTES_MIN {
            return BytesMut::from(data);
        }
        if self.buf.capacity() < data.len() {
            // `buf` is empty here: this reclaims the whole buffer when no
            // earlier datagram still refers to it, else allocates a new one.
            self.buf.reserve(RECEIVE_POOL_BYTES);
        }
        self.buf.extend_from_slice(data);
        self.buf.split()
    }
}

/// Sets the don't-fragment bit and never fragments locally
/// (`IP_PMTUDISC_PROBE`), as quinn does on its own sockets: QUIC's path MTU
/// discovery needs a probe larger than the path to be lost, not delivered
/// in IP fragments.
fn forbid_fragmentation(fd: RawFd, addr: SocketAddr) -> std::io::Result<()> {
    let probe_v4 = || {
        set_int_option(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        )
    };
    match addr {
        SocketAddr::V4(_) => probe_v4(),
        SocketAddr::V6(_) => {
            // IPv4-mapped peers of a dual-stack socket go by the IPv4
            // option; a v6-only socket may refuse it, which is fine.
            let _ = probe_v4();
            set_int_option(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_PROBE,
            )?;
            // Linux fragments IPv6 datagrams locally unless this is set too.
            set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1)
        }
    }
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket and the value is a c_int of `len` bytes.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            option,
            (&value as *const libc::c_int).cast(),
            len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn get_int_option(
    fd: RawFd,
    level: libc::c_int,
    option: libc::c_int,
) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket and there is room for one c_int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(value)
}

/// Asks for `bytes` of receive and send buffer on `fd`. Linux caps the
/// request at `net.core.rmem_max` / `wmem_max` without an error, so a
/// smaller grant is logged with the setting to raise.
fn size_socket_buffers(fd: RawFd, bytes: usize, addr: SocketAddr) -> std::io::Result<()> {
    for (option, name, sysctl) in [
        (libc::SO_RCVBUF, "receive", "net.core.rmem_max"),
        (libc::SO_SNDBUF, "send", "net.core.wmem_max"),
    ] {
        let wanted = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        set_int_option(fd, libc::SOL_SOCKET, option, wanted)?;
        let got = get_int_option(fd, libc::SOL_SOCKET, option)?;
        // Linux reports twice what it grants (the doubling covers its
        // bookkeeping), so half of it is the comparable figure.
        let granted = usize::try_from(got / 2).unwrap_or(0);
        if granted < bytes {
            tracing::warn!(
                %addr,
                wanted = bytes,
                granted,
                "UDP {name} buffer smaller than asked; raise {sysctl} to avoid datagram drops under bursts"
            );
        }
    }
    Ok(())
}

/// Bounds on what one endpoint holds.
#[derive(Debug, Clone, Copy)]
pub struct EndpointLimits {
    /// Open connections; new ones beyond it are refused.
    pub connections_max: usize,
    /// Accepted connections waiting for [`Endpoint::accept`].
    pub accept_queue_max: usize,
    /// Bytes asked for the socket's receive and send buffers (0: the
    /// kernel's default). The kernel may grant less; see [`Endpoint::bind`].
    pub socket_buffer_bytes: usize,
    /// Largest UDP payload peers may send (QUIC's `max_udp_payload_size`;
    /// the receiver reads up to 65 535 bytes). Path MTU discovery, set in
    /// the transport configuration, should search up to the same size.
    pub max_udp_payload_bytes: u16,
}

impl Default for EndpointLimits {
    fn default() -> Self {
        EndpointLimits {
            connections_max: 4096,
            accept_queue_max: 256,
            socket_buffer_bytes: 0,
            max_udp_payload_bytes: 1472,
        }
    }
}

pub(crate) struct State {
    endpoint: quinn_proto::Endpoint,
    pub(crate) conns: HashMap<ConnectionHandle, Conn>,
    /// Connections that changed since the driver last ran.
    pub(crate) dirty: Vec<ConnectionHandle>,
    accept_queue: VecDeque<Connection>,
    accept_wakers: Vec<Waker>,
    outbox: VecDeque<(Vec<u8>, SocketAddr)>,
    next_generation: u64,
    closed: bool,
    limits: EndpointLimits,
}

pub(crate) struct Shared {
    pub(crate) state: RefCell<State>,
    wake_driver: Notify,
    socket: glommio::net::UdpSocket,
    local_addr: SocketAddr,
}

impl Shared {
    /// Asks the driver to look at the dirty connections soon.
    pub(crate) fn kick(&self) {
        self.wake_driver.notify_all();
    }
}

/// A QUIC endpoint on one core: accepts connections (with a server config)
/// and makes them (with [`Endpoint::connect`]).
#[derive(Clone)]
pub struct Endpoint {
    shared: Rc<Shared>,
}

impl Endpoint {
    /// Binds a UDP socket on `addr` and starts the endpoint's tasks on the
    /// calling glommio executor. Without `server` it only makes connections.
    pub fn bind(
        addr: SocketAddr,
        server: Option<ServerConfig>,
        limits: EndpointLimits,
    ) -> std::io::Result<Endpoint> {
        let socket = glommio::net::UdpSocket::bind(addr).map_err(std::io::Error::from)?;
        let local_addr = socket.local_addr().map_err(std::io::Error::from)?;
        if limits.socket_buffer_bytes > 0 {
            size_socket_buffers(socket.as_raw_fd(), limits.socket_buffer_bytes, local_addr)?;
        }
        forbid_fragmentation(socket.as_raw_fd(), local_addr)?;
        let mut config = EndpointConfig::default();
        // What peers may send (the default, 1472, would cap path MTU
        // discovery at Ethernet's size).
        config
            .max_udp_payload_size(limits.max_udp_payload_bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let endpoint = quinn_proto::Endpoint::new(
            Arc::new(config),
            server.map(Arc::new),
            // Path MTU discovery: the socket never fragments (above).
            true,
            None,
        );
        let shared = Rc::new(Shared {
            state: RefCell::new(State {
                endpoint,
                conns: HashMap::new(),
                dirty: Vec::new(),
                accept_queue: VecDeque::new(),
                accept_wakers: Vec::new(),
                outbox: VecDeque::new(),
                next_generation: 1,
                closed: false,
                limits,
            }),
            wake_driver: Notify::new(),
            socket,
            local_addr,
        });
        glommio::spawn_local(receive_loop(shared.clone())).detach();
        glommio::spawn_local(drive_loop(shared.clone())).detach();
        Ok(Endpoint { shared })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.shared.state.borrow().conns.len()
    }

    /// The next incoming connection (its handshake may still be running;
    /// streams wait for it). `None` once the endpoint is closed.
    pub async fn accept(&self) -> Option<Connection> {
        future::poll_fn(|cx| {
            let mut st = self.shared.state.borrow_mut();
            if let Some(conn) = st.accept_queue.pop_front() {
                return Poll::Ready(Some(conn));
            }
            if st.closed {
                return Poll::Ready(None);
            }
            st.accept_wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Opens a connection to `remote` and waits for its handshake.
    pub async fn connect(
        &self,
        config: ClientConfig,
        remote: SocketAddr,
        server_name: &str,
    ) -> Result<Connection, QuicError> {
        let conn = {
            let mut st = self.shared.state.borrow_mut();
            if st.closed {
                return Err(QuicError::EndpointClosed);
            }
            let (ch, inner) = st
                .endpoint
                .connect(Instant::now(), config, remote, server_name)
                .map_err(QuicError::Connect)?;
            st.insert(ch, inner, &self.shared)
        };
        self.shared.kick();
        conn.handshake().await?;
        Ok(conn)
    }

    /// Closes every connection with `code`, refuses new ones and waits (up
    /// to `grace`) for the peers to be told, then stops the endpoint's tasks.
    pub async fn close(&self, code: u32, reason: &[u8], grace: Duration) {
        {
            let mut st = self.shared.state.borrow_mut();
            st.closed = true;
            let now = Instant::now();
            let handles: Vec<_> = st.conns.keys().copied().collect();
            for ch in handles {
                if let Some(c) = st.conns.get_mut(&ch) {
                    c.inner
                        .close(now, code.into(), bytes::Bytes::copy_from_slice(reason));
                }
                st.dirty.push(ch);
            }
            for waker in st.accept_wakers.drain(..) {
                waker.wake();
            }
        }
        self.shared.kick();
        let deadline = Instant::now() + grace;
        while self.connection_count() > 0 && Instant::now() < deadline {
            crate::executor::sleep(Duration::from_millis(5)).await;
        }
        self.shared.state.borrow_mut().conns.clear();
        self.shared.kick();
        // Wake the receiver so it sees `closed` and ends.
        let _ = self
            .shared
            .socket
            .send_to(&[], self.shared.local_addr)
            .await;
    }
}

impl State {
    pub(crate) fn insert(
        &mut self,
        ch: ConnectionHandle,
        inner: quinn_proto::Connection,
        shared: &Rc<Shared>,
    ) -> Connection {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.conns.insert(ch, Conn::new(inner, generation));
        self.dirty.push(ch);
        Connection::new(shared.clone(), ch, generation)
    }

    fn handle_datagram(&mut self, shared: &Rc<Shared>, remote: SocketAddr, data: BytesMut) {
        let now = Instant::now();
        let mut buf = Vec::new();
        let event = self
            .endpoint
            .handle(now, remote, None, None, data, &mut buf);
        match event {
            Some(DatagramEvent::ConnectionEvent(ch, event)) => {
                if let Some(conn) = self.conns.get_mut(&ch) {
                    conn.inner.handle_event(event);
                    self.dirty.push(ch);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                let full = self.conns.len() >= self.limits.connections_max
                    || self.accept_queue.len() >= self.limits.accept_queue_max;
                if self.closed || full {
                    let transmit = self.endpoint.refuse(incoming, &mut buf);
                    buf.truncate(transmit.size);
                    self.outbox.push_back((buf, transmit.destination));
                    return;
                }
                match self.endpoint.accept(incoming, now, &mut buf, None) {
                    Ok((ch, inner)) => {
                        let conn = self.insert(ch, inner, shared);
                        self.accept_queue.push_back(conn);
                        for waker in self.accept_wakers.drain(..) {
                            waker.wake();
                        }
                    }
                    Err(err) => {
                        tracing::debug!(%remote, cause = %err.cause, "refused a connection");
                        if let Some(transmit) = err.response {
                            buf.truncate(transmit.size);
                            self.outbox.push_back((buf, transmit.destination));
                        }
                    }
                }
            }
            Some(DatagramEvent::Response(transmit)) => {
                buf.truncate(transmit.size);
                self.outbox.push_back((buf, transmit.destination));
            }
            None => {}
        }
    }

    /// Runs every dirty connection: timers that expired, events for the
    /// endpoint, events for the application, packets to send.
    fn drive_dirty(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for ch in dirty.drain(..) {
            self.drive(ch, now);
        }
        // Keep the allocation for next time.
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    fn drive(&mut self, ch: ConnectionHandle, now: Instant) {
        let State {
            endpoint,
            conns,
            outbox,
            ..
        } = self;
        let Some(conn) = conns.get_mut(&ch) else {
            return;
        };
        let mut drained = false;
        loop {
            let mut buf = Vec::new();
            let Some(transmit) = conn.inner.poll_transmit(now, 1, &mut buf) else {
                break;
            };
            buf.truncate(transmit.size);
            outbox.push_back((buf, transmit.destination));
        }
        while let Some(event) = conn.inner.poll_endpoint_events() {
            drained |= event.is_drained();
            if let Some(reply) = endpoint.handle_event(ch, event) {
                conn.inner.handle_event(reply);
            }
        }
        while let Some(event) = conn.inner.poll() {
            conn.on_event(event);
        }
        if drained && let Some(mut conn) = conns.remove(&ch) {
            conn.wake_all();
        }
    }

    fn handle_timeouts(&mut self, now: Instant) {
        for (ch, conn) in self.conns.iter_mut() {
            if conn.inner.poll_timeout().is_some_and(|t| t <= now) {
                conn.inner.handle_timeout(now);
                self.dirty.push(*ch);
            }
        }
    }

    fn next_timeout(&mut self) -> Option<Instant> {
        self.conns
            .values_mut()
            .filter_map(|c| c.inner.poll_timeout())
            .min()
    }
}

async fn receive_loop(shared: Rc<Shared>) {
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    let mut pool = ReceivePool::default();
    let mut burst = 0;
    loop {
        let received = shared.socket.recv_from(&mut buf).await;
        if shared.state.borrow().closed {
            break;
        }
        match received {
            Ok((len, remote)) => {
                shared
                    .state
                    .borrow_mut()
                    .handle_datagram(&shared, remote, pool.take(&buf[..len]));
                shared.kick();
            }
            // A UDP socket reports e.g. ICMP errors here; the datagram is
            // lost, which QUIC recovers from. Keep serving.
            Err(err) => tracing::debug!(error = %err, "udp receive failed"),
        }
        burst += 1;
        if burst >= RECEIVE_BURST_MAX {
            burst = 0;
            future::yield_now().await;
        }
    }
}

async fn drive_loop(shared: Rc<Shared>) {
    loop {
        // Taken before the work below, so a kick during it is not missed.
        let kicked = shared.wake_driver.notified();
        let deadline = {
            let mut st = shared.state.borrow_mut();
            let now = Instant::now();
            st.handle_timeouts(now);
            st.drive_dirty(now);
            st.next_timeout()
        };
        loop {
            let next = shared.state.borrow_mut().outbox.pop_front();
            let Some((datagram, remote)) = next else {
                break;
            };
            if let Err(err) = shared.socket.send_to(&datagram, remote).await {
                tracing::debug!(error = %err, %remote, "udp send failed");
            }
        }
        {
            let st = shared.state.borrow();
            if st.closed && st.conns.is_empty() && st.outbox.is_empty() {
                break;
            }
        }
        match deadline {
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                future::or(kicked, crate::executor::sleep(wait)).await;
            }
            None => kicked.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_option(fd: RawFd, level: libc::c_int, option: libc::c_int) -> libc::c_int {
        get_int_option(fd, level, option).expect("getsockopt")
    }

    /// The buffers get the size asked for (64 KiB: below the kernel's
    /// default and any cap, so the figure read back is exactly it), and
    /// the socket never fragments.
    #[test]
    fn sockets_get_their_buffers_and_never_fragment() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = socket.local_addr().expect("addr");
        let fd = socket.as_raw_fd();
        size_socket_buffers(fd, 64 << 10, addr).expect("size");
        forbid_fragmentation(fd, addr).expect("dont-fragment");
        // Linux reports twice what it grants.
        assert_eq!(int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF), 128 << 10);
        assert_eq!(int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUF), 128 << 10);
        assert_eq!(
            int_option(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            libc::IP_PMTUDISC_PROBE
        );
        let socket = std::net::UdpSocket::bind("[::1]:0").expect("bind v6");
        let fd = socket.as_raw_fd();
        forbid_fragmentation(fd, socket.local_addr().expect("addr")).expect("dont-fragment");
        assert_eq!(
            int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
            libc::IPV6_PMTUDISC_PROBE
        );
        assert_eq!(int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG), 1);
    }

    /// Large datagrams are copied whole into one buffer; once every
    /// earlier one is dropped the buffer is used again from its start,
    /// while one is alive it is left alone (its bytes never change). Small
    /// datagrams never hold a buffer.
    #[test]
    fn receive_pool_reuses_its_buffer_once_datagrams_are_dropped() {
        const BIG: usize = POOLED_DATAGRAM_BYTES_MIN;
        let mut pool = ReceivePool::default();
        let first = pool.take(&[1; BIG]);
        let start = first.as_ptr();
        let small = pool.take(&[9; 1200]);
        assert_eq!(
            small.capacity(),
            1200,
            "a small datagram has its own allocation"
        );
        let second = pool.take(&[2; BIG + 1000]);
        assert_eq!(second.as_ptr(), start.wrapping_add(BIG), "same buffer");
        assert_eq!(&first[..], &[1; BIG][..]);
        drop((first, second));
        // The rest of the buffer is too short for this one: back to the start.
        let again = pool.take(&[4; RECEIVE_POOL_BYTES - 2 * BIG]);
        assert_eq!(again.as_ptr(), start, "buffer reclaimed");
        let kept = again.freeze();
        let _rest = pool.take(&[5; 2 * BIG]);
        let next = pool.take(&[6; BIG]);
        assert_ne!(
            next.as_ptr(),
            start,
            "a buffer still referred to is not reused"
        );
        assert_eq!(&kept[..], &[4; RECEIVE_POOL_BYTES - 2 * BIG][..]);
        assert_eq!(&next[..], &[6; BIG][..]);
        assert_eq!(&small[..], &[9; 1200][..]);
    }
}

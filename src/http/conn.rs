//! What each TCP connection may keep waiting to go out, and how the server ends a connection.
//!
//! Our own queues are only the top of the stack: below them a WebSocket keeps a channel of
//! frames (`ws_out`), actix-http a write buffer per connection that takes a whole sized body at
//! once (and, patched, up to 16 large chunks it writes from their own buffers), and the kernel a
//! send buffer. A client that stops reading fills all of them, and actix never gives up on a
//! write by itself. So every connection gets a [`Conn`] (made in `on_connect`, found by handlers
//! in the request's connection data) that:
//!
//! - **counts every byte waiting to go out**: producers (WebSocket frames, SSE and `/follow`
//!   chunks) count what they queue ([`Conn::queued`]), sized bodies are counted whole when the
//!   response is made, and [`MeteredBody`] counts what actix takes, in pieces of at most
//!   [`PIECE_BYTES`] (so a sized body streams: actix's write buffer stays at its own 32 KiB
//!   bound, and pipelined requests wait for the previous answer instead of piling up answers).
//!   A producer waits for room ([`Conn::room`]) within the per-connection and the server-wide
//!   budget before it reads more for that client.
//! - **ends the connection itself** ([`Conn::kill`]): the server remembers the connection's
//!   socket (its descriptor and both addresses), so it can reset it (`SO_LINGER` 0, then
//!   `shutdown`) even while actix is blocked writing to it; actix then sees the error and drops
//!   the connection, and the kernel frees its buffers at once. No descriptor is duplicated (that
//!   would halve the connections a descriptor limit allows); instead the descriptor is reset only
//!   if it still names the same pair of addresses, so a number reused by another connection is
//!   never touched. A connection whose bytes have not moved for `--send-timeout` is
//!   reset by the sweeper ([`Connections::sweep`]), whatever it is (WebSocket, stream, poll
//!   answer, static file), like nginx's `send_timeout`.
//! - **bounds the kernel's send queue** of the socket (`SO_SNDBUF`, a quarter of the budget,
//!   which the kernel doubles), so a client that reads nothing pins half the budget there at
//!   most instead of `tcp_wmem`'s maximum.
//! - **notices a vanished peer** without writing into the stream: TCP keepalive on every socket,
//!   and `TCP_USER_TIMEOUT`, so unacknowledged data (a peer that is gone, or keeps a zero
//!   window) aborts the connection in the kernel after `--send-timeout`.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use tokio::sync::Notify;

/// Why [`Conn::make_room`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoom {
    /// The client did not take its bytes within the send timeout.
    Stalled,
    /// The server's budget stayed full (other clients hold it).
    ServerBusy,
}

/// Largest piece of a response handed to actix at once.
pub const PIECE_BYTES: usize = 16 * 1024;

/// The output bounds.
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    /// Bytes that may wait to go out to one connection.
    pub per_connection: usize,
    /// Bytes that may wait to go out to all connections together.
    pub total: usize,
    /// A connection whose waiting bytes do not move for this long is reset; also the longest a
    /// producer waits for room in its own connection's budget.
    pub send_timeout: Duration,
    /// The longest a producer waits for room in the server's budget (other clients hold it).
    pub busy_timeout: Duration,
    /// Idle time before TCP keepalive probes start.
    pub keepalive: Duration,
}

struct Shared {
    limits: OutputLimits,
    started: Instant,
    unsent_total: AtomicUsize,
    /// Woken when the server-wide total falls while someone waits for it.
    room: Notify,
    /// Producers waiting for room in the server-wide budget.
    server_waiters: AtomicUsize,
    registry: Mutex<Vec<Weak<ConnInner>>>,
    /// Connections reset because their output did not move.
    stalled_resets: AtomicU64,
}

/// Every open connection and the server-wide output count; a cheap-clone handle.
#[derive(Clone)]
pub struct Connections {
    shared: Arc<Shared>,
}

/// One TCP connection's output budget and reset switch; a cheap-clone handle.
#[derive(Clone)]
pub struct Conn {
    inner: Arc<ConnInner>,
}

struct ConnInner {
    shared: Arc<Shared>,
    /// The connection's socket, if it has one: see [`Conn::kill`].
    socket: Option<SocketId>,
    unsent: AtomicUsize,
    /// Milliseconds since `shared.started` of the last progress (or of the first waiting byte).
    moved_at: AtomicU64,
    room: Notify,
    killed: AtomicBool,
    /// Set when actix is done with the connection (its [`ConnGuard`] dropped): nothing to reset.
    closed: AtomicBool,
}

/// Kept in the connection's data, which actix drops with the connection: marks the [`Conn`]
/// closed, so that it is never reset after actix has let go of the socket.
pub struct ConnGuard(Conn);

impl Conn {
    /// The guard to keep in the connection's data beside the `Conn`.
    pub fn guard(&self) -> ConnGuard {
        ConnGuard(self.clone())
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.inner.closed.store(true, Relaxed);
    }
}

impl Connections {
    /// A registry with these bounds.
    pub fn new(limits: OutputLimits) -> Connections {
        Connections {
            shared: Arc::new(Shared {
                limits,
                started: Instant::now(),
                unsent_total: AtomicUsize::new(0),
                room: Notify::new(),
                server_waiters: AtomicUsize::new(0),
                registry: Mutex::new(Vec::new()),
                stalled_resets: AtomicU64::new(0),
            }),
        }
    }

    /// Registers a new connection on `socket`: sets its TCP options and keeps a duplicate.
    pub fn accept(&self, socket: BorrowedFd<'_>) -> Conn {
        let limits = self.shared.limits;
        let sock = socket2::SockRef::from(&socket);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(limits.keepalive)
            .with_interval(Duration::from_secs(5))
            .with_retries(3);
        // Best effort: a socket that refuses an option still works, with the kernel's defaults.
        let _ = sock.set_tcp_keepalive(&keepalive);
        // The kernel's own queue is part of what waits for the client: without a bound it grows
        // to `tcp_wmem`'s maximum (4 MiB) for a client that reads nothing. Linux doubles the
        // value for its bookkeeping, so it holds at most half of --client-buffer.
        let _ = sock.set_send_buffer_size(limits.per_connection / 4);
        let _ = sock.set_tcp_user_timeout(Some(limits.send_timeout.max(Duration::from_secs(1))));
        let id = match (sock.local_addr(), sock.peer_addr()) {
            (Ok(local), Ok(peer)) => {
                local
                    .as_socket()
                    .zip(peer.as_socket())
                    .map(|(local, peer)| SocketId {
                        fd: socket.as_raw_fd(),
                        local,
                        peer,
                        cookie: socket_cookie(socket.as_raw_fd()),
                    })
            }
            _ => None,
        };
        self.register(id)
    }

    /// A connection without a socket of its own (tests, or a transport with no TCP socket): it
    /// is counted, but [`Conn::kill`] has nothing to reset.
    pub fn detached(&self) -> Conn {
        self.register(None)
    }

    fn register(&self, socket: Option<SocketId>) -> Conn {
        let inner = Arc::new(ConnInner {
            shared: self.shared.clone(),
            socket,
            unsent: AtomicUsize::new(0),
            moved_at: AtomicU64::new(0),
            room: Notify::new(),
            killed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let mut registry = lock(&self.shared.registry);
        registry.push(Arc::downgrade(&inner));
        Conn { inner }
    }

    /// Bytes waiting to go out to all connections.
    pub fn unsent_total(&self) -> usize {
        self.shared.unsent_total.load(Relaxed)
    }

    /// True when the server-wide budget is full: new work should be refused.
    pub fn saturated(&self) -> bool {
        self.unsent_total() >= self.shared.limits.total
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        lock(&self.shared.registry)
            .iter()
            .filter(|c| c.strong_count() > 0)
            .count()
    }

    /// Connections reset so far because their output did not move.
    pub fn stalled_resets(&self) -> u64 {
        self.shared.stalled_resets.load(Relaxed)
    }

    /// Resets every connection whose waiting bytes have not moved for the send timeout, and
    /// forgets closed ones. Returns how many it reset.
    pub fn sweep(&self) -> usize {
        let now = self.shared.now_ms();
        let timeout = self.shared.limits.send_timeout.as_millis() as u64;
        let mut stalled = Vec::new();
        {
            let mut registry = lock(&self.shared.registry);
            registry.retain(|weak| match weak.upgrade() {
                Some(conn) => {
                    let waiting = conn.unsent.load(Relaxed) > 0 && !conn.closed.load(Relaxed);
                    if waiting && now.saturating_sub(conn.moved_at.load(Relaxed)) >= timeout {
                        stalled.push(conn);
                    }
                    true
                }
                None => false,
            });
        }
        let mut reset = 0;
        for inner in stalled {
            let conn = Conn { inner };
            if conn.kill() {
                reset += 1;
            }
        }
        self.shared.stalled_resets.fetch_add(reset as u64, Relaxed);
        reset
    }

    /// Runs [`Connections::sweep`] every quarter of the send timeout (at most every second) until
    /// `shutdown` fires. After connections have gone, it also gives the allocator's free memory
    /// back to the system ([`return_free_memory`]), so the memory an attack made the server use
    /// does not stay with the process once the attack is over.
    pub async fn run_sweeper(self, mut shutdown: crate::shutdown::Shutdown) {
        let period = (self.shared.limits.send_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open_before: usize = 0;
        let mut gone_since_trim: usize = 0;
        let mut last_trim = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.fired() => return,
                _ = tick.tick() => {
                    let reset = self.sweep();
                    if reset > 0 {
                        tracing::info!(reset, "reset connections whose output did not move within --send-timeout");
                    }
                    let open = self.open();
                    gone_since_trim += open_before.saturating_sub(open);
                    open_before = open;
                    // Only after many connections went (the end of an attack, a burst of
                    // clients), not on ordinary churn: the trim walks every arena under its lock.
                    if gone_since_trim >= TRIM_AFTER_GONE && last_trim.elapsed() >= TRIM_INTERVAL {
                        let _ = tokio::task::spawn_blocking(return_free_memory).await;
                        gone_since_trim = 0;
                        last_trim = Instant::now();
                    }
                }
            }
        }
    }
}

/// Least time between two [`return_free_memory`] calls.
const TRIM_INTERVAL: Duration = Duration::from_secs(2);
/// Connections that must have gone since the last [`return_free_memory`] for another.
const TRIM_AFTER_GONE: usize = 32;

/// Returns the allocator's free pages to the system. glibc keeps freed memory in per-thread
/// arenas and gives back only the top of each heap, so after a burst of connections the process
/// would keep its peak size; `malloc_trim` releases every free page.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("unsent_total", &self.unsent_total())
            .finish()
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

impl Conn {
    /// Counts `bytes` now waiting to go out (queued to actix, not yet taken by its writer).
    pub fn queued(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let inner = &self.inner;
        if inner.unsent.fetch_add(bytes, Relaxed) == 0 {
            // The stall clock starts with the first waiting byte, not at the last progress.
            inner.moved_at.store(inner.shared.now_ms(), Relaxed);
        }
        inner.shared.unsent_total.fetch_add(bytes, Relaxed);
    }

    /// Counts `bytes` taken by actix's writer.
    fn taken(&self, bytes: usize) {
        let inner = &self.inner;
        inner.moved_at.store(inner.shared.now_ms(), Relaxed);
        self.release(bytes);
    }

    /// Forgets `bytes` that were counted as waiting (taken, or dropped unsent).
    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let inner = &self.inner;
        let had = sub_saturating(&inner.unsent, bytes);
        sub_saturating(&inner.shared.unsent_total, had.min(bytes));
        inner.room.notify_one();
        if inner.shared.server_waiters.load(Relaxed) > 0 {
            inner.shared.room.notify_waiters();
        }
    }

    /// Bytes waiting to go out to this connection.
    pub fn unsent(&self) -> usize {
        self.inner.unsent.load(Relaxed)
    }

    fn fits(&self, bytes: usize) -> (bool, bool) {
        let limits = self.inner.shared.limits;
        let unsent = self.unsent();
        // A piece larger than the whole budget still goes, alone.
        let own = unsent == 0 || unsent + bytes <= limits.per_connection;
        let total = self.inner.shared.unsent_total.load(Relaxed);
        let server = total == 0 || total + bytes <= limits.total;
        (own, server)
    }

    /// Waits until `bytes` more fit in this connection's budget, then in the server's; the
    /// caller then counts what it queues with [`Conn::queued`]. Room in its own budget depends on
    /// the client alone: one that does not make it within `send_timeout` is stalled. Room in the
    /// server's depends on the other clients, so waiting for it is not this client's fault: it
    /// is bounded by `busy_timeout` and ends as busy, not as a stall.
    pub async fn make_room(&self, bytes: usize) -> Result<(), NoRoom> {
        let limits = self.inner.shared.limits;
        tokio::time::timeout(limits.send_timeout, self.room_own(bytes))
            .await
            .map_err(|_| NoRoom::Stalled)?;
        tokio::time::timeout(limits.busy_timeout, self.room_server(bytes))
            .await
            .map_err(|_| NoRoom::ServerBusy)
    }

    async fn room_own(&self, bytes: usize) {
        loop {
            let own_room = self.inner.room.notified();
            tokio::pin!(own_room);
            own_room.as_mut().enable();
            if self.fits(bytes).0 {
                return;
            }
            own_room.await;
        }
    }

    async fn room_server(&self, bytes: usize) {
        loop {
            let server_room = self.inner.shared.room.notified();
            tokio::pin!(server_room);
            server_room.as_mut().enable();
            if self.fits(bytes).1 {
                return;
            }
            // Counted while waiting (and uncounted if the wait is cancelled), so releases wake
            // it; re-checked with the count raised, so one in between is not missed.
            let _waiting = WaitingForServer::new(&self.inner.shared.server_waiters);
            if !self.fits(bytes).1 {
                server_room.await;
            }
        }
    }

    /// Resets the connection (RST: the kernel drops what it holds for it) and makes actix drop
    /// it. Returns false if it was reset already.
    pub fn kill(&self) -> bool {
        if self.inner.closed.load(Relaxed) || self.inner.killed.swap(true, Relaxed) {
            return false;
        }
        if let Some(socket) = &self.inner.socket {
            socket.reset();
        }
        true
    }

    /// Ends the connection politely, then firmly: the server's side is shut (what was written,
    /// a close frame say, goes out and the client sees the end), and the connection is reset
    /// after `grace` whatever the client does, so nothing it still sends is read.
    pub fn finish(&self, grace: Duration) {
        if self.inner.closed.load(Relaxed) || self.inner.killed.load(Relaxed) {
            return;
        }
        if let Some(socket) = &self.inner.socket {
            socket.shut_write();
        }
        let conn = self.clone();
        actix_web::rt::spawn(async move {
            tokio::time::sleep(grace).await;
            conn.kill();
        });
    }

    /// True when the client has gone: the connection was reset or ended, or the peer closed
    /// its side (a read would see the end; what it sent is not read). For work that writes
    /// nothing for a while, a search say, and must stop when nobody waits for it.
    pub fn peer_closed(&self) -> bool {
        if self.inner.closed.load(Relaxed) || self.inner.killed.load(Relaxed) {
            return true;
        }
        self.inner
            .socket
            .as_ref()
            .is_some_and(SocketId::peer_closed)
    }

    /// True once [`Conn::kill`] was called.
    pub fn is_killed(&self) -> bool {
        self.inner.killed.load(Relaxed)
    }

    /// Waits (at most `within`) until everything queued has been taken by actix's writer, e.g. a
    /// close frame before the connection is reset.
    pub async fn flushed(&self, within: Duration) {
        let _ = tokio::time::timeout(within, async {
            loop {
                let notified = self.inner.room.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.unsent() == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        let left = self.unsent.swap(0, Relaxed);
        if left > 0 {
            sub_saturating(&self.shared.unsent_total, left);
            self.shared.room.notify_waiters();
        }
    }
}

/// One producer counted among those waiting for the server-wide budget, while it lives.
struct WaitingForServer<'a>(&'a AtomicUsize);

impl<'a> WaitingForServer<'a> {
    fn new(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Relaxed);
        WaitingForServer(waiters)
    }
}

impl Drop for WaitingForServer<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A connection's descriptor and the addresses it had when accepted.
struct SocketId {
    fd: RawFd,
    local: SocketAddr,
    peer: SocketAddr,
    /// The kernel's id of the socket (`SO_COOKIE`), unique for the life of the system: when known,
    /// it alone decides whether the descriptor still names this connection.
    cookie: Option<u64>,
}

/// The kernel's unique id of the socket behind `fd`, where the kernel has one (Linux 4.12+).
fn socket_cookie(fd: RawFd) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        const SO_COOKIE: libc::c_int = 57;
        let mut cookie: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `cookie`, which has room for them.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_COOKIE,
                (&mut cookie as *mut u64).cast(),
                &mut len,
            )
        };
        (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

impl SocketId {
    fn is_ours(&self, sock: &socket2::SockRef<'_>) -> bool {
        let same = |addr: std::io::Result<socket2::SockAddr>, expected: SocketAddr| {
            addr.ok().and_then(|a| a.as_socket()) == Some(expected)
        };
        match self.cookie {
            Some(cookie) => socket_cookie(self.fd) == Some(cookie),
            None => same(sock.local_addr(), self.local) && same(sock.peer_addr(), self.peer),
        }
    }

    /// True when the descriptor is still ours and the peer has closed its sending side or reset
    /// the connection (a peeked read sees the end, or fails with a connection error).
    fn peer_closed(&self) -> bool {
        // SAFETY: as in `reset`.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let sock = socket2::SockRef::from(&fd);
        if !self.is_ours(&sock) {
            return true;
        }
        let mut byte = [0u8; 1];
        // SAFETY: recv writes at most one byte into `byte`; MSG_PEEK leaves it in the socket.
        let got = unsafe {
            libc::recv(
                self.fd,
                byte.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match got {
            0 => true,
            n if n > 0 => false,
            _ => {
                let error = std::io::Error::last_os_error();
                !matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                )
            }
        }
    }

    /// Shuts the sending side (FIN after what is queued), if the descriptor is still ours.
    fn shut_write(&self) {
        // SAFETY: as in `reset`.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let sock = socket2::SockRef::from(&fd);
        if self.is_ours(&sock) {
            let _ = sock.shutdown(std::net::Shutdown::Write);
        }
    }

    /// Resets the socket if the descriptor still names this connection. actix owns the
    /// descriptor and may have closed it (and the number may be another connection's now): the
    /// socket's cookie tells (the kernel never reuses one), or, without one, its addresses.
    fn reset(&self) {
        // SAFETY: the descriptor is only borrowed for the calls below. If actix closed it, they fail
        // with EBADF or see another socket's cookie and do nothing. What remains is a race of
        // microseconds: actix closing it and the accept thread reusing the number between the
        // check and the reset; callers also skip connections whose actix side has ended
        // (`ConnInner::closed`), which leaves only that window.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let sock = socket2::SockRef::from(&fd);
        if self.is_ours(&sock) {
            let _ = sock.set_linger(Some(Duration::ZERO));
            let _ = sock.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Subtracts up to `n` (never below zero); returns what was there before.
fn sub_saturating(counter: &AtomicUsize, n: usize) -> usize {
    counter
        .fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)))
        .unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Finds a connection's socket: plain TCP or TLS over TCP.
pub fn tcp_socket(connection: &dyn std::any::Any) -> Option<BorrowedFd<'_>> {
    use actix_tls::accept::rustls_0_23::TlsStream;
    use actix_web::rt::net::TcpStream;
    let tcp = connection.downcast_ref::<TcpStream>().or_else(|| {
        connection
            .downcast_ref::<TlsStream<TcpStream>>()
            .map(|tls| tls.get_ref().0)
    })?;
    Some(tcp.as_fd())
}

/// Marks a response whose body is made as actix asks for it (no producer counts its bytes):
/// each piece handed over is counted as waiting until actix asks for the next one, so a client
/// that stops reading shows as stalled and is reset like any other.
#[derive(Debug, Clone, Copy)]
pub struct MadeOnDemand;

pin_project_lite::pin_project! {
    /// A response body that counts what actix takes against its connection's budget and hands
    /// it over in pieces of at most [`PIECE_BYTES`].
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        conn: Conn,
        rest: Bytes,
        // Bytes of a sized body counted as waiting and not yet taken.
        sized_left: usize,
        // For a body made on demand: whether pieces are counted until actix asks again, and the
        // last piece so counted.
        on_demand: bool,
        handed: usize,
    }

    impl<B> PinnedDrop for MeteredBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // What a producer queued but actix never took is forgotten with the connection; a
            // sized body's rest, and a piece made on demand, now.
            this.conn.release(*this.sized_left + *this.handed);
        }
    }
}

impl<B: MessageBody> MeteredBody<B> {
    /// Wraps `inner`; a sized body is counted as waiting, whole, at once. `on_demand`: see
    /// [`MadeOnDemand`].
    pub fn new(inner: B, conn: Conn, on_demand: bool) -> Self {
        let sized_left = match inner.size() {
            BodySize::Sized(n) => n as usize,
            BodySize::None | BodySize::Stream => 0,
        };
        conn.queued(sized_left);
        MeteredBody {
            inner,
            conn,
            rest: Bytes::new(),
            sized_left,
            on_demand: on_demand && sized_left == 0,
            handed: 0,
        }
    }
}

impl<B: MessageBody> MessageBody for MeteredBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        // actix asks again: the piece handed over last has gone into its write buffer.
        if *this.handed > 0 {
            this.conn.taken(std::mem::take(this.handed));
        }
        if this.rest.is_empty() {
            match this.inner.poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => *this.rest = bytes,
                other => return other,
            }
        }
        let piece = this.rest.split_to(this.rest.len().min(PIECE_BYTES));
        let len = piece.len();
        if *this.sized_left > 0 {
            let sized = len.min(*this.sized_left);
            *this.sized_left -= sized;
        }
        if *this.on_demand {
            this.conn.queued(len);
            *this.handed = len;
        } else {
            this.conn.taken(len);
        }
        Poll::Ready(Some(Ok(piece)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(per_connection: usize, total: usize) -> Connections {
        Connections::new(OutputLimits {
            per_connection,
            total,
            send_timeout: Duration::from_millis(100),
            busy_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(30),
        })
    }

    #[tokio::test]
    async fn a_producer_waits_for_room_and_goes_on_when_bytes_are_taken() {
        let conns = connections(100, 1000);
        let conn = conns.detached();
        conn.queued(80);
        assert_eq!(conns.unsent_total(), 80);
        let waiter = {
            let conn = conn.clone();
            tokio::spawn(async move { conn.make_room(40).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "80 + 40 does not fit in 100");
        conn.taken(30);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("room after 30 bytes were taken")
            .unwrap()
            .expect("room within the send timeout");
        assert_eq!(conn.unsent(), 50);
        drop(conn);
        assert_eq!(
            conns.unsent_total(),
            0,
            "a closed connection frees its count"
        );
    }

    #[tokio::test]
    async fn the_server_budget_holds_across_connections() {
        let conns = connections(100, 150);
        let a = conns.detached();
        let b = conns.detached();
        a.queued(100);
        assert!(!conns.saturated());
        b.queued(50);
        assert!(conns.saturated());
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.make_room(10).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the server budget is full");
        a.taken(60);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("room once another connection drained")
            .unwrap()
            .expect("room within the busy timeout");
    }

    #[tokio::test]
    async fn the_sweeper_resets_only_connections_whose_output_does_not_move() {
        let conns = connections(100, 1000);
        let stalled = conns.detached();
        let idle = conns.detached();
        let moving = conns.detached();
        stalled.queued(10);
        moving.queued(10);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !stalled.is_killed() && Instant::now() < deadline {
            moving.taken(1);
            moving.queued(1);
            conns.sweep();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(stalled.is_killed(), "the stalled connection was not reset");
        assert!(
            !idle.is_killed(),
            "a connection with nothing waiting is not stalled"
        );
        assert!(
            !moving.is_killed(),
            "a connection whose output moves is not stalled"
        );
        assert_eq!(conns.stalled_resets(), 1);
    }

    #[test]
    fn a_metered_body_hands_over_pieces_and_counts_them() {
        let conns = connections(1 << 20, 1 << 20);
        let conn = conns.detached();
        let body = MeteredBody::new(Bytes::from(vec![b'x'; 40_000]), conn.clone(), false);
        assert_eq!(conn.unsent(), 40_000);
        let mut body = Box::pin(body);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut sizes = Vec::new();
        while let Poll::Ready(Some(Ok(piece))) = body.as_mut().poll_next(&mut cx) {
            sizes.push(piece.len());
        }
        assert_eq!(sizes, [PIECE_BYTES, PIECE_BYTES, 40_000 - 2 * PIECE_BYTES]);
        assert_eq!(conn.unsent(), 0);
        // A body dropped half sent gives its count back.
        let mut body = Box::pin(MeteredBody::new(
            Bytes::from(vec![0; 50_000]),
            conn.clone(),
            false,
        ));
        let _ = body.as_mut().poll_next(&mut cx);
        drop(body);
        assert_eq!(conn.unsent(), 0);
        assert_eq!(conns.unsent_total(), 0);
    }

    #[test]
    fn a_body_made_on_demand_counts_each_piece_until_actix_asks_again() {
        let conns = connections(1 << 20, 1 << 20);
        let conn = conns.detached();
        let pieces = futures_util::stream::iter(
            [vec![1u8; 100], vec![2u8; 200]]
                .map(|p| Ok::<_, std::convert::Infallible>(Bytes::from(p))),
        );
        let body = actix_web::body::BodyStream::new(pieces);
        let mut body = Box::pin(MeteredBody::new(body, conn.clone(), true));
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(conn.unsent(), 0);
        let _ = body.as_mut().poll_next(&mut cx);
        assert_eq!(
            conn.unsent(),
            100,
            "the piece in actix's hands counts as waiting"
        );
        let _ = body.as_mut().poll_next(&mut cx);
        assert_eq!(
            conn.unsent(),
            200,
            "asked again: the first went, the second waits"
        );
        let _ = body.as_mut().poll_next(&mut cx);
        assert_eq!(conn.unsent(), 0, "the end: nothing waits");
        drop(body);
        assert_eq!(conns.unsent_total(), 0);
    }
}

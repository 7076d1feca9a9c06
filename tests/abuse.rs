//! Hostile input: the acceptance checks of the server's budgets. Every test runs the
//! real binary under `ulimit -v` (address space, so runaway buffering fails fast instead of
//! swapping) and `ulimit -n`, with a **canary**: a WebSocket client subscribed to another file
//! that a writer appends to about 100 times a second, each line carrying its write time, whose
//! delivery latency must stay low (p99) during the attack. Server RSS and open descriptors are
//! sampled before, during (peak) and after each attack.
//!
//! Attacks, and the bounds they check (constants below, each naming its documented bound):
//!
//! 1. **Huge declared frame**: a WebSocket text frame header declaring 2^40 bytes, then payload
//!    streamed: close 1009 long before 1 MiB past `--max-message-bytes` was sent, the TCP
//!    connection closed, RSS growth under 16 MiB.
//! 2. **Pipelined static requests never read**: 200 connections (4 KiB receive buffer) each
//!    pipeline 2 000 `GET /app.js` and never read: RSS within the per-connection output budget
//!    (`--client-buffer`, `--total-buffer`), connections closed within `--send-timeout` + a few
//!    seconds once they stop making progress.
//! 3. **Stalled readers** on `/sse` (lines full of `\r`), `/ws` and `/poll`, 50 each with a
//!    4 KiB receive buffer, backlog 10 000, a writer appending: RSS within the budget, every one
//!    dropped AND its socket closed within `--send-timeout` + a few seconds (descriptor gone, the
//!    client reads to EOF or a reset).
//! 4. **Abandoned `/follow` and `/sse`** on a quiet file (500 opens, 50 at a time, closed at
//!    once), under `ulimit -n 256`, once with default limits and once with `--max-connections
//!    20`: descriptors back to baseline within 5 s, `/follow` and `/sse` still 200, `/healthz`
//!    answers throughout.
//! 5. **Abandoned long-polls** (1 100 held polls dropped right after sending, `ulimit -n 1024`):
//!    descriptors and `polls_waiting` back to baseline within 5 s, `/healthz` answers
//!    throughout, a fresh held poll still works.
//! 6. **Stacked pacing**: a fast writer (40 000 lines/s, about 9 MB/s), a 256 KiB history, one
//!    good WebSocket reader and a new stalled reader every 250 ms for 5 s: the good reader's
//!    latency bounded (median, max), the tailer close behind the file.
//! 7. **WebSocket protocol errors** get RFC 6455 close codes, not a TCP drop: fragments adding up
//!    past the limit (1009), invalid UTF-8 (1007), RSV1 set (1002), one frame over the limit
//!    (1009).
//! 8. **A flood of 2 000 idle connections** under `ulimit -n 1024`: the server stays up,
//!    `/healthz` answers again within seconds of the flood ending, no busy loop (CPU), "Too many
//!    open files" logged a few times at most.
//!
//! After every attack: RSS back within 16 MiB of idle within 60 s, descriptors back to the
//! baseline within 5 s. Tests run one at a time (a serial guard) so that one's RSS, descriptors
//! and latency figures are not another's. Every figure is printed (`--nocapture`); a failure
//! lists every bound that broke, with expected and actual figures.

mod common;

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------------------------------------
// Bounds. RSS figures are in KiB (as /proc reports them).
// ---------------------------------------------------------------------------------------------

/// `--client-buffer` default (1 MiB): what one connection may have waiting to go out.
const CLIENT_BUFFER_KIB: u64 = 1024;
/// `--total-buffer` default (256 MiB): what the whole server may have waiting to go out.
const TOTAL_BUFFER_KIB: u64 = 256 * 1024;
/// `--max-message-bytes` default (64 KiB): the largest inbound message, so the most one
/// connection may hold of a message it is receiving.
const MAX_MESSAGE_BYTES: u64 = 64 * 1024;
/// Fixed allowance on top of the per-connection budgets (runtime, allocator, the followed
/// files' histories filling up): the "+ 32 MiB" of the RSS bound below.
const RSS_FIXED_SLACK_KIB: u64 = 32 * 1024;
/// After an attack, RSS must come back within this much of idle ("near idle")...
const RSS_IDLE_SLACK_KIB: u64 = 16 * 1024;
/// ... within this long (polled every 250 ms; a server that frees its buffers does it in
/// seconds).
const RSS_SETTLE_WITHIN: Duration = Duration::from_secs(60);
/// After an attack, open descriptors must be back to the baseline within this long (a closed
/// or dropped client's socket is closed by the server, not kept).
const FD_SETTLE_WITHIN: Duration = Duration::from_secs(5);
/// Descriptors that may come and go beside the attack: a `/healthz` or `/api/stats` request of
/// the test itself in flight when the count is read.
const FD_SLACK: usize = 2;
/// A descriptor count counts as back once it held this long (a connection the server has not
/// accepted yet is not in the count).
const FD_STABLE: Duration = Duration::from_millis(300);
/// The canary's delivery latency, p99 over the attack: an attack on one connection or file
/// must not slow the delivery of another file to another client. What this guards against
/// costs far more: a queue shared with a stalled socket holds lines for the send timeout (1 s
/// here), pacing on a stalled reader for the pace timeout (250 ms). 200 ms tells those apart
/// from the scheduling noise of a shared 2-core machine (p99 up to ~120 ms seen under three
/// parallel builds); the latency itself is measured by the benchmark (`bench/`).
const CANARY_P99: Duration = Duration::from_millis(200);
/// How fast the canary's writer appends (lines per second).
const CANARY_LINES_PER_SECOND: u64 = 100;
/// `--send-timeout` given where a test waits for a stalled client to be dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
const SEND_TIMEOUT_ARG: &str = "1s";
/// A stalled client is dropped and its socket closed within `--send-timeout` + this ("within
/// seconds"; less than actix's 5 s keep-alive, which closes some stalled connections today by
/// coincidence, not by the send timeout).
const DROP_SLACK: Duration = Duration::from_secs(3);
/// Address-space limit of the server (`ulimit -v`, KiB): runaway buffering fails fast.
const VMEM_LIMIT_KIB: u64 = 2_000_000;
/// Descriptor limit of the server (`ulimit -n`) unless a test says otherwise.
const DEFAULT_NOFILE: u32 = 512;

/// Attack 1: the declared payload length of the huge frame (2^40 bytes)...
const HUGE_FRAME_DECLARED: u64 = 1 << 40;
/// ... of which this much is streamed at most, in 64 KiB writes.
const HUGE_FRAME_STREAMED: u64 = 256 << 20;
/// The 1009 close must come before the client sent this much more than
/// `--max-message-bytes` (what the kernel's socket buffers hold counts as sent).
const HUGE_FRAME_OVERSHOOT: u64 = 1 << 20;
/// RSS growth allowed while the huge frame is refused: a message is never buffered past
/// `--max-message-bytes`.
const HUGE_FRAME_RSS_GROWTH_KIB: u64 = 16 * 1024;
/// After its close frame, the server closes the TCP connection within this long.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// Attack 2: connections, and requests pipelined on each.
const PIPELINE_CONNECTIONS: usize = 200;
const PIPELINE_REQUESTS: usize = 2000;

/// Attack 3: stalled clients per transport.
const STALLED_CLIENTS: usize = 50;
/// A stalled client's socket, read at last, ends (EOF or reset) within this long.
const STALLED_EOF_WITHIN: Duration = Duration::from_secs(10);

/// Attack 4: opens of `/follow` and `/sse`, how many at once, the descriptor limit, and the
/// `--max-connections` that makes a leaked slot show as 503.
const ABANDON_OPENS: usize = 500;
const ABANDON_CONCURRENCY: usize = 50;
const ABANDON_NOFILE: u32 = 256;
const ABANDON_MAX_CONNECTIONS: &str = "20";

/// Attack 5: abandoned held polls, and the server's descriptor limit.
const ABANDONED_POLLS: usize = 1100;
const POLL_NOFILE: u32 = 1024;
/// A fresh held poll answers within this long of the line it waits for (live delivery).
const FRESH_POLL_WITHIN: Duration = Duration::from_secs(3);

/// Attack 6: the history bound of the fast file, the writer's rate, when stalled readers join
/// and for how long.
const PACING_HISTORY_BYTES: &str = "256KiB";
const PACING_LINES_PER_SECOND: u64 = 40_000;
const PACING_JOIN_EVERY: Duration = Duration::from_millis(250);
const PACING_RUN: Duration = Duration::from_secs(5);
/// The well-behaved reader's latency: a stalled reader holds the tailer up for one pace
/// timeout at most, and stalled readers do not stack their waits.
const PACING_MEDIAN: Duration = Duration::from_millis(100);
const PACING_MAX: Duration = Duration::from_secs(1);
/// How far the tailer may be behind the file on disk at the end ("the file is the buffer", but
/// a stalled reader must not leave the tailer far behind).
const TAILER_LAG_MAX: u64 = 8 << 20;

/// Attack 8: connections opened at once, the server's descriptor limit, how long they are held.
const FLOOD_CONNECTIONS: usize = 2000;
const FLOOD_NOFILE: u32 = 1024;
const FLOOD_HOLD: Duration = Duration::from_secs(3);
/// Server CPU during the flood, as a fraction of one core: accepting is cheap, an accept loop
/// spinning on EMFILE is not.
const FLOOD_CPU_MAX: f64 = 0.3;
/// "Too many open files" may be logged this many times at most ("a few times", not at every
/// failed accept nor every retry).
const EMFILE_LOGS_MAX: usize = 5;
/// `/healthz` answers again within this long once the flood's connections are closed.
const HEALTH_RECOVERY: Duration = Duration::from_secs(3);

/// The RSS bound for an attack with `n` connections: each may have one output budget
/// waiting (all together no more than the total budget) and one inbound message, plus the fixed
/// allowance.
fn rss_budget_kib(n: usize) -> u64 {
    let n = n as u64;
    (n * CLIENT_BUFFER_KIB).min(TOTAL_BUFFER_KIB)
        + n * (MAX_MESSAGE_BYTES / 1024)
        + RSS_FIXED_SLACK_KIB
}

/// One test at a time: RSS, descriptors and latency are per machine, not per test.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Microseconds since a process-wide instant: the clock of write and receive times.
fn now_us() -> u64 {
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_micros() as u64
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP, blocking (probes) and async (attacks).
// ---------------------------------------------------------------------------------------------

/// One `GET` with `Connection: close` (so the test's own requests hold no descriptor of the
/// server afterwards); returns (status, body).
fn http_get(addr: &str, target: &str, timeout: Duration) -> Result<(u16, String), String> {
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, timeout)
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no answer within {timeout:?} ({} bytes)", buf.len())
        }
        _ => format!("read ({} bytes so far): {e}", buf.len()),
    })?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {head:?}"))?;
    Ok((status, body.to_owned()))
}

async fn get(addr: &str, target: &str, timeout: Duration) -> Result<(u16, String), String> {
    let (addr, target) = (addr.to_owned(), target.to_owned());
    tokio::task::spawn_blocking(move || http_get(&addr, &target, timeout))
        .await
        .unwrap()
}

async fn stats(addr: &str) -> Option<Value> {
    let (status, body) = get(addr, "/api/stats", Duration::from_secs(5)).await.ok()?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

async fn files(addr: &str) -> Option<Value> {
    let (status, body) = get(addr, "/api/files", Duration::from_secs(5)).await.ok()?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

/// A TCP connection with optional socket buffer sizes (set before connecting, so the window is
/// small from the start).
async fn connect(
    addr: &str,
    rcvbuf: Option<u32>,
    sndbuf: Option<u32>,
) -> std::io::Result<TcpStream> {
    let addr: std::net::SocketAddr = addr.parse().expect("server address");
    let socket = TcpSocket::new_v4()?;
    if let Some(n) = rcvbuf {
        socket.set_recv_buffer_size(n)?;
    }
    if let Some(n) = sndbuf {
        socket.set_send_buffer_size(n)?;
    }
    match tokio::time::timeout(Duration::from_secs(5), socket.connect(addr)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect took over 5 s",
        )),
    }
}

/// Reads an HTTP response head; returns its status and the bytes read after it.
async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    within: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("no status in {head:?}"))?;
            return Ok((status, buf[end + 4..].to_vec()));
        }
        match tokio::time::timeout_at(deadline, r.read(&mut chunk)).await {
            Err(_) => return Err(format!("no response head within {within:?}")),
            Ok(Ok(0)) => return Err(format!("EOF after {} bytes, no head", buf.len())),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(format!("read: {e}")),
        }
    }
}

/// How a connection ended when read to its end.
#[derive(Debug, Clone, PartialEq)]
enum Ending {
    Eof,
    Reset(String),
    StillOpen,
}

/// Reads (and discards) until EOF, an error (reset) or the deadline; returns how it ended and
/// the bytes read.
async fn read_to_end<R: AsyncRead + Unpin>(
    r: &mut R,
    deadline: tokio::time::Instant,
) -> (Ending, u64) {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match tokio::time::timeout_at(deadline, r.read(&mut chunk)).await {
            Err(_) => return (Ending::StillOpen, total),
            Ok(Ok(0)) => return (Ending::Eof, total),
            Ok(Ok(n)) => total += n as u64,
            Ok(Err(e)) => return (Ending::Reset(e.to_string()), total),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A raw WebSocket client: our own handshake and frame encoder (client frames are masked), to
// send what a well-behaved library never would.
// ---------------------------------------------------------------------------------------------

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked frame header: `first` is FIN | RSV | opcode.
fn ws_header(first: u8, len: u64) -> Vec<u8> {
    let mut h = vec![first];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= 0xffff {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&MASK);
    h
}

/// Payload bytes masked as the `offset`-th byte onwards of a frame's payload.
fn masked(payload: &[u8], offset: usize) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ MASK[(offset + i) % 4])
        .collect()
}

fn ws_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ws_header(first, payload.len() as u64);
    f.extend(masked(payload, 0));
    f
}

/// One server frame from the front of `buf`: (opcode, payload, bytes used).
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let is_masked = buf[1] & 0x80 != 0;
    let mut len = u64::from(buf[1] & 0x7f);
    let mut pos = 2;
    if len == 126 {
        len = u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?));
        pos = 4;
    } else if len == 127 {
        len = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
        pos = 10;
    }
    let key: Option<[u8; 4]> = if is_masked {
        let k = buf.get(pos..pos + 4)?.try_into().ok()?;
        pos += 4;
        Some(k)
    } else {
        None
    };
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let body = buf.get(pos..end)?;
    let payload = match key {
        Some(k) => body.iter().enumerate().map(|(i, b)| b ^ k[i % 4]).collect(),
        None => body.to_vec(),
    };
    Some((opcode, payload, end))
}

/// What ended a WebSocket connection from the client's side.
#[derive(Debug, Clone, PartialEq)]
enum Closing {
    /// A close frame, with its code if it had one.
    Frame(Option<u16>),
    /// TCP EOF without a close frame.
    Eof,
    /// A read error (reset) without a close frame.
    Error(String),
    Timeout,
}

/// Reads server frames until a close frame (other frames are skipped).
async fn read_until_close<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    within: Duration,
) -> Closing {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some((opcode, payload, used)) = parse_frame(buf) {
            buf.drain(..used);
            if opcode == OP_CLOSE {
                let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                return Closing::Frame(code);
            }
        }
        match tokio::time::timeout_at(deadline, r.read(&mut chunk)).await {
            Err(_) => return Closing::Timeout,
            Ok(Ok(0)) => return Closing::Eof,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Closing::Error(e.to_string()),
        }
    }
}

/// Reads server frames until a text frame that contains `needle`; returns it, or `None` on a
/// close, an error or the deadline.
async fn read_text_containing<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    needle: &str,
    within: Duration,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some((opcode, payload, used)) = parse_frame(buf) {
            buf.drain(..used);
            match opcode {
                OP_CLOSE => return None,
                OP_TEXT => {
                    let text = String::from_utf8_lossy(&payload).into_owned();
                    if text.contains(needle) {
                        return Some(text);
                    }
                }
                _ => {}
            }
        }
        match tokio::time::timeout_at(deadline, r.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// Opens `/ws` by hand: the upgrade request, the 101 head (what follows it is returned).
async fn raw_ws(
    addr: &str,
    rcvbuf: Option<u32>,
    sndbuf: Option<u32>,
) -> Result<(TcpStream, Vec<u8>), String> {
    let mut s = connect(addr, rcvbuf, sndbuf)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let (status, rest) = read_head(&mut s, Duration::from_secs(10)).await?;
    if status != 101 {
        return Err(format!("upgrade answered {status}"));
    }
    Ok((s, rest))
}

/// A WebSocket client that subscribes to `file` with a backlog of 10 000 and never reads again,
/// with a 4 KiB receive buffer: what it does not read stays on the server's side.
async fn stalled_ws_reader(addr: &str, file: &str) -> Result<TcpStream, String> {
    let (mut s, _) = raw_ws(addr, Some(4096), None).await?;
    let subscribe = json!({"type":"subscribe","file":file,"backlog":10000}).to_string();
    s.write_all(&ws_frame(FIN | OP_TEXT, subscribe.as_bytes()))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    Ok(s)
}

/// A plain HTTP request on a connection with a 4 KiB receive buffer, never read.
async fn stalled_http_reader(addr: &str, target: &str) -> Result<TcpStream, String> {
    let mut s = connect(addr, Some(4096), None)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Measuring: RSS and descriptor sampler, latency probes (the canary), a /healthz prober.
// ---------------------------------------------------------------------------------------------

/// Samples the server's RSS and descriptor count every 50 ms, keeping the peaks.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak_rss: Arc<AtomicU64>,
    peak_fds: Arc<AtomicU64>,
    pid: u32,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_rss = Arc::new(AtomicU64::new(0));
        let peak_fds = Arc::new(AtomicU64::new(0));
        let (s, r, f) = (stop.clone(), peak_rss.clone(), peak_fds.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Relaxed) {
                if let Some(rss) = proc_status_kib(pid, "VmRSS:") {
                    r.fetch_max(rss, Relaxed);
                }
                if let Some(fds) = fd_count(pid) {
                    f.fetch_max(fds as u64, Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler {
            stop,
            peak_rss,
            peak_fds,
            pid,
            handle: Some(handle),
        }
    }

    /// Starts a new peak from the current figures.
    fn reset(&self) {
        self.peak_rss
            .store(proc_status_kib(self.pid, "VmRSS:").unwrap_or(0), Relaxed);
        self.peak_fds
            .store(fd_count(self.pid).unwrap_or(0) as u64, Relaxed);
    }

    /// (peak RSS KiB, peak descriptors) since the last reset.
    fn peaks(&self) -> (u64, u64) {
        let (rss, fds) = (
            proc_status_kib(self.pid, "VmRSS:").unwrap_or(0),
            fd_count(self.pid).unwrap_or(0) as u64,
        );
        (
            self.peak_rss.fetch_max(rss, Relaxed).max(rss),
            self.peak_fds.fetch_max(fds, Relaxed).max(fds),
        )
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A writer appending timestamped lines to a followed file and a WebSocket reader of it, each
/// on its own thread (the reader with its own runtime, so the attack's work in the test's
/// runtime does not delay it).
struct ProbeSpec {
    /// The file's id on the server.
    id: &'static str,
    path: PathBuf,
    /// The first word of each line.
    tag: &'static str,
    lines_per_second: u64,
    /// How often the writer writes what is due.
    tick: Duration,
    /// Filler bytes per line.
    pad: usize,
}

struct Probe {
    stop_writer: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<Vec<u64>>>,
    written: Option<Vec<u64>>,
    /// `u64::MAX` while running; then the time (now_us) the reader gives up waiting.
    drain_until: Arc<AtomicU64>,
    /// Lines written, known once the writer stopped.
    expected: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    reader: Option<std::thread::JoinHandle<ReaderOutcome>>,
}

#[derive(Default)]
struct ReaderOutcome {
    /// Receive time by line index.
    recv: Vec<Option<u64>>,
    gaps: u64,
    /// Why the connection ended early, if it did.
    closed: Option<String>,
}

struct ProbeReport {
    /// Write time by line index.
    written: Vec<u64>,
    recv: Vec<Option<u64>>,
    /// When the reader stopped waiting: a line never received counts as late until then.
    end_us: u64,
    gaps: u64,
    closed: Option<String>,
}

/// Delivery latency of the lines written in a window.
struct Latency {
    n: usize,
    missing: usize,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines, p50 {}, p99 {}, max {}, {} never delivered",
            self.n,
            ms(self.p50_us),
            ms(self.p99_us),
            ms(self.max_us),
            self.missing
        )
    }
}

impl ProbeReport {
    /// Latency of the lines written in `[from_us, to_us)`; a line never delivered counts with
    /// the time it waited until the reader stopped.
    fn latency(&self, from_us: u64, to_us: u64) -> Latency {
        let mut lat = Vec::new();
        let mut missing = 0;
        for (i, &w) in self.written.iter().enumerate() {
            if w < from_us || w >= to_us {
                continue;
            }
            match self.recv.get(i).copied().flatten() {
                Some(r) => lat.push(r.saturating_sub(w)),
                None => {
                    missing += 1;
                    lat.push(self.end_us.saturating_sub(w));
                }
            }
        }
        lat.sort_unstable();
        let at = |q: f64| {
            lat.get(((lat.len().saturating_sub(1)) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        Latency {
            n: lat.len(),
            missing,
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: lat.last().copied().unwrap_or(0),
        }
    }
}

impl Probe {
    fn start(ws_url: &str, spec: ProbeSpec) -> Probe {
        let drain_until = Arc::new(AtomicU64::new(u64::MAX));
        let expected = Arc::new(AtomicU64::new(u64::MAX));
        let received = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = {
            let (url, id) = (ws_url.to_owned(), spec.id);
            let (drain_until, expected, received) =
                (drain_until.clone(), expected.clone(), received.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(probe_reader(
                    url,
                    id,
                    ready_tx,
                    drain_until,
                    expected,
                    received,
                ))
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the probe's WebSocket reader subscribed");
        let stop_writer = Arc::new(AtomicBool::new(false));
        let stop = stop_writer.clone();
        let writer = std::thread::spawn(move || {
            let mut file = open_append(&spec.path);
            let pad = "x".repeat(spec.pad);
            let started = Instant::now();
            let mut written = Vec::new();
            let burst_cap = (spec.lines_per_second / 10).max(1);
            while !stop.load(Relaxed) {
                let due = (started.elapsed().as_secs_f64() * spec.lines_per_second as f64) as u64;
                let n = due.saturating_sub(written.len() as u64).min(burst_cap);
                if n > 0 {
                    let t = now_us();
                    let mut text = String::new();
                    for _ in 0..n {
                        use std::fmt::Write as _;
                        let _ = writeln!(text, "{} {} {t} {pad}", spec.tag, written.len());
                        written.push(t);
                    }
                    file.write_all(text.as_bytes()).unwrap();
                }
                std::thread::sleep(spec.tick);
            }
            written
        });
        Probe {
            stop_writer,
            writer: Some(writer),
            written: None,
            drain_until,
            expected,
            received,
            reader: Some(reader),
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// Stops the writer (the file stops growing now); the reader goes on.
    fn stop_writer(&mut self) {
        self.stop_writer.store(true, Relaxed);
        if let Some(w) = self.writer.take() {
            let written = w.join().expect("probe writer");
            self.expected.store(written.len() as u64, Relaxed);
            self.written = Some(written);
        }
    }

    /// Stops the writer, waits (up to 2 s) for the reader to receive every line, and reports.
    fn finish(mut self) -> ProbeReport {
        self.stop_writer();
        self.drain_until.store(now_us() + 2_000_000, Relaxed);
        let outcome = self
            .reader
            .take()
            .map(|r| {
                r.join().unwrap_or_else(|_| ReaderOutcome {
                    closed: Some("the probe's reader panicked".into()),
                    ..Default::default()
                })
            })
            .unwrap_or_default();
        ProbeReport {
            written: self.written.take().unwrap_or_default(),
            recv: outcome.recv,
            end_us: now_us(),
            gaps: outcome.gaps,
            closed: outcome.closed,
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop_writer.store(true, Relaxed);
        self.drain_until.store(0, Relaxed);
    }
}

async fn probe_reader(
    url: String,
    id: &'static str,
    ready: mpsc::Sender<()>,
    drain_until: Arc<AtomicU64>,
    expected: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
) -> ReaderOutcome {
    let mut out = ReaderOutcome::default();
    let mut client = WsClient::connect_url(&url).await;
    client.subscribe_backlog(id, 0).await;
    let _ = ready.send(());
    let mut ws = client.ws;
    let mut last_ping = Instant::now();
    let mut count = 0u64;
    loop {
        if now_us() >= drain_until.load(Relaxed) || count >= expected.load(Relaxed) {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(50), ws.next()).await {
            Err(_) => {}
            Ok(None) => {
                out.closed = Some("the server ended the stream".into());
                break;
            }
            Ok(Some(Err(e))) => {
                out.closed = Some(format!("read error: {e}"));
                break;
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                out.closed = Some(format!("closed by the server: {frame:?}"));
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                let at = now_us();
                let v: Value = serde_json::from_str(&text).expect("JSON");
                if v["type"] == "gap" {
                    out.gaps += 1;
                }
                if v["type"] != "lines" || v["file"] != id {
                    continue;
                }
                for line in v["lines"].as_array().into_iter().flatten() {
                    let idx = line
                        .as_str()
                        .and_then(|l| l.split(' ').nth(1))
                        .and_then(|i| i.parse::<usize>().ok());
                    if let Some(idx) = idx {
                        if out.recv.len() <= idx {
                            out.recv.resize(idx + 1, None);
                        }
                        if out.recv[idx].is_none() {
                            out.recv[idx] = Some(at);
                            count += 1;
                        }
                    }
                }
                received.store(count, Relaxed);
            }
            Ok(Some(Ok(_))) => {}
        }
        // Any message proves the client alive (the server closes silent ones).
        if last_ping.elapsed() > Duration::from_secs(5) {
            last_ping = Instant::now();
            let ping = Message::Text(json!({"type":"ping"}).to_string().into());
            if let Err(e) = ws.send(ping).await {
                out.closed = Some(format!("ping failed: {e}"));
                break;
            }
        }
    }
    out
}

/// `/healthz` answers by the time they were asked (now_us): Ok, or what went wrong.
type HealthLog = Arc<Mutex<Vec<(u64, Result<(), String>)>>>;

/// Asks for `/healthz` every 100 ms (2 s timeout each) and records the answers.
struct HealthProbe {
    stop: Arc<AtomicBool>,
    log: HealthLog,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl HealthProbe {
    fn start(addr: &str) -> HealthProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l, addr) = (stop.clone(), log.clone(), addr.to_owned());
        let handle = std::thread::spawn(move || {
            while !s.load(Relaxed) {
                let t = now_us();
                let answer = match http_get(&addr, "/healthz", Duration::from_secs(2)) {
                    Ok((200, _)) => Ok(()),
                    Ok((status, body)) => Err(format!("status {status}: {}", body.trim())),
                    Err(e) => Err(e),
                };
                l.lock().unwrap().push((t, answer));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        HealthProbe {
            stop,
            log,
            handle: Some(handle),
        }
    }

    /// (answers, failures with their times relative to `from_us`) asked in `[from_us, to_us)`.
    fn failures(&self, from_us: u64, to_us: u64) -> (usize, Vec<String>) {
        let log = self.log.lock().unwrap();
        let window: Vec<_> = log
            .iter()
            .filter(|(t, _)| *t >= from_us && *t < to_us)
            .collect();
        let failed = window
            .iter()
            .filter_map(|(t, r)| {
                r.as_ref()
                    .err()
                    .map(|e| format!("at +{}: {e}", ms(t - from_us)))
            })
            .collect();
        (window.len(), failed)
    }
}

impl Drop for HealthProbe {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rig: a server under limits with a canary, the figures, and the checks.
// ---------------------------------------------------------------------------------------------

struct Rig {
    name: &'static str,
    _dir: tempfile::TempDir,
    server: Server,
    /// `app.log`: the file most attacks use.
    app: PathBuf,
    /// `quiet.log`: three lines, then nothing unless a test writes.
    quiet: PathBuf,
    canary: Option<Probe>,
    sampler: Sampler,
    idle_rss: u64,
    idle_fds: usize,
    attack_from_us: u64,
    attack_to_us: Option<u64>,
    peak_rss: u64,
    peak_fds: u64,
    figures: Vec<String>,
    failures: Vec<String>,
}

impl Rig {
    /// Starts tailcast (`args`, then app.log, quiet.log, canary.log) under `ulimit -v
    /// VMEM_LIMIT_KIB -n nofile`, with `app` as app.log's first content, and the canary.
    fn start(name: &'static str, args: &[&str], nofile: u32, app: &[u8]) -> Rig {
        let dir = temp_dir();
        let app_path = join(&dir, "app.log");
        let quiet = join(&dir, "quiet.log");
        let canary = join(&dir, "canary.log");
        std::fs::write(&app_path, app).unwrap();
        std::fs::write(&quiet, "quiet-0\nquiet-1\nquiet-2\n").unwrap();
        std::fs::write(&canary, "").unwrap();
        // One resource per `ulimit` (dash takes only one), and no start without the limits.
        let limits = format!("ulimit -v {VMEM_LIMIT_KIB} && ulimit -n {nofile} && exec \"$@\"");
        let server = TestServer::new()
            .env("RUST_LOG", "tailcast=info,warn")
            .prefix(&["sh", "-c", &limits, "sh"])
            .args(args)
            .args(&[path_str(&app_path), path_str(&quiet), path_str(&canary)])
            .start();
        let probe = Probe::start(
            &server.ws_url("/ws"),
            ProbeSpec {
                id: "canary.log",
                path: canary,
                tag: "canary",
                lines_per_second: CANARY_LINES_PER_SECOND,
                tick: Duration::from_millis(10),
                pad: 0,
            },
        );
        // The canary flows (a few lines delivered) before anything is measured.
        let deadline = Instant::now() + Duration::from_secs(10);
        while probe.received() < 5 {
            assert!(
                Instant::now() < deadline,
                "{name}: the canary received {} lines in 10 s before the attack",
                probe.received()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The limits hold (the pid is tailcast's: the shell `exec`s it).
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
        let limit_of = |name: &str| {
            limits
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l[name.len()..].split_whitespace().next())
                .map(str::to_owned)
        };
        assert_eq!(
            limit_of("Max open files").as_deref(),
            Some(nofile.to_string().as_str()),
            "{name}: the server's descriptor limit:\n{limits}"
        );
        assert_eq!(
            limit_of("Max address space").as_deref(),
            Some((VMEM_LIMIT_KIB * 1024).to_string().as_str()),
            "{name}: the server's address-space limit:\n{limits}"
        );
        let sampler = Sampler::start(server.pid());
        let idle_rss = server.try_rss_kib().expect("server RSS");
        let idle_fds = server.fd_count().expect("server descriptors");
        Rig {
            name,
            _dir: dir,
            server,
            app: app_path,
            quiet,
            canary: Some(probe),
            sampler,
            idle_rss,
            idle_fds,
            attack_from_us: now_us(),
            attack_to_us: None,
            peak_rss: 0,
            peak_fds: 0,
            figures: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn addr(&self) -> String {
        self.server.addr.clone()
    }

    /// The attack starts now: idle figures and peaks are taken from here.
    fn attack_begins(&mut self) {
        if let (Some(rss), Some(fds)) = (self.server.try_rss_kib(), self.server.fd_count()) {
            self.idle_rss = rss;
            self.idle_fds = fds;
        }
        self.sampler.reset();
        self.attack_from_us = now_us();
        self.figure(format!(
            "idle: RSS {}, {} descriptors",
            mib(self.idle_rss),
            self.idle_fds
        ));
    }

    /// The attack ends now: the canary's window closes, the peaks are read.
    fn attack_ends(&mut self) {
        self.attack_to_us = Some(now_us());
        let (rss, fds) = self.sampler.peaks();
        self.peak_rss = rss;
        self.peak_fds = fds;
        self.figure(format!(
            "during: peak RSS {} (+{}), peak {} descriptors",
            mib(rss),
            mib(rss.saturating_sub(self.idle_rss)),
            fds
        ));
    }

    fn figure(&mut self, text: String) {
        eprintln!("[{}] {text}", self.name);
        self.figures.push(text);
    }

    fn check(&mut self, ok: bool, text: String) {
        if !ok {
            eprintln!("[{}] FAILED: {text}", self.name);
            self.failures.push(text);
        }
    }

    /// `None` while the server runs; else how it ended.
    fn exited(&mut self) -> Option<String> {
        self.server.exit_status().map(|status| {
            // Its last words may still be in the pipe.
            std::thread::sleep(Duration::from_millis(200));
            let err = self.server.stderr_text();
            let tail: Vec<&str> = err.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!(
                "{status}; last stderr lines ({} bytes in all):\n    {}",
                err.len(),
                tail.join("\n    ")
            )
        })
    }

    /// The peak RSS growth of the attack stays within `limit_kib`.
    fn check_growth(&mut self, what: &str, limit_kib: u64) {
        let growth = self.peak_rss.saturating_sub(self.idle_rss);
        self.check(
            growth <= limit_kib,
            format!(
                "RSS growth during the attack ({what}): expected at most {}, got {} (idle {}, \
                 peak {})",
                mib(limit_kib),
                mib(growth),
                mib(self.idle_rss),
                mib(self.peak_rss)
            ),
        );
    }

    /// Waits (up to `within`) until the server holds no more descriptors than at idle (+ the
    /// slack), and still so [`FD_STABLE`] later (a connection still in the accept queue is not
    /// counted yet); returns (ok, the last count, when the count got there).
    async fn wait_fds(&mut self, within: Duration) -> (bool, Option<usize>, Duration) {
        let started = Instant::now();
        let mut since: Option<Duration> = None;
        loop {
            // A process that exited holds nothing, but that is no pass (nor is a zombie's
            // empty descriptor table).
            let fds = match self.server.exit_status() {
                Some(_) => None,
                None => self.server.fd_count(),
            };
            let low = fds.is_some_and(|n| n <= self.idle_fds + FD_SLACK);
            let at = started.elapsed();
            match (low, since) {
                (true, Some(t)) if at >= t + FD_STABLE => return (true, fds, t),
                (true, None) => since = Some(at),
                (false, _) => since = None,
                _ => {}
            }
            if fds.is_none() || (since.is_none() && at >= within) {
                return (false, fds, at);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 5 s) until the server has taken `n` more connections than at idle (the
    /// sampler's peak), so that a wait for them to go is not passed before they came.
    async fn wait_taken(&mut self, n: usize) -> bool {
        let want = (self.idle_fds + n) as u64;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.sampler.peaks().1 < want {
            if Instant::now() >= deadline {
                let peak = self.sampler.peaks().1;
                self.check(
                    false,
                    format!(
                        "the server must take the {n} connections (at least {want} descriptors)                          within 5 s, peak was {peak}"
                    ),
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// After the attack: descriptors back to the baseline within 5 s, RSS back near idle within
    /// 60 s.
    async fn check_settled(&mut self) {
        if let Some(how) = self.exited() {
            self.check(false, format!("the server exited during the attack: {how}"));
            return;
        }
        let (ok, fds, took) = self.wait_fds(FD_SETTLE_WITHIN).await;
        self.figure(format!("after: {fds:?} descriptors after {took:.1?}"));
        self.check(
            ok,
            format!(
                "descriptors after the attack: expected at most {} (idle {} + {FD_SLACK}) within \
                 {FD_SETTLE_WITHIN:?}, got {fds:?}",
                self.idle_fds + FD_SLACK,
                self.idle_fds
            ),
        );
        let limit = self.idle_rss + RSS_IDLE_SLACK_KIB;
        let started = Instant::now();
        let mut rss = self.server.try_rss_kib();
        while rss.is_some_and(|r| r > limit) && started.elapsed() < RSS_SETTLE_WITHIN {
            tokio::time::sleep(Duration::from_millis(250)).await;
            rss = self.server.try_rss_kib();
        }
        let took = started.elapsed();
        self.figure(format!(
            "after: RSS {} after {took:.1?}",
            rss.map_or("gone".into(), mib)
        ));
        self.check(
            rss.is_some_and(|r| r <= limit),
            format!(
                "RSS after the attack: expected at most {} (idle {} + {}) within \
                 {RSS_SETTLE_WITHIN:?}, got {} after {took:.1?}",
                mib(limit),
                mib(self.idle_rss),
                mib(RSS_IDLE_SLACK_KIB),
                rss.map_or("none (server gone)".into(), mib)
            ),
        );
    }

    /// The canary's latency over the attack, the server still running; panics with every
    /// broken bound.
    fn finish(mut self) {
        let to = self.attack_to_us.unwrap_or_else(now_us);
        if let Some(canary) = self.canary.take() {
            let report = canary.finish();
            let latency = report.latency(self.attack_from_us, to);
            self.figure(format!(
                "canary during the attack: {latency}; gaps {}; connection {}",
                report.gaps,
                report.closed.as_deref().unwrap_or("kept")
            ));
            self.check(
                // No canary line in the window: the attack was over within one write period.
                latency.n == 0 || latency.p99_us <= CANARY_P99.as_micros() as u64,
                format!(
                    "canary latency during the attack: expected p99 < {CANARY_P99:?}, got {latency}"
                ),
            );
            self.check(
                report.closed.is_none(),
                format!(
                    "the canary's WebSocket must stay open, but: {}",
                    report.closed.as_deref().unwrap_or("")
                ),
            );
        }
        if let Some(how) = self.exited() {
            let message = format!("the server must stay up, but exited: {how}");
            if !self.failures.iter().any(|f| f.contains("exited")) {
                self.check(false, message);
            }
        }
        if !self.failures.is_empty() {
            panic!(
                "{}: {} bound(s) broken:\n  - {}\nfigures:\n  {}",
                self.name,
                self.failures.len(),
                self.failures.join("\n  - "),
                self.figures.join("\n  ")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Huge declared frame.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn huge_declared_frame_is_closed_with_1009_before_it_is_buffered() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start("huge frame", &[], DEFAULT_NOFILE, b"");
    rig.attack_begins();
    // A small send buffer: what the client counts as sent is close to what reached the server.
    let (stream, mut buf) = raw_ws(&rig.addr(), None, Some(64 * 1024))
        .await
        .expect("WebSocket handshake");
    let (mut rd, mut wr) = stream.into_split();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (sent, stop) = (sent.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = wr
                .write_all(&ws_header(FIN | OP_TEXT, HUGE_FRAME_DECLARED))
                .await
            {
                return format!("header write failed: {e}");
            }
            // 64 KiB is a multiple of 4: every chunk is masked the same way.
            let chunk = masked(&[b' '; 64 * 1024], 0);
            while !stop.load(Relaxed) {
                let so_far = sent.load(Relaxed);
                if so_far >= HUGE_FRAME_STREAMED {
                    return format!("streamed all {so_far} bytes");
                }
                match tokio::time::timeout(Duration::from_secs(3), wr.write_all(&chunk)).await {
                    Ok(Ok(())) => sent.fetch_add(chunk.len() as u64, Relaxed),
                    Ok(Err(e)) => return format!("write failed after {so_far} bytes: {e}"),
                    Err(_) => return format!("writes stalled 3 s after {so_far} bytes (not read)"),
                };
            }
            format!(
                "stopped at the close frame, {} bytes sent",
                sent.load(Relaxed)
            )
        })
    };
    let closing = read_until_close(&mut rd, &mut buf, Duration::from_secs(30)).await;
    let sent_at_close = sent.load(Relaxed);
    stop.store(true, Relaxed);
    let tcp_end = if matches!(closing, Closing::Frame(_)) {
        let deadline = tokio::time::Instant::now() + CLOSE_WITHIN;
        Some(read_to_end(&mut rd, deadline).await.0)
    } else {
        None
    };
    let write_end = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .map(|r| r.unwrap_or_else(|e| format!("writer panicked: {e}")))
        .unwrap_or_else(|_| "writer still blocked".into());
    rig.attack_ends();
    rig.figure(format!(
        "client saw {closing:?} after sending {sent_at_close} bytes of payload; TCP then \
         {tcp_end:?}; writer: {write_end}"
    ));
    rig.check(
        closing == Closing::Frame(Some(1009)),
        format!("close frame: expected code 1009 (message too big), got {closing:?}"),
    );
    rig.check(
        sent_at_close <= MAX_MESSAGE_BYTES + HUGE_FRAME_OVERSHOOT,
        format!(
            "payload sent before the close: expected at most {} (--max-message-bytes + {}), got \
             {sent_at_close}",
            MAX_MESSAGE_BYTES + HUGE_FRAME_OVERSHOOT,
            HUGE_FRAME_OVERSHOOT
        ),
    );
    rig.check(
        tcp_end.is_none() || matches!(tcp_end, Some(Ending::Eof | Ending::Reset(_))),
        format!(
            "after the close frame the server closes the TCP connection within {CLOSE_WITHIN:?}: \
             got {tcp_end:?}"
        ),
    );
    rig.check_growth("one huge frame", HUGE_FRAME_RSS_GROWTH_KIB);
    drop(rd);
    rig.check_settled().await;
    rig.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. Pipelined static requests, never read.
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum PipelineEnd {
    /// Every request written; the connection is kept, unread.
    AllWritten,
    /// A write made no progress for a second after this many requests; kept, unread.
    Stalled(usize),
    /// The server closed it after this many requests were written.
    Closed(usize),
    ConnectFailed,
}

#[tokio::test]
async fn pipelined_requests_never_read_are_bounded_and_closed() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start(
        "pipelined",
        &["--send-timeout", SEND_TIMEOUT_ARG],
        DEFAULT_NOFILE,
        b"",
    );
    let addr = rig.addr();
    rig.attack_begins();
    const PER_WRITE: usize = 50;
    let chunk = "GET /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(PER_WRITE);
    let chunk = Arc::new(chunk.into_bytes());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut tasks = Vec::new();
    for _ in 0..PIPELINE_CONNECTIONS {
        let (addr, chunk) = (addr.clone(), chunk.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = connect(&addr, Some(4096), None).await else {
                return (None, PipelineEnd::ConnectFailed);
            };
            let mut written = 0;
            while written < PIPELINE_REQUESTS {
                let write = tokio::time::timeout(Duration::from_secs(1), s.write_all(&chunk));
                match tokio::time::timeout_at(deadline, write).await {
                    Ok(Ok(Ok(()))) => written += PER_WRITE,
                    Ok(Ok(Err(_))) => return (None, PipelineEnd::Closed(written)),
                    Ok(Err(_)) | Err(_) => return (Some(s), PipelineEnd::Stalled(written)),
                }
            }
            (Some(s), PipelineEnd::AllWritten)
        }));
    }
    let mut held = Vec::new();
    let (mut all, mut stalled, mut closed, mut failed, mut requests) = (0, 0, 0, 0, 0);
    for task in tasks {
        let (stream, end) = task.await.unwrap();
        match end {
            PipelineEnd::AllWritten => {
                all += 1;
                requests += PIPELINE_REQUESTS;
            }
            PipelineEnd::Stalled(n) => {
                stalled += 1;
                requests += n;
            }
            PipelineEnd::Closed(n) => {
                closed += 1;
                requests += n;
            }
            PipelineEnd::ConnectFailed => failed += 1,
        }
        held.extend(stream);
    }
    rig.figure(format!(
        "{PIPELINE_CONNECTIONS} connections x {PIPELINE_REQUESTS} requests: {all} wrote all, \
         {stalled} stalled, {closed} closed by the server while writing, {failed} could not \
         connect; {requests} requests written in all"
    ));
    // No more progress is possible: the server must drop them within the send timeout.
    let within = SEND_TIMEOUT + DROP_SLACK;
    let (ok, fds, took) = rig.wait_fds(within).await;
    rig.attack_ends();
    rig.figure(format!(
        "with the clients still holding their unread connections: {fds:?} descriptors {took:.1?} \
         after the writes ended"
    ));
    rig.check(
        ok,
        format!(
            "unread connections closed by the server within --send-timeout {SEND_TIMEOUT:?} + \
             {DROP_SLACK:?}: expected at most {} descriptors (idle {} + {FD_SLACK}), got {fds:?}",
            rig.idle_fds + FD_SLACK,
            rig.idle_fds
        ),
    );
    rig.check_growth(
        &format!("{PIPELINE_CONNECTIONS} connections"),
        rss_budget_kib(PIPELINE_CONNECTIONS),
    );
    drop(held);
    rig.check_settled().await;
    rig.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. Stalled readers on /sse, /ws and /poll.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Transport {
    Sse,
    Ws,
    Poll,
}

/// A line with many carriage returns (each one a `data:` line of its own over SSE).
fn cr_line(prefix: &str, i: usize) -> String {
    format!("{prefix} {i} {}", "ab\rcd\r".repeat(33))
}

async fn stalled_readers(transport: Transport, name: &'static str) {
    let _serial = SERIAL.lock().await;
    // A full history of lines to send each of them at once: 10 000 lines, about 2 MB.
    let mut initial = String::new();
    for i in 0..10_000 {
        initial.push_str(&cr_line("old", i));
        initial.push('\n');
    }
    let mut rig = Rig::start(
        name,
        &["--send-timeout", SEND_TIMEOUT_ARG],
        DEFAULT_NOFILE,
        initial.as_bytes(),
    );
    let addr = rig.addr();
    // The writer keeps the file growing (about 5 000 lines a second) for the whole attack.
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop_writer.clone(), rig.app.clone());
        std::thread::spawn(move || {
            let mut file = open_append(&path);
            let mut i = 0;
            while !stop.load(Relaxed) {
                let mut text = String::new();
                for _ in 0..100 {
                    text.push_str(&cr_line("new", i));
                    text.push('\n');
                    i += 1;
                }
                file.write_all(text.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            i
        })
    };
    rig.attack_begins();
    let mut tasks = Vec::new();
    for _ in 0..STALLED_CLIENTS {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            match transport {
                Transport::Sse => {
                    stalled_http_reader(&addr, "/sse?file=app.log&backlog=10000").await
                }
                Transport::Poll => {
                    stalled_http_reader(&addr, "/poll?file=app.log&backlog=10000").await
                }
                Transport::Ws => stalled_ws_reader(&addr, "app.log").await,
            }
        }));
    }
    let mut clients = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(s) => clients.push(s),
            Err(e) => errors.push(e),
        }
    }
    rig.figure(format!(
        "{} stalled {transport:?} clients attached, {} failed to: {:?}",
        clients.len(),
        errors.len(),
        errors.iter().take(3).collect::<Vec<_>>()
    ));
    // Each is dropped and its socket closed by the server: its descriptor goes.
    rig.wait_taken(clients.len()).await;
    let within = SEND_TIMEOUT + DROP_SLACK;
    let (ok, fds, took) = rig.wait_fds(within).await;
    let gauges = stats(&addr).await.map(|s| {
        format!(
            "ws_clients {}, stream_clients {}, polls_waiting {}, drops {}",
            s["ws_clients"], s["stream_clients"], s["polls_waiting"], s["drops"]
        )
    });
    rig.attack_ends();
    rig.figure(format!(
        "clients unread: {fds:?} descriptors {took:.1?} after the server took them; {gauges:?}"
    ));
    rig.check(
        ok,
        format!(
            "stalled {transport:?} clients dropped and their sockets closed within --send-timeout \
             {SEND_TIMEOUT:?} + {DROP_SLACK:?}: expected at most {} descriptors (idle {} + \
             {FD_SLACK}), got {fds:?}",
            rig.idle_fds + FD_SLACK,
            rig.idle_fds
        ),
    );
    rig.check_growth(
        &format!("{STALLED_CLIENTS} stalled {transport:?} clients"),
        rss_budget_kib(STALLED_CLIENTS),
    );
    stop_writer.store(true, Relaxed);
    let lines = writer.join().unwrap();
    // Read at last: what the server sent, then the end (EOF or reset), not an open socket.
    let deadline = tokio::time::Instant::now() + STALLED_EOF_WITHIN;
    let reads: Vec<_> = clients
        .into_iter()
        .map(|mut s| tokio::spawn(async move { read_to_end(&mut s, deadline).await }))
        .collect();
    let (mut eof, mut reset, mut open, mut bytes) = (0, 0, 0, 0);
    for r in reads {
        let (ending, n) = r.await.unwrap();
        bytes += n;
        match ending {
            Ending::Eof => eof += 1,
            Ending::Reset(_) => reset += 1,
            Ending::StillOpen => open += 1,
        }
    }
    rig.figure(format!(
        "writer appended {lines} lines; read at last: {eof} EOF, {reset} reset, {open} still \
         open after {STALLED_EOF_WITHIN:?} ({bytes} bytes read in all)"
    ));
    rig.check(
        open == 0,
        format!(
            "every stalled {transport:?} client's socket ends (EOF or reset) when read: expected 0 \
             still open, got {open} of {}",
            eof + reset + open
        ),
    );
    rig.check_settled().await;
    rig.finish();
}

#[tokio::test]
async fn stalled_sse_readers_are_dropped_and_their_sockets_closed() {
    stalled_readers(Transport::Sse, "stalled sse").await;
}

#[tokio::test]
async fn stalled_websocket_readers_are_dropped_and_their_sockets_closed() {
    stalled_readers(Transport::Ws, "stalled ws").await;
}

#[tokio::test]
async fn stalled_poll_readers_are_dropped_and_their_sockets_closed() {
    stalled_readers(Transport::Poll, "stalled poll").await;
}

// ---------------------------------------------------------------------------------------------
// 4. Abandoned /follow and /sse on a quiet file.
// ---------------------------------------------------------------------------------------------

async fn abandoned_streams(name: &'static str, args: &[&str]) {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start(name, args, ABANDON_NOFILE, b"");
    let addr = rig.addr();
    let health = HealthProbe::start(&addr);
    rig.attack_begins();
    let statuses = Arc::new(Mutex::new(
        std::collections::BTreeMap::<String, usize>::new(),
    ));
    for batch in 0..ABANDON_OPENS / ABANDON_CONCURRENCY {
        let mut tasks = Vec::new();
        for j in 0..ABANDON_CONCURRENCY {
            let i = batch * ABANDON_CONCURRENCY + j;
            let (addr, statuses) = (addr.clone(), statuses.clone());
            tasks.push(tokio::spawn(async move {
                let target = if i % 2 == 0 {
                    "/follow?file=quiet.log"
                } else {
                    "/sse?file=quiet.log"
                };
                let Ok(mut s) = connect(&addr, None, None).await else {
                    *statuses
                        .lock()
                        .unwrap()
                        .entry("connect failed".into())
                        .or_default() += 1;
                    return;
                };
                let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                if s.write_all(request.as_bytes()).await.is_err() {
                    return;
                }
                // Half see the answer's head first; half hang up right after asking.
                let key = if (i / 2) % 2 == 0 {
                    match read_head(&mut s, Duration::from_secs(2)).await {
                        Ok((status, _)) => format!("{status}"),
                        Err(e) => format!("no head: {e}"),
                    }
                } else {
                    "closed at once".into()
                };
                *statuses.lock().unwrap().entry(key).or_default() += 1;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    rig.figure(format!(
        "{ABANDON_OPENS} abandoned /follow and /sse: {:?}",
        statuses.lock().unwrap()
    ));
    // The file stays quiet: nothing is written that would reveal a dead client to the server.
    let (ok, fds, took) = rig.wait_fds(FD_SETTLE_WITHIN).await;
    rig.check(
        ok,
        format!(
            "descriptors after abandoned streams on a quiet file: expected at most {} (idle {} + \
             {FD_SLACK}) within {FD_SETTLE_WITHIN:?}, got {fds:?} after {took:.1?}",
            rig.idle_fds + FD_SLACK,
            rig.idle_fds
        ),
    );
    let gauge = stats(&addr).await.map(|s| s["stream_clients"].clone());
    rig.check(
        gauge == Some(json!(0)),
        format!("stream_clients after abandoned streams: expected 0, got {gauge:?}"),
    );
    for target in ["/follow?file=quiet.log", "/sse?file=quiet.log"] {
        let status = match connect(&addr, None, None).await {
            Ok(mut s) => {
                let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                let _ = s.write_all(request.as_bytes()).await;
                read_head(&mut s, Duration::from_secs(5)).await.map(|h| h.0)
            }
            Err(e) => Err(format!("connect: {e}")),
        };
        rig.check(
            status == Ok(200),
            format!("a fresh {target} after abandoned streams: expected 200, got {status:?}"),
        );
    }
    rig.attack_ends();
    let (asked, failed) = health.failures(rig.attack_from_us, now_us());
    rig.figure(format!("/healthz: {asked} asked, {} failed", failed.len()));
    rig.check(
        failed.is_empty(),
        format!(
            "/healthz answers throughout (ulimit -n {ABANDON_NOFILE}): expected 0 failures, got \
             {} of {asked}, first: {:?}",
            failed.len(),
            failed.iter().take(3).collect::<Vec<_>>()
        ),
    );
    rig.check_growth(
        &format!("{ABANDON_CONCURRENCY} connections at once"),
        rss_budget_kib(ABANDON_CONCURRENCY),
    );
    drop(health);
    rig.check_settled().await;
    rig.finish();
}

#[tokio::test]
async fn abandoned_follow_and_sse_on_a_quiet_file_free_their_descriptors() {
    abandoned_streams("abandoned streams", &[]).await;
}

#[tokio::test]
async fn abandoned_follow_and_sse_on_a_quiet_file_free_their_connection_slots() {
    abandoned_streams(
        "abandoned streams, 20 slots",
        &["--max-connections", ABANDON_MAX_CONNECTIONS],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 5. Abandoned long-polls.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn abandoned_long_polls_free_their_descriptors_and_gauge() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start("abandoned polls", &[], POLL_NOFILE, b"");
    let addr = rig.addr();
    let last_seq = files(&addr)
        .await
        .map(|f| file_entry(&f, "quiet.log")["last_seq"].as_u64().unwrap())
        .expect("/api/files");
    let idle_polls = stats(&addr).await.map(|s| s["polls_waiting"].clone());
    let health = HealthProbe::start(&addr);
    rig.attack_begins();
    let failed = Arc::new(AtomicUsize::new(0));
    let target = format!("/poll?file=quiet.log&after={last_seq}&timeout=60");
    for batch in 0..ABANDONED_POLLS.div_ceil(50) {
        let mut tasks = Vec::new();
        for _ in batch * 50..((batch + 1) * 50).min(ABANDONED_POLLS) {
            let (addr, target, failed) = (addr.clone(), target.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                match connect(&addr, None, None).await {
                    Ok(mut s) => {
                        if s.write_all(request.as_bytes()).await.is_err() {
                            failed.fetch_add(1, Relaxed);
                        }
                        // Dropped here, right after sending.
                    }
                    Err(_) => {
                        failed.fetch_add(1, Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    rig.figure(format!(
        "{ABANDONED_POLLS} held polls sent and abandoned ({} could not be sent)",
        failed.load(Relaxed)
    ));
    let (ok, fds, took) = rig.wait_fds(FD_SETTLE_WITHIN).await;
    rig.check(
        ok,
        format!(
            "descriptors after {ABANDONED_POLLS} abandoned polls: expected at most {} (idle {} + \
             {FD_SLACK}) within {FD_SETTLE_WITHIN:?}, got {fds:?} after {took:.1?}",
            rig.idle_fds + FD_SLACK,
            rig.idle_fds
        ),
    );
    let polls = wait_for(FD_SETTLE_WITHIN, || async {
        let waiting = stats(&addr).await.map(|s| s["polls_waiting"].clone());
        (waiting == idle_polls).then_some(())
    })
    .await;
    let waiting = stats(&addr).await.map(|s| s["polls_waiting"].clone());
    rig.check(
        polls.is_some(),
        format!(
            "polls_waiting after {ABANDONED_POLLS} abandoned polls: expected {idle_polls:?} within \
             {FD_SETTLE_WITHIN:?}, got {waiting:?}"
        ),
    );
    // A fresh held poll is answered by the next line.
    let fresh = {
        let (addr, target) = (
            addr.clone(),
            format!("/poll?file=quiet.log&after={last_seq}&timeout=10"),
        );
        tokio::task::spawn_blocking(move || http_get(&addr, &target, Duration::from_secs(15)))
    };
    let held = wait_for(Duration::from_secs(3), || async {
        let waiting = stats(&addr).await.map(|s| s["polls_waiting"].as_u64());
        (waiting.flatten() >= Some(1)).then_some(())
    })
    .await;
    let appended = Instant::now();
    append(&rig.quiet, b"fresh-poll-line\n");
    let answer = fresh.await.unwrap();
    let answered_after = appended.elapsed();
    rig.figure(format!(
        "fresh poll: held {}, answered {answered_after:.1?} after the line with {:?}",
        held.is_some(),
        answer.as_ref().map(|(s, b)| (s, b.len()))
    ));
    rig.check(
        matches!(&answer, Ok((200, body)) if body.contains("fresh-poll-line"))
            && answered_after <= FRESH_POLL_WITHIN,
        format!(
            "a fresh held poll after the abandoned ones: expected 200 with the new line within \
             {FRESH_POLL_WITHIN:?}, got {answer:?} after {answered_after:.1?}"
        ),
    );
    rig.attack_ends();
    let (asked, health_failed) = health.failures(rig.attack_from_us, now_us());
    rig.figure(format!(
        "/healthz: {asked} asked, {} failed",
        health_failed.len()
    ));
    rig.check(
        health_failed.is_empty(),
        format!(
            "/healthz answers throughout (ulimit -n {POLL_NOFILE}): expected 0 failures, got {} \
             of {asked}, first: {:?}",
            health_failed.len(),
            health_failed.iter().take(3).collect::<Vec<_>>()
        ),
    );
    rig.check_growth(
        &format!("{ABANDONED_POLLS} abandoned polls"),
        rss_budget_kib(ABANDONED_POLLS),
    );
    drop(health);
    rig.check_settled().await;
    rig.finish();
}

// ---------------------------------------------------------------------------------------------
// 6. Stacked pacing.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stalled_readers_joining_do_not_stack_pacing() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start(
        "stacked pacing",
        &["--history-bytes", PACING_HISTORY_BYTES],
        DEFAULT_NOFILE,
        b"",
    );
    let addr = rig.addr();
    let mut reader = Probe::start(
        &rig.server.ws_url("/ws"),
        ProbeSpec {
            id: "app.log",
            path: rig.app.clone(),
            tag: "fast",
            lines_per_second: PACING_LINES_PER_SECOND,
            tick: Duration::from_millis(1),
            pad: 200,
        },
    );
    rig.attack_begins();
    let started = tokio::time::Instant::now();
    let mut stalled = Vec::new();
    let mut join_errors = Vec::new();
    let joins = (PACING_RUN.as_millis() / PACING_JOIN_EVERY.as_millis()) as u32;
    for k in 0..joins {
        tokio::time::sleep_until(started + PACING_JOIN_EVERY * k).await;
        match stalled_ws_reader(&addr, "app.log").await {
            Ok(s) => stalled.push(s),
            Err(e) => join_errors.push(e),
        }
    }
    tokio::time::sleep_until(started + PACING_RUN).await;
    reader.stop_writer();
    // The file stops growing now: how far behind is the tailer?
    let on_disk = std::fs::metadata(&rig.app).unwrap().len();
    let read = files(&addr)
        .await
        .and_then(|f| file_entry(&f, "app.log")["size"].as_u64());
    let window_end = now_us();
    let report = reader.finish();
    let latency = report.latency(rig.attack_from_us, window_end);
    rig.attack_ends();
    let lag = read.map(|r| on_disk.saturating_sub(r));
    rig.figure(format!(
        "{} stalled readers joined ({} failed: {:?}); file {on_disk} bytes on disk, tailer at \
         {read:?} (lag {lag:?}); the good reader: {latency}; gaps {}; connection {}",
        stalled.len(),
        join_errors.len(),
        join_errors.first(),
        report.gaps,
        report.closed.as_deref().unwrap_or("kept")
    ));
    rig.check(
        latency.n > 0 && latency.p50_us <= PACING_MEDIAN.as_micros() as u64,
        format!("the good reader's median latency: expected < {PACING_MEDIAN:?}, got {latency}"),
    );
    rig.check(
        latency.n > 0 && latency.max_us <= PACING_MAX.as_micros() as u64,
        format!("the good reader's max latency: expected < {PACING_MAX:?}, got {latency}"),
    );
    rig.check(
        lag.is_some_and(|l| l <= TAILER_LAG_MAX),
        format!(
            "tailer lag behind the file at the end: expected at most {TAILER_LAG_MAX} bytes, got \
             {lag:?} ({on_disk} on disk, {read:?} read)"
        ),
    );
    rig.check_growth(
        &format!("{} connections", stalled.len() + 1),
        rss_budget_kib(stalled.len() + 1),
    );
    drop(stalled);
    rig.check_settled().await;
    rig.finish();
}

// ---------------------------------------------------------------------------------------------
// 7. WebSocket protocol errors get close codes.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn websocket_protocol_errors_get_rfc6455_close_codes() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start("protocol errors", &[], DEFAULT_NOFILE, b"");
    let addr = rig.addr();
    rig.attack_begins();
    let max = MAX_MESSAGE_BYTES as usize;
    // The control: the same encoder's well-formed fragmented message is understood (so a close
    // below is about the error, not about this client).
    match raw_ws(&addr, None, None).await {
        Ok((mut s, mut buf)) => {
            let mut ping = ws_frame(OP_TEXT, br#"{"type":"#);
            ping.extend(ws_frame(FIN | OP_CONTINUATION, br#""ping"}"#));
            let _ = s.write_all(&ping).await;
            let pong =
                read_text_containing(&mut s, &mut buf, "pong", Duration::from_secs(10)).await;
            rig.figure(format!("control: a fragmented ping got {pong:?}"));
            rig.check(
                pong.is_some(),
                "control: a well-formed fragmented ping must get a pong".into(),
            );
        }
        Err(e) => rig.check(false, format!("control: WebSocket handshake failed: {e}")),
    }
    // (a) 8 fragments of 16 KiB: each under the limit, 128 KiB in all.
    let mut fragmented = ws_frame(OP_TEXT, &vec![b'a'; 16 * 1024]);
    for _ in 0..6 {
        fragmented.extend(ws_frame(OP_CONTINUATION, &vec![b'a'; 16 * 1024]));
    }
    fragmented.extend(ws_frame(FIN | OP_CONTINUATION, &vec![b'a'; 16 * 1024]));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("fragments adding up past the limit", fragmented, 1009),
        (
            "a text frame with invalid UTF-8",
            ws_frame(FIN | OP_TEXT, &[b'{', 0xff, 0xfe, b'}']),
            1007,
        ),
        (
            "a frame with RSV1 set",
            ws_frame(FIN | RSV1 | OP_TEXT, br#"{"type":"ping"}"#),
            1002,
        ),
        (
            "one frame over the limit",
            ws_frame(FIN | OP_TEXT, &vec![b' '; max + 1]),
            1009,
        ),
    ];
    for (what, bytes, code) in cases {
        let (mut s, mut buf) = match raw_ws(&addr, None, None).await {
            Ok(c) => c,
            Err(e) => {
                rig.check(false, format!("{what}: WebSocket handshake failed: {e}"));
                continue;
            }
        };
        // The server may close before taking it all: a failed write is fine.
        let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(&bytes)).await;
        let closing = read_until_close(&mut s, &mut buf, Duration::from_secs(10)).await;
        let tcp = if matches!(closing, Closing::Frame(_)) {
            let deadline = tokio::time::Instant::now() + CLOSE_WITHIN;
            Some(read_to_end(&mut s, deadline).await.0)
        } else {
            None
        };
        rig.figure(format!("{what}: {closing:?}, then TCP {tcp:?}"));
        rig.check(
            closing == Closing::Frame(Some(code)),
            format!("{what}: expected a close frame with code {code}, got {closing:?}"),
        );
        rig.check(
            closing != Closing::Frame(Some(code))
                || matches!(tcp, Some(Ending::Eof | Ending::Reset(_))),
            format!(
                "{what}: after the close frame the server closes the TCP connection within \
                 {CLOSE_WITHIN:?}, got {tcp:?}"
            ),
        );
    }
    rig.attack_ends();
    rig.check_growth("one connection at a time", rss_budget_kib(1));
    rig.check_settled().await;
    rig.finish();
}

// ---------------------------------------------------------------------------------------------
// 8. A flood of new connections.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_flood_of_idle_connections_is_survived_without_a_busy_loop() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start("flood", &[], FLOOD_NOFILE, b"");
    let addr = rig.addr();
    let health = HealthProbe::start(&addr);
    let pid = rig.server.pid();
    rig.attack_begins();
    let cpu_before = cpu_ticks(pid).unwrap_or(0);
    let flood_started = Instant::now();
    let tasks: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let addr: std::net::SocketAddr = addr.parse().unwrap();
                tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr)).await
            })
        })
        .collect();
    let mut held = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Ok(s)) => held.push(s),
            _ => failed += 1,
        }
    }
    let connected_after = flood_started.elapsed();
    // Held idle: pacing the flood, not waiting for an outcome.
    tokio::time::sleep(FLOOD_HOLD).await;
    let cpu_after = cpu_ticks(pid).unwrap_or(cpu_before);
    let flood_time = flood_started.elapsed();
    let cpu = (cpu_after - cpu_before) as f64 / 100.0 / flood_time.as_secs_f64();
    let peak_fds_during = rig.sampler.peaks().1;
    let flood_end_us = now_us();
    drop(held);
    let released = Instant::now();
    let mut recovered = None;
    let mut last = Err(String::from("not asked"));
    while released.elapsed() < HEALTH_RECOVERY {
        last = http_get(&addr, "/healthz", Duration::from_secs(1));
        if matches!(last, Ok((200, _))) {
            recovered = Some(released.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.attack_ends();
    let (asked, health_failed) = health.failures(rig.attack_from_us, flood_end_us);
    let emfile = rig
        .server
        .stderr_text()
        .matches("Too many open files")
        .count();
    rig.figure(format!(
        "{} of {FLOOD_CONNECTIONS} connections opened in {connected_after:.1?} ({failed} failed), \
         held {FLOOD_HOLD:?}; server peak {peak_fds_during} descriptors; CPU {:.0}% of a core \
         over {flood_time:.1?}; /healthz during the flood: {} of {asked} failed; after release: \
         {recovered:?}; \"Too many open files\" logged {emfile} times",
        FLOOD_CONNECTIONS - failed,
        cpu * 100.0,
        health_failed.len()
    ));
    rig.check(
        recovered.is_some(),
        format!(
            "/healthz once the flood's connections closed: expected 200 within \
             {HEALTH_RECOVERY:?}, got {last:?}"
        ),
    );
    rig.check(
        cpu <= FLOOD_CPU_MAX,
        format!(
            "server CPU during the flood: expected at most {:.0}% of a core, got {:.0}%",
            FLOOD_CPU_MAX * 100.0,
            cpu * 100.0
        ),
    );
    rig.check(
        emfile <= EMFILE_LOGS_MAX,
        format!(
            "\"Too many open files\" in the log: expected at most {EMFILE_LOGS_MAX} times, got \
             {emfile}"
        ),
    );
    rig.check_growth(
        &format!("{FLOOD_CONNECTIONS} idle connections"),
        rss_budget_kib(FLOOD_CONNECTIONS),
    );
    drop(health);
    rig.check_settled().await;
    rig.finish();
}

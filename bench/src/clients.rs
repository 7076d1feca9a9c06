//! Client processes: `ws` (tailcast WebSocket: data, idle and stalled connections), `poll`
//! (held HTTP long-polls, one shot or following), and `pipe` (lines on stdin, for `tail -F`).
//!
//! Each prints `READY ok failed` once every connection is set up, then `RESULT {json}` (a
//! [`ClientReport`]) when it stops: when every data connection has its expected lines, after
//! `--idle` seconds without a line, at `--deadline`, or when its stdin closes.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{now_ns, raise_nofile, self_cpu_s, Args, ClientReport, ConnStats, Hist};

/// Shared by the connections of one client process.
struct Shared {
    ready: AtomicUsize,
    failed: AtomicUsize,
    done: AtomicUsize,
    activity_ns: AtomicU64,
    connect: Semaphore,
}

impl Shared {
    /// Counters at zero, and `--connect-concurrency` (128) connections opened at once.
    fn new(args: &Args) -> Self {
        Shared {
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            activity_ns: AtomicU64::new(0),
            connect: Semaphore::new(args.num("--connect-concurrency", 128) as usize),
        }
    }
}

fn stdin_closed_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        f.store(true, Relaxed);
    });
    flag
}

fn runtime(args: &Args) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.num("--threads", 2) as usize)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Waits for the end condition; see the module documentation.
async fn supervise(
    shared: &Shared,
    data_conns: usize,
    total: usize,
    expected: u64,
    hold: bool,
    idle: Duration,
    deadline: Instant,
) {
    let stdin_closed = stdin_closed_flag();
    let mut ready_at: Option<u64> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = now_ns();
        if ready_at.is_none() {
            let (ok, failed) = (shared.ready.load(Relaxed), shared.failed.load(Relaxed));
            if ok + failed >= total {
                println!("READY {ok} {failed}");
                let _ = std::io::stdout().flush();
                ready_at = Some(now);
            }
        }
        if stdin_closed.load(Relaxed) || Instant::now() >= deadline {
            return;
        }
        if let Some(ready_ns) = ready_at {
            if hold {
                continue;
            }
            if expected > 0 && shared.done.load(Relaxed) >= data_conns {
                return;
            }
            let last = shared.activity_ns.load(Relaxed).max(ready_ns);
            if now.saturating_sub(last) > idle.as_nanos() as u64 {
                return;
            }
        }
    }
}

fn report(conns: Vec<ConnStats>) {
    let mut hist = Hist::default();
    for c in &conns {
        hist.merge(&c.hist);
    }
    let connect_failures = conns
        .iter()
        .filter(|c| c.error.as_deref().is_some_and(|e| e.starts_with("connect")))
        .count() as u64;
    let rep = ClientReport {
        conns,
        hist,
        cpu_s: self_cpu_s(),
        connect_failures,
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "RESULT {}", serde_json::to_string(&rep).unwrap());
    let _ = out.flush();
}

// ---------------------------------------------------------------------------------------------
// WebSocket

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    #[serde(default, borrow)]
    lines: Vec<&'a str>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    from: u64,
    #[serde(default)]
    to: u64,
}

struct WsCfg {
    addr: String,
    url: String,
    subscribe: String,
    expected: u64,
    hold: bool,
    /// Reconnect with `after` = last server seq at random times (soak).
    reconnect_ms: u64,
    /// frontail: socket.io 2 (engine.io 3) over WebSocket, joining this namespace.
    socketio_ns: Option<String>,
}

pub fn ws_main(args: Args) {
    raise_nofile();
    let port = args.num("--port", 0);
    let file = args.str("--file", "bench.log");
    let backlog = args.num("--backlog", 0);
    let socketio_ns = args.get("--socketio-ns").map(str::to_owned);
    let cfg = Arc::new(WsCfg {
        addr: format!("127.0.0.1:{port}"),
        url: match socketio_ns {
            Some(_) => format!("ws://127.0.0.1:{port}/socket.io/?EIO=3&transport=websocket"),
            None => format!("ws://127.0.0.1:{port}/ws"),
        },
        socketio_ns,
        subscribe: format!(r#"{{"type":"subscribe","file":"{file}","backlog":{backlog}}}"#),
        expected: args.num("--expected", 0),
        hold: args.flag("--hold"),
        reconnect_ms: args.num("--reconnect-ms", 0),
    });
    let conns = args.num("--conns", 1) as usize;
    let stalled = args.num("--stalled", 0) as usize;
    let idle = Duration::from_secs_f64(args.f64("--idle", 5.0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.f64("--deadline", 120.0));
    let shared = Arc::new(Shared::new(&args));
    let rt = runtime(&args);
    rt.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for i in 0..conns {
            let (cfg, shared, stop) = (cfg.clone(), shared.clone(), stop_rx.clone());
            tasks.push(tokio::spawn(ws_conn(cfg, shared, stop, i as u64)));
        }
        let mut stalled_tasks = Vec::new();
        for _ in 0..stalled {
            let (cfg, shared, stop) = (cfg.clone(), shared.clone(), stop_rx.clone());
            stalled_tasks.push(tokio::spawn(ws_stalled(cfg, shared, stop)));
        }
        supervise(
            &shared,
            conns,
            conns + stalled,
            cfg.expected,
            cfg.hold,
            idle,
            deadline,
        )
        .await;
        let _ = stop_tx.send(true);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_default());
        }
        report(out);
    });
    std::process::exit(0);
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn ws_connect(cfg: &WsCfg, shared: &Shared, small_rcvbuf: bool) -> Result<Ws, String> {
    let _permit = shared.connect.acquire().await.map_err(|e| e.to_string())?;
    let addr: std::net::SocketAddr = cfg.addr.parse().map_err(|e| format!("{e}"))?;
    let sock = TcpSocket::new_v4().map_err(|e| format!("connect: {e}"))?;
    if small_rcvbuf {
        let _ = sock.set_recv_buffer_size(4096);
    }
    let tcp = sock
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async(cfg.url.as_str(), tcp),
    )
    .await
    .map_err(|_| "connect: handshake timeout".to_string())?
    .map_err(|e| format!("connect: handshake: {e}"))?;
    Ok(ws)
}

/// Reads the hello and subscribes.
async fn ws_subscribe(ws: &mut Ws, subscribe: &str) -> Result<(), String> {
    if let Some(ns) = subscribe.strip_prefix("socket.io:") {
        // engine.io open packet `0{...}`, then join the namespace and wait for its `40/NS,`.
        let joined = format!("40/{ns},");
        let mut sent = false;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    if t.starts_with('0') && !sent {
                        ws.send(Message::text(joined.clone()))
                            .await
                            .map_err(|e| format!("connect: join: {e}"))?;
                        sent = true;
                    } else if t.as_str() == joined {
                        return Ok(());
                    }
                }
                other => return Err(format!("connect: socket.io: {other:?}")),
            }
        }
    }
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"hello\"") => {}
        other => return Err(format!("connect: no hello: {other:?}")),
    }
    ws.send(Message::text(subscribe))
        .await
        .map_err(|e| format!("connect: subscribe: {e}"))
}

async fn ws_conn(
    cfg: Arc<WsCfg>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    salt: u64,
) -> ConnStats {
    let mut st = ConnStats::default();
    let mut ws = match ws_connect(&cfg, &shared, false).await {
        Ok(ws) => ws,
        Err(e) => {
            shared.failed.fetch_add(1, Relaxed);
            st.error = Some(e);
            return st;
        }
    };
    let subscribe = match &cfg.socketio_ns {
        Some(ns) => format!("socket.io:{ns}"),
        None => cfg.subscribe.clone(),
    };
    if let Err(e) = ws_subscribe(&mut ws, &subscribe).await {
        shared.failed.fetch_add(1, Relaxed);
        st.error = Some(e);
        return st;
    }
    shared.ready.fetch_add(1, Relaxed);
    if let Some(ns) = &cfg.socketio_ns {
        return socketio_read(ws, st, &shared, stop, cfg.expected, &format!("42/{ns},")).await;
    }
    // Server seq of the next line expected (for resume after a reconnect).
    let mut next_server_seq = 0u64;
    let mut rng = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next_reconnect = reconnect_at(cfg.reconnect_ms, &mut rng);
    let mut finished = false;
    loop {
        let msg = tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = sleep_opt(next_reconnect) => {
                // Soak: drop the connection and resume from the last seq received.
                drop(ws);
                let sub = format!(
                    r#"{{"type":"subscribe","file":"{}","after":{}}}"#,
                    file_of(&cfg.subscribe),
                    next_server_seq.saturating_sub(1)
                );
                loop {
                    if *stop.borrow() { return st; }
                    match ws_connect(&cfg, &shared, false).await {
                        Ok(mut w) => match ws_subscribe(&mut w, &sub).await {
                            Ok(()) => { ws = w; break; }
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        },
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                st.reconnects += 1;
                next_reconnect = reconnect_at(cfg.reconnect_ms, &mut rng);
                continue;
            }
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(
                Message::Ping(_) | Message::Pong(_) | Message::Binary(_) | Message::Frame(_),
            )) => continue,
            other => {
                st.error = Some(match other {
                    Some(Ok(Message::Close(c))) => format!("server closed: {c:?}"),
                    Some(Err(e)) => format!("read: {e}"),
                    _ => "server closed the connection".into(),
                });
                if cfg.reconnect_ms > 0 {
                    // Soak: a lost connection is just an early reconnect.
                    next_reconnect = Some(tokio::time::Instant::now());
                    continue;
                }
                break;
            }
        };
        let now = now_ns();
        shared.activity_ns.store(now, Relaxed);
        match serde_json::from_str::<Frame>(text.as_str()) {
            Ok(f) if f.ty == "lines" => {
                for l in &f.lines {
                    st.line(l.as_bytes(), now);
                }
                next_server_seq = f.seq + f.lines.len() as u64;
            }
            Ok(f) if f.ty == "gap" => {
                st.gaps += 1;
                st.gap_lines += f.to.saturating_sub(f.from) + 1;
                next_server_seq = next_server_seq.max(f.to + 1);
            }
            Ok(f) if f.ty == "ping" => {
                let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
            }
            Ok(_) => {}
            Err(_) => {
                // Escaped strings cannot be borrowed: take the slow path.
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(text.as_str()) {
                    if v["type"] == "lines" {
                        let lines = v["lines"].as_array().cloned().unwrap_or_default();
                        for l in &lines {
                            st.line(l.as_str().unwrap_or("").as_bytes(), now);
                        }
                        next_server_seq = v["seq"].as_u64().unwrap_or(0) + lines.len() as u64;
                    }
                }
            }
        }
        if !finished && cfg.expected > 0 && st.distinct >= cfg.expected {
            finished = true;
            shared.done.fetch_add(1, Relaxed);
            if !cfg.hold {
                break;
            }
        }
    }
    st
}

/// frontail sends one socket.io event per line: `42/NS,["line","..."]`. engine.io 3 wants a
/// client ping (`2`) every pingInterval (25 s).
async fn socketio_read(
    mut ws: Ws,
    mut st: ConnStats,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
    expected: u64,
    event_prefix: &str,
) -> ConnStats {
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    ping.tick().await;
    loop {
        let msg = tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = ping.tick() => {
                let _ = ws.send(Message::text("2")).await;
                continue;
            }
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(c))) => {
                st.error = Some(format!("server closed: {c:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                st.error = Some(format!("read: {e}"));
                break;
            }
            None => {
                st.error = Some("server closed the connection".into());
                break;
            }
        };
        let now = now_ns();
        shared.activity_ns.store(now, Relaxed);
        let Some(payload) = text.as_str().strip_prefix(event_prefix) else {
            continue;
        };
        match serde_json::from_str::<(&str, &str)>(payload) {
            Ok(("line", line)) => st.line(line.as_bytes(), now),
            Ok(_) => {}
            Err(_) => {
                if let Ok((name, line)) = serde_json::from_str::<(String, String)>(payload) {
                    if name == "line" {
                        st.line(line.as_bytes(), now);
                    }
                }
            }
        }
        if expected > 0 && st.distinct >= expected {
            shared.done.fetch_add(1, Relaxed);
            break;
        }
    }
    st
}

fn file_of(subscribe: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(subscribe).unwrap_or_default();
    v["file"].as_str().unwrap_or("").to_owned()
}

fn reconnect_at(mean_ms: u64, rng: &mut u64) -> Option<tokio::time::Instant> {
    if mean_ms == 0 {
        return None;
    }
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let ms = *rng % (2 * mean_ms) + 1;
    Some(tokio::time::Instant::now() + Duration::from_millis(ms))
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A client that subscribes and then never reads again (tiny receive buffer).
async fn ws_stalled(cfg: Arc<WsCfg>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let ws = match ws_connect(&cfg, &shared, true).await {
        Ok(mut ws) => match ws_subscribe(&mut ws, &cfg.subscribe).await {
            Ok(()) => ws,
            Err(_) => {
                shared.failed.fetch_add(1, Relaxed);
                return;
            }
        },
        Err(_) => {
            shared.failed.fetch_add(1, Relaxed);
            return;
        }
    };
    shared.ready.fetch_add(1, Relaxed);
    let _ = stop.changed().await;
    drop(ws);
}

// ---------------------------------------------------------------------------------------------
// Long-poll

struct PollCfg {
    addr: String,
    file: String,
    after: u64,
    timeout_s: u64,
    expected: u64,
    follow: bool,
}

pub fn poll_main(args: Args) {
    raise_nofile();
    let port = args.num("--port", 0);
    let cfg = Arc::new(PollCfg {
        addr: format!("127.0.0.1:{port}"),
        file: args.str("--file", "bench.log"),
        after: args.num("--after", 0),
        timeout_s: args.num("--timeout", 30),
        expected: args.num("--expected", 1),
        follow: args.flag("--follow"),
    });
    let conns = args.num("--conns", 1) as usize;
    let idle = Duration::from_secs_f64(args.f64("--idle", 5.0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.f64("--deadline", 60.0));
    let hold = args.flag("--hold");
    let shared = Arc::new(Shared::new(&args));
    let rt = runtime(&args);
    rt.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let tasks: Vec<_> = (0..conns)
            .map(|_| tokio::spawn(poll_conn(cfg.clone(), shared.clone(), stop_rx.clone())))
            .collect();
        supervise(&shared, conns, conns, cfg.expected, hold, idle, deadline).await;
        let _ = stop_tx.send(true);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_default());
        }
        report(out);
    });
    std::process::exit(0);
}

#[derive(Deserialize)]
struct PollBody<'a> {
    #[serde(default, borrow)]
    lines: Vec<&'a str>,
    #[serde(default)]
    last_seq: u64,
    #[serde(default)]
    gap: Option<GapBody>,
}

#[derive(Deserialize)]
struct GapBody {
    from: u64,
    to: u64,
}

async fn poll_conn(
    cfg: Arc<PollCfg>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> ConnStats {
    let mut st = ConnStats::default();
    let mut tcp = {
        let _permit = shared.connect.acquire().await.unwrap();
        match TcpStream::connect(&cfg.addr).await {
            Ok(t) => t,
            Err(e) => {
                shared.failed.fetch_add(1, Relaxed);
                st.error = Some(format!("connect: {e}"));
                return st;
            }
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut after = cfg.after;
    let mut first = true;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let req = format!(
            "GET /poll?file={}&after={after}&timeout={}&max=100000 HTTP/1.1\r\nHost: {}\r\n\r\n",
            cfg.file, cfg.timeout_s, cfg.addr
        );
        if let Err(e) = tcp.write_all(req.as_bytes()).await {
            st.error = Some(format!("write: {e}"));
            if first {
                shared.failed.fetch_add(1, Relaxed);
            }
            return st;
        }
        if first {
            shared.ready.fetch_add(1, Relaxed);
            first = false;
        }
        buf.clear();
        let body = tokio::select! {
            biased;
            _ = stop.changed() => return st,
            r = read_response(&mut tcp, &mut buf) => match r {
                Ok(b) => b,
                Err(e) => { st.error = Some(e); return st; }
            },
        };
        let now = now_ns();
        shared.activity_ns.store(now, Relaxed);
        match serde_json::from_slice::<PollBody>(&buf[body..]) {
            Ok(b) => {
                for l in &b.lines {
                    st.line(l.as_bytes(), now);
                }
                if let Some(g) = b.gap {
                    st.gaps += 1;
                    st.gap_lines += g.to.saturating_sub(g.from) + 1;
                }
                after = b.last_seq;
            }
            Err(e) => {
                st.error = Some(format!(
                    "bad answer: {e}: {}",
                    String::from_utf8_lossy(&buf[..buf.len().min(300)])
                ));
                return st;
            }
        }
        if cfg.expected > 0 && st.distinct >= cfg.expected {
            shared.done.fetch_add(1, Relaxed);
            return st;
        }
        if !cfg.follow && st.received > 0 {
            shared.done.fetch_add(1, Relaxed);
            return st;
        }
    }
}

/// Reads one HTTP/1.1 response with a Content-Length into `buf`; returns where the body starts.
async fn read_response(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 16384];
    loop {
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(h) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(format!("status: {}", head.lines().next().unwrap_or("")));
            }
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("no content-length")?;
            let body = h + 4;
            while buf.len() < body + len {
                let n = tcp
                    .read(&mut chunk)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("server closed mid-body".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(body);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Pipe

pub fn pipe_main(args: Args) {
    let expected = args.num("--expected", 0);
    let idle = Duration::from_secs_f64(args.f64("--idle", 5.0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.f64("--deadline", 120.0));
    // One reader per `tail`: fd 0 alone, or `--fds N` descriptors from 3 (scenario c's 100
    // `tail` processes, one pipe each, as the harness placed them).
    let fds: Vec<i32> = match args.num("--fds", 0) {
        0 => vec![0],
        n => (3..3 + n as i32).collect(),
    };
    println!("READY {} 0", fds.len());
    let _ = std::io::stdout().flush();
    let mut stats: Vec<ConnStats> = fds.iter().map(|_| ConnStats::default()).collect();
    let mut carries: Vec<Vec<u8>> = fds.iter().map(|_| Vec::new()).collect();
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![0u8; 1 << 20];
    let mut last = Instant::now();
    let mut open = fds.len();
    while open > 0 {
        if Instant::now() >= deadline || last.elapsed() > idle {
            break;
        }
        // SAFETY: `pfds` is a valid array of pollfds of its length.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 50) };
        if r <= 0 {
            continue;
        }
        for (i, pfd) in pfds.iter_mut().enumerate() {
            if pfd.fd < 0 || pfd.revents == 0 {
                continue;
            }
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::read(pfd.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                pfd.fd = -1;
                open -= 1;
                continue;
            }
            let now = now_ns();
            last = Instant::now();
            pipe_lines(&buf[..n as usize], &mut carries[i], &mut stats[i], now);
        }
        if expected > 0 && stats.iter().all(|st| st.distinct >= expected) {
            break;
        }
    }
    report(stats);
}

/// Counts the complete lines of `data` (after what `carry` kept of an earlier read) into `st`.
fn pipe_lines(mut data: &[u8], carry: &mut Vec<u8>, st: &mut ConnStats, now: u64) {
    if !carry.is_empty() {
        match data.iter().position(|b| *b == b'\n') {
            Some(i) => {
                carry.extend_from_slice(&data[..i]);
                st.line(carry, now);
                carry.clear();
                data = &data[i + 1..];
            }
            None => {
                carry.extend_from_slice(data);
                return;
            }
        }
    }
    while let Some(i) = data.iter().position(|b| *b == b'\n') {
        st.line(&data[..i], now);
        data = &data[i + 1..];
    }
    carry.extend_from_slice(data);
}

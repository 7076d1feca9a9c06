//! Streaming transports on the same cursor: Server-Sent Events (`GET /sse`) and plain text for
//! `curl -N` (`GET /follow`), like `tail -f` over HTTP.
//!
//! One task per client reads the hub through a [`LiveCursor`] and writes formatted chunks into a
//! small bounded channel that is the response body. A client that does not take a chunk within
//! `--send-timeout` is dropped; one that lags behind the hub gets a gap notice. SSE events carry
//! `id: SEQ`, so a browser's automatic reconnect (`Last-Event-ID`) resumes without loss.
//! Lines are written terminal-safe ([`terminal`]) unless the client asks for `raw=1`.

use std::io::Write as _;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::error::ApiError;
use crate::hub::{BatchSlice, Delivery, Gap, LiveCursor, Start};
use crate::stats::Gauge;
use crate::tail::FileState;

use super::access;
use super::conn::Conn;
use super::query;
use super::{terminal, AppState};

/// Chunks buffered per streaming client before sends wait.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Most lines, and about the most bytes of text, read from the hub into one chunk. A chunk is
/// read only once the body channel has room for it, so the cursor stays close to what the
/// client has taken (pacing and gaps are judged by it).
const LINES_PER_CHUNK: usize = 10_000;
const BYTES_PER_CHUNK: usize = 64 * 1024;

/// How one transport writes what the cursor delivers.
trait Format: Send + 'static {
    fn content_type(&self) -> &'static str;
    fn lines(&self, slice: &BatchSlice, out: &mut Vec<u8>);
    fn gap(&self, file: &str, gap: Gap, out: &mut Vec<u8>);
    fn state(&self, file: &str, state: FileState, out: &mut Vec<u8>);
    /// Something harmless to send on the heartbeat, if the format has one.
    fn keepalive(&self) -> Option<&'static [u8]>;
    fn preamble(&self) -> &'static [u8] {
        b""
    }
}

/// `raw`: lines byte for byte, else terminal-safe.
struct Sse {
    raw: bool,
}

impl Format for Sse {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    fn lines(&self, slice: &BatchSlice, out: &mut Vec<u8>) {
        for (i, line) in slice.lines().enumerate() {
            // Writing into a Vec cannot fail.
            let _ = writeln!(out, "id: {}", slice.first_seq() + i as u64);
            if !self.raw {
                // Terminal-safe text has no `\r` (it shows as `^M`): one `data:` field.
                out.extend_from_slice(b"data: ");
                terminal::push_line(line, out);
                out.extend_from_slice(b"\n\n");
                continue;
            }
            // A lone `\r` would end an SSE field: each piece becomes its own `data:` line (the
            // client joins them with `\n`).
            for piece in line.split('\r') {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(piece.as_bytes());
                out.push(b'\n');
            }
            out.push(b'\n');
        }
    }

    fn gap(&self, file: &str, gap: Gap, out: &mut Vec<u8>) {
        let data = serde_json::json!({"file": file, "from": gap.from, "to": gap.to});
        out.extend_from_slice(format!("event: gap\ndata: {data}\n\n").as_bytes());
    }

    fn state(&self, file: &str, state: FileState, out: &mut Vec<u8>) {
        let data = serde_json::json!({"file": file, "state": state.as_str()});
        out.extend_from_slice(format!("event: file\ndata: {data}\n\n").as_bytes());
    }

    fn keepalive(&self) -> Option<&'static [u8]> {
        Some(b": ping\n\n")
    }

    fn preamble(&self) -> &'static [u8] {
        b"retry: 2000\n\n"
    }
}

/// `raw`: lines byte for byte, else terminal-safe.
struct PlainText {
    raw: bool,
}

impl PlainText {
    fn push(&self, text: &str, out: &mut Vec<u8>) {
        if self.raw {
            out.extend_from_slice(text.as_bytes());
        } else {
            terminal::push_line(text, out);
        }
    }
}

impl Format for PlainText {
    fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }

    fn lines(&self, slice: &BatchSlice, out: &mut Vec<u8>) {
        for line in slice.lines() {
            self.push(line, out);
            out.push(b'\n');
        }
    }

    fn gap(&self, file: &str, gap: Gap, out: &mut Vec<u8>) {
        // In the style of tail's `==> file <==` headers, so a reader sees the hole. The id is a
        // file name, which whoever can create files matched by a glob chooses.
        let text = format!(
            "==> tailcast: {file}: lines {}-{} skipped <==",
            gap.from, gap.to
        );
        self.push(&text, out);
        out.push(b'\n');
    }

    fn state(&self, file: &str, state: FileState, out: &mut Vec<u8>) {
        self.push(&format!("==> tailcast: {file} {} <==", state.as_str()), out);
        out.push(b'\n');
    }

    fn keepalive(&self) -> Option<&'static [u8]> {
        None
    }
}

struct StreamParams {
    file: String,
    start: Option<Start>,
    raw: bool,
}

fn parse(req: &HttpRequest) -> Result<StreamParams, ApiError> {
    let params = query::parse(req.query_string(), |_, _| Ok(false))?;
    let mut start = params
        .after
        .map(Start::After)
        .or(params.backlog.map(Start::Backlog));
    // A reconnecting EventSource says where it stopped; that wins.
    if let Some(last) = req.headers().get("last-event-id") {
        let text = last.to_str().unwrap_or("");
        let seq = text.trim().parse().map_err(|_| ApiError::BadParam {
            name: "Last-Event-ID",
            message: format!("`{text}` is not a seq"),
        })?;
        start = Some(Start::After(seq));
    }
    Ok(StreamParams {
        file: params.file,
        start,
        raw: params.raw,
    })
}

/// `GET /sse?file=ID[&backlog=N|&after=SEQ][&raw=1]` (and `Last-Event-ID`).
pub async fn sse(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    open_stream(req, state, |raw| Sse { raw }).await
}

/// `GET /follow?file=ID[&backlog=N|&after=SEQ][&raw=1]`: lines as text, as they come.
pub async fn follow(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    open_stream(req, state, |raw| PlainText { raw }).await
}

/// `format` makes the transport's writer, given whether the client asked for `raw=1`.
async fn open_stream<F: Format>(
    req: HttpRequest,
    state: web::Data<AppState>,
    format: impl FnOnce(bool) -> F,
) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    let params = parse(&req)?;
    let format = format(params.raw);
    let ix = state
        .hub
        .lookup(&params.file)
        .ok_or_else(|| ApiError::UnknownFile(params.file.clone()))?;
    let slot = state.take_slot(Gauge::StreamClients)?;
    let max = state.config.max_backlog;
    let start = params
        .start
        .unwrap_or(Start::Backlog(state.config.default_backlog));
    let start = match start {
        Start::Backlog(n) => Start::Backlog(n.min(max)),
        after => after,
    };
    let wake = Arc::new(Notify::new());
    let cursor = match state.hub.subscribe(ix, start, wake.clone()) {
        Ok(cursor) => cursor,
        // A cursor from another server run: start at the live edge (the client sees new lines).
        Err(ahead) => state
            .hub
            .subscribe(ix, Start::After(ahead.last_seq), wake.clone())
            .map_err(|_| ApiError::Busy("the file changed during the request; retry".into()))?,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(CHUNKS_IN_FLIGHT);
    let content_type = format.content_type();
    let first = format.preamble().to_vec();
    let task_state = state.get_ref().clone();
    let conn = state.conn(&req);
    let peer = super::peer_name(&req);
    let kind = content_type.split(';').next().unwrap_or("");
    tracing::info!(%peer, kind, "stream open");
    let drain_guard = state.shutdown.guard();
    actix_web::rt::spawn(async move {
        let out = Out {
            state: task_state,
            tx,
            conn,
        };
        let reason = pump(&out, format, cursor, wake, first).await;
        if reason == TOO_SLOW {
            // Nothing more gets through: reset the connection, so its buffers go too.
            out.conn.kill();
        }
        tracing::info!(%peer, reason, "stream closed");
        drop(slot);
        drop(drain_guard);
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(ReceiverStream::new(rx)))
}

type Tx = mpsc::Sender<Result<Bytes, std::convert::Infallible>>;
type Permit<'a> = mpsc::Permit<'a, Result<Bytes, std::convert::Infallible>>;

/// Why a stream ends when its client does not keep up.
const TOO_SLOW: &str = "client too slow";

/// Where one client's chunks go: the response body, within the connection's output budget.
struct Out {
    state: AppState,
    tx: Tx,
    conn: Conn,
}

impl Out {
    /// Waits, bounded by the send timeout, until the body can take one more chunk of about
    /// [`BYTES_PER_CHUNK`] within the connection's output budget. Everything is sent through
    /// such a slot, so nothing is read from the hub for a client that cannot take it.
    async fn room(&self) -> Result<Permit<'_>, &'static str> {
        let wait = async {
            self.conn.room(BYTES_PER_CHUNK).await;
            self.tx.reserve().await
        };
        match tokio::time::timeout(self.state.config.send_timeout, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err("client gone"),
            Err(_) => {
                self.state.stats.drops.fetch_add(1, Relaxed);
                Err(TOO_SLOW)
            }
        }
    }

    /// Sends a chunk through a slot taken with [`Out::room`] (an empty chunk just gives the slot
    /// back).
    fn put(&self, slot: Permit<'_>, chunk: Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        let stats = &self.state.stats;
        stats.frames_out.fetch_add(1, Relaxed);
        stats.bytes_out.fetch_add(chunk.len() as u64, Relaxed);
        self.conn.queued(chunk.len());
        slot.send(Ok(Bytes::from(chunk)));
    }
}

async fn pump(
    out: &Out,
    format: impl Format,
    cursor: LiveCursor,
    wake: Arc<Notify>,
    first: Vec<u8>,
) -> &'static str {
    match stream_chunks(out, &format, cursor, &wake, first).await {
        Ok(()) => "shutdown",
        Err(reason) => reason,
    }
}

async fn stream_chunks(
    out: &Out,
    format: &impl Format,
    mut cursor: LiveCursor,
    wake: &Notify,
    first: Vec<u8>,
) -> Result<(), &'static str> {
    let state = &out.state;
    out.put(out.room().await?, first);
    let id = state.hub.id(cursor.file()).to_owned();
    let heartbeat = state.config.heartbeat;
    let mut tick = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let mut shutdown = state.shutdown.clone();
    // The backlog (or what follows the cursor) is read at once.
    wake.notify_one();
    loop {
        tokio::select! {
            _ = shutdown.fired() => return Ok(()),
            _ = out.tx.closed() => return Err("client gone"),
            _ = tick.tick() => {
                if let Some(keepalive) = format.keepalive() {
                    out.put(out.room().await?, keepalive.to_vec());
                }
            }
            _ = wake.notified() => {
                let slot = out.room().await?;
                let mut chunk = Vec::new();
                for delivery in cursor.read(LINES_PER_CHUNK, BYTES_PER_CHUNK) {
                    match delivery {
                        Delivery::Gap(gap) => {
                            state.stats.gaps.fetch_add(1, Relaxed);
                            format.gap(&id, gap, &mut chunk);
                        }
                        Delivery::Lines(slice) => format.lines(&slice, &mut chunk),
                        Delivery::State(file_state) => format.state(&id, file_state, &mut chunk),
                    }
                }
                let more = cursor.has_news();
                if more {
                    wake.notify_one();
                }
                out.put(slot, chunk);
                if more {
                    // A client catching up takes one chunk per turn of the worker: the other
                    // connections on this thread get theirs in between.
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

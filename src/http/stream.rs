//! Streaming transports on the same cursor: Server-Sent Events (`GET /sse`) and plain text for
//! `curl -N` (`GET /follow`), like `tail -f` over HTTP.
//!
//! One task per client reads the hub through a [`LiveCursor`] and writes formatted chunks into a
//! small bounded channel that is the response body. A client that does not take a chunk within
//! `--send-timeout` is dropped; one that lags behind the hub gets a gap notice. SSE events carry
//! `id: EPOCH-SEQ`, so a browser's automatic reconnect (`Last-Event-ID`) resumes without loss,
//! and one that reaches a restarted server is told of the reset instead of being resumed at a seq
//! of another numbering. Lines are written terminal-safe ([`terminal`]) unless the client asks
//! for `raw=1`; a line cut at `--max-line-bytes` is marked (an SSE `truncated` event after it, a
//! visible [`CUT_MARK`] on `/follow`).

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
use super::filter::{self, LineFilter};
use crate::hub::{BatchSlice, Delivery, FileIx, Gap, LiveCursor, Start};
use crate::stats::Gauge;
use crate::tail::FileState;

use super::access;
use super::conn::{Conn, NoRoom};
use super::query::{self, After, Cursor, Resume};
use super::{terminal, AppState};

/// Chunks buffered per streaming client before sends wait.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Most lines, and about the most bytes of text, read from the hub into one chunk. A chunk is
/// read only once the body channel has room for it, so the cursor stays close to what the
/// client has taken (pacing and gaps are judged by it).
const LINES_PER_CHUNK: usize = 10_000;
const BYTES_PER_CHUNK: usize = 64 * 1024;

/// What `/follow` appends to a line cut at `--max-line-bytes`: plain ASCII, so it is safe in a
/// terminal and cannot be mistaken for an escape sequence.
pub const CUT_MARK: &str = " [tailcast: line cut at --max-line-bytes]";

/// Why a stream starts somewhere other than where the client asked.
#[derive(Debug, Clone, Copy)]
struct ResetNotice {
    /// The server's epoch: the numbering from now on.
    epoch: u64,
    /// The epoch the client's cursor named (the current one when the cursor was ahead).
    from_epoch: u64,
    /// `epoch` or `cursor_ahead`.
    reason: &'static str,
    /// The position the stream starts from (the seq before its first line).
    seq: u64,
}

/// Where the client is in each file of the stream: what an SSE `id:` states. One file's is
/// `EPOCH-SEQ`; several files' `EPOCH-ID:SEQ,ID:SEQ` (see `query::FileCursors`).
struct Positions {
    epoch: u64,
    /// The files' ids; empty for a one-file stream.
    ids: Vec<String>,
    /// Per file, the last seq the client has been given (or moved past).
    seqs: Vec<u64>,
}

/// An event id with the seq of one file left out: `prefix`, the seq, `suffix`.
struct IdParts {
    prefix: String,
    suffix: String,
}

impl IdParts {
    fn write(&self, seq: u64, out: &mut Vec<u8>) {
        let _ = writeln!(out, "id: {}{seq}{}", self.prefix, self.suffix);
    }
}

impl Positions {
    /// The id of a line of file `file` with seq `seq` (the other files at their positions).
    fn parts(&self, file: usize) -> IdParts {
        let epoch = self.epoch;
        if self.ids.is_empty() {
            return IdParts {
                prefix: format!("{epoch}-"),
                suffix: String::new(),
            };
        }
        let mut prefix = format!("{epoch}-");
        let mut suffix = String::new();
        for (i, (id, seq)) in self.ids.iter().zip(&self.seqs).enumerate() {
            let into = if i <= file { &mut prefix } else { &mut suffix };
            if i > 0 {
                into.push(',');
            }
            into.push_str(&query::escape_id(id));
            into.push(':');
            if i != file {
                into.push_str(&seq.to_string());
            }
        }
        IdParts { prefix, suffix }
    }

    /// The id of where the client is now.
    fn id(&self) -> String {
        if self.ids.is_empty() {
            let seq = self.seqs.first().copied().unwrap_or_default();
            return query::qualified(self.epoch, seq);
        }
        let seqs = self
            .ids
            .iter()
            .map(String::as_str)
            .zip(self.seqs.iter().copied());
        query::qualified_many(self.epoch, seqs)
    }
}

/// How one transport writes what the cursor delivers.
trait Format: Send + 'static {
    fn content_type(&self) -> &'static str;
    fn lines(&self, file: &str, slice: &BatchSlice, ids: &IdParts, out: &mut Vec<u8>);
    fn reset(&self, file: &str, reset: ResetNotice, id: &str, out: &mut Vec<u8>);
    fn gap(&self, file: &str, gap: Gap, out: &mut Vec<u8>);
    fn state(&self, file: &str, state: FileState, out: &mut Vec<u8>);
    /// The file's unfinished last line (`None`: there is none any more). Plain text shows only
    /// whole lines.
    fn pending(&self, _file: &str, _seq: u64, _text: Option<&str>, _out: &mut Vec<u8>) {}
    /// Something harmless to send on the heartbeat, if the format has one.
    fn keepalive(&self) -> Option<&'static [u8]>;
    /// Moves the client's resume point to `id` without a line (a filter dropped the lines up
    /// to it), if the format has resume points.
    fn advance(&self, _id: &str, _out: &mut Vec<u8>) {}
    fn preamble(&self) -> &'static [u8] {
        b""
    }
}

/// `raw`: lines byte for byte, else terminal-safe; `multi`: several files, so each line event
/// is `event: line` with JSON data naming its file.
struct Sse {
    raw: bool,
    multi: bool,
}

impl Sse {
    fn data_lines(&self, line: &str, out: &mut Vec<u8>) {
        if !self.raw {
            // Terminal-safe text has no `\r` (it shows as `^M`): one `data:` field.
            out.extend_from_slice(b"data: ");
            terminal::push_line(line, out);
            out.extend_from_slice(b"\n\n");
        } else {
            // A lone `\r` would end an SSE field: each piece becomes its own `data:` line
            // (the client joins them with `\n`).
            for piece in line.split('\r') {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(piece.as_bytes());
                out.push(b'\n');
            }
            out.push(b'\n');
        }
    }

    /// A line of a many-file stream: `event: line`, data `{"file","seq","time","line"}` (the
    /// line terminal-safe unless `raw`; JSON escapes every C0 control and `\r`; `time` when the
    /// server read it, unix ms, so a client can interleave the files by it).
    fn json_line(&self, file: &str, seq: u64, time: u64, line: &str, out: &mut Vec<u8>) {
        let mut safe = Vec::new();
        let text = if self.raw {
            std::borrow::Cow::Borrowed(line)
        } else {
            terminal::push_line(line, &mut safe);
            String::from_utf8_lossy(&safe)
        };
        let data = serde_json::json!({"file": file, "seq": seq, "time": time, "line": text});
        let _ = write!(out, "event: line\ndata: {data}\n\n");
    }
}

impl Format for Sse {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    fn lines(&self, file: &str, slice: &BatchSlice, ids: &IdParts, out: &mut Vec<u8>) {
        let mut cut = slice.truncated_seqs().peekable();
        for (i, line) in slice.lines().enumerate() {
            let seq = slice.first_seq() + i as u64;
            ids.write(seq, out);
            if self.multi {
                self.json_line(file, seq, slice.time_ms(), line, out);
            } else {
                self.data_lines(line, out);
            }
            if cut.next_if_eq(&seq).is_some() {
                // EventSource hands a program only `event`, `data` and `id`: an event of its own
                // (without an id, so the resume point stays the line) is what a client can read;
                // one listening only to `message` events sees the line as before.
                if self.multi {
                    let data = serde_json::json!({"file": file, "seq": seq});
                    let _ = write!(out, "event: truncated\ndata: {data}\n\n");
                } else {
                    let _ = write!(out, "event: truncated\ndata: {{\"seq\":{seq}}}\n\n");
                }
            }
        }
    }

    fn reset(&self, file: &str, reset: ResetNotice, id: &str, out: &mut Vec<u8>) {
        let data = serde_json::json!({
            "file": file,
            "epoch": reset.epoch,
            "from_epoch": reset.from_epoch,
            "reason": reset.reason,
        });
        // Carries the id of where the stream starts, so a reconnect from here is not a reset
        // again even when no line follows.
        out.extend_from_slice(format!("event: reset\nid: {id}\ndata: {data}\n\n").as_bytes());
    }

    fn gap(&self, file: &str, gap: Gap, out: &mut Vec<u8>) {
        let data = serde_json::json!({"file": file, "from": gap.from, "to": gap.to});
        out.extend_from_slice(format!("event: gap\ndata: {data}\n\n").as_bytes());
    }

    fn state(&self, file: &str, state: FileState, out: &mut Vec<u8>) {
        let mut data = serde_json::json!({"file": file, "state": state.as_str()});
        if let Some(code) = state.exit_code() {
            data["code"] = code.into();
        }
        if let Some(signal) = state.exit_signal() {
            data["signal"] = signal.into();
        }
        out.extend_from_slice(format!("event: file\ndata: {data}\n\n").as_bytes());
    }

    fn pending(&self, file: &str, seq: u64, text: Option<&str>, out: &mut Vec<u8>) {
        // No `id`: the resume point stays the last whole line.
        let data = serde_json::json!({"file": file, "seq": seq, "text": text});
        out.extend_from_slice(format!("event: partial\ndata: {data}\n\n").as_bytes());
    }

    fn keepalive(&self) -> Option<&'static [u8]> {
        Some(b": ping\n\n")
    }

    fn advance(&self, id: &str, out: &mut Vec<u8>) {
        // An event with an id and no data sets the client's Last-Event-ID and dispatches
        // nothing (EventSource drops events without data).
        let _ = write!(out, "id: {id}\n\n");
    }

    fn preamble(&self) -> &'static [u8] {
        b"retry: 2000\n\n"
    }
}

/// `raw`: lines byte for byte, else terminal-safe; `multi`: several files, so a `==> ID <==`
/// header (as `tail` prints one) comes before lines of another file than the last ones.
struct PlainText {
    raw: bool,
    multi: bool,
    /// The file of the last lines written (many-file streams).
    last: std::sync::Mutex<Option<String>>,
}

impl PlainText {
    fn push(&self, text: &str, out: &mut Vec<u8>) {
        if self.raw {
            out.extend_from_slice(text.as_bytes());
        } else {
            terminal::push_line(text, out);
        }
    }

    /// `==> ID <==` when `file` is not the file of the last lines, blank line first as `tail`
    /// writes it (but not before the first header).
    fn header(&self, file: &str, out: &mut Vec<u8>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() == Some(file) {
            return;
        }
        if last.is_some() {
            out.push(b'\n');
        }
        // The id is a file name: shown terminal-safe even with raw=1.
        terminal::push_line(&format!("==> {file} <=="), out);
        out.push(b'\n');
        *last = Some(file.to_owned());
    }
}

impl Format for PlainText {
    fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }

    fn lines(&self, file: &str, slice: &BatchSlice, _ids: &IdParts, out: &mut Vec<u8>) {
        if self.multi && !slice.is_empty() {
            self.header(file, out);
        }
        let mut cut = slice.truncated_seqs().peekable();
        for (i, line) in slice.lines().enumerate() {
            self.push(line, out);
            if cut.next_if_eq(&(slice.first_seq() + i as u64)).is_some() {
                out.extend_from_slice(CUT_MARK.as_bytes());
            }
            out.push(b'\n');
        }
    }

    fn reset(&self, file: &str, reset: ResetNotice, _id: &str, out: &mut Vec<u8>) {
        let why = match reset.reason {
            "epoch" => format!(
                "the cursor is from another server run (epoch {}); lines are numbered anew \
                 (epoch {}), what follows is the recent lines",
                reset.from_epoch, reset.epoch
            ),
            _ => format!(
                "the cursor is beyond the newest line; following from line {}",
                reset.seq
            ),
        };
        self.push(&format!("==> tailcast: {file}: reset: {why} <=="), out);
        out.push(b'\n');
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
        self.push(&format!("==> tailcast: {file} {state} <=="), out);
        out.push(b'\n');
    }

    fn keepalive(&self) -> Option<&'static [u8]> {
        None
    }
}

struct StreamParams {
    files: Vec<String>,
    after: Option<After>,
    backlog: Option<usize>,
    raw: bool,
    filter: Option<LineFilter>,
}

fn parse(req: &HttpRequest, max_grep_bytes: usize) -> Result<StreamParams, ApiError> {
    let params = query::parse(req.query_string(), &[], query::MAX_FILES, |_, _| Ok(()))?;
    let filter = filter::from_query(params.grep.as_deref(), params.grep_invert, max_grep_bytes)?;
    let mut after = params.after;
    // A reconnecting EventSource says where it stopped; that wins.
    if let Some(last) = req.headers().get("last-event-id") {
        let text = last.to_str().unwrap_or("");
        after = Some(After::parse("Last-Event-ID", text)?);
    }
    Ok(StreamParams {
        files: params.files,
        after,
        backlog: params.backlog,
        raw: params.raw,
        filter,
    })
}

/// `GET /sse?file=ID[&file=ID...][&backlog=N|&after=CURSOR][&raw=1][&grep=RE]` (and
/// `Last-Event-ID`).
pub async fn sse(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    open_stream(req, state, |raw, multi| Sse { raw, multi }).await
}

/// `GET /follow?file=ID[&file=ID...][&backlog=N|&after=CURSOR][&raw=1][&grep=RE]`: lines as
/// text, as they come (several files as `tail -F a b` prints them).
pub async fn follow(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    open_stream(req, state, |raw, multi| PlainText {
        raw,
        multi,
        last: Default::default(),
    })
    .await
}

/// One file of a stream: its reader, and how far it has read.
struct Source {
    id: String,
    cursor: LiveCursor,
    /// The last seq read (kept or dropped by the filter).
    scanned: u64,
}

/// A reader of `ix` from `cursor` (or the backlog), woken through `wake`; and the reset to tell
/// the client of, if the stream does not start where it asked.
fn open_source(
    state: &AppState,
    ix: FileIx,
    cursor: Option<Cursor>,
    backlog: Start,
    wake: &Arc<Notify>,
) -> Result<(LiveCursor, Option<ResetNotice>), ApiError> {
    let epoch = state.hub.epoch();
    let mut from_epoch = None;
    let start = match cursor.map(|cursor| cursor.resolve(epoch)) {
        Some(Resume::After(after)) => Start::After(after),
        // Another numbering: the client is told, then gets what it would without a cursor.
        Some(Resume::Reset { from_epoch: e }) => {
            from_epoch = Some(e);
            backlog
        }
        None => backlog,
    };
    match state.hub.subscribe(ix, start, wake.clone()) {
        Ok(cursor) => {
            let reset = from_epoch.map(|from_epoch| ResetNotice {
                epoch,
                from_epoch,
                reason: "epoch",
                seq: cursor.next_seq().saturating_sub(1),
            });
            Ok((cursor, reset))
        }
        // Beyond the newest line (a bare seq from another server run, or made up): start at
        // the live edge, and say so.
        Err(ahead) => {
            let cursor = state
                .hub
                .subscribe(ix, Start::After(ahead.last_seq), wake.clone())
                .map_err(|_| ApiError::Busy("the file changed during the request; retry".into()))?;
            let reset = ResetNotice {
                epoch,
                from_epoch: epoch,
                reason: "cursor_ahead",
                seq: ahead.last_seq,
            };
            Ok((cursor, Some(reset)))
        }
    }
}

/// `format` makes the transport's writer, given whether the client asked for `raw=1` and
/// whether the stream has several files.
async fn open_stream<F: Format>(
    req: HttpRequest,
    state: web::Data<AppState>,
    format: impl FnOnce(bool, bool) -> F,
) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    let params = parse(&req, state.config.max_grep_bytes)?;
    let multi = params.files.len() > 1;
    let format = format(params.raw, multi);
    let files = query::files_with_cursors(&state.hub, &params.files, params.after.as_ref())?;
    let slot = state.take_slot(Gauge::StreamClients)?;
    let max = state.config.max_backlog;
    let epoch = state.hub.epoch();
    let backlog = Start::Backlog(
        params
            .backlog
            .unwrap_or(state.config.default_backlog)
            .min(max),
    );
    let wake = Arc::new(Notify::new());
    let mut sources = Vec::with_capacity(files.len());
    let mut resets = Vec::new();
    for (ix, file, cursor) in files {
        let (cursor, reset) = open_source(&state, ix, cursor, backlog, &wake)?;
        if let Some(reset) = reset {
            tracing::debug!(%file, reason = reset.reason, from_epoch = reset.from_epoch, "stream: reset");
            resets.push((sources.len(), reset));
        }
        sources.push(Source {
            id: file.to_owned(),
            scanned: cursor.next_seq().saturating_sub(1),
            cursor,
        });
    }
    let positions = Positions {
        epoch,
        ids: if multi {
            sources.iter().map(|s| s.id.clone()).collect()
        } else {
            Vec::new()
        },
        seqs: sources.iter().map(|s| s.scanned).collect(),
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(CHUNKS_IN_FLIGHT);
    let content_type = format.content_type();
    let mut first = format.preamble().to_vec();
    for (i, reset) in resets {
        format.reset(&sources[i].id, reset, &positions.id(), &mut first);
    }
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
        let stream = Stream {
            sources,
            positions,
            filter: params.filter,
        };
        let reason = pump(&out, format, stream, wake, first).await;
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

pub(super) type Tx = mpsc::Sender<Result<Bytes, std::convert::Infallible>>;
pub(super) type Permit<'a> = mpsc::Permit<'a, Result<Bytes, std::convert::Infallible>>;

/// Why a stream ends when its client does not keep up.
const TOO_SLOW: &str = "client too slow";
/// Why a stream ends when the server's output budget stays full (the client may reconnect).
const SERVER_BUSY: &str = "server busy";

/// Where one client's chunks go: the response body, within the connection's output budget.
pub(super) struct Out {
    pub(super) state: AppState,
    pub(super) tx: Tx,
    pub(super) conn: Conn,
}

impl Out {
    /// Waits until the output budgets have room for about `bytes` more (see
    /// `Conn::make_room`) and the body can take one more chunk, noticing a client that goes
    /// meanwhile. Everything is sent through such a slot, so nothing is read from the hub for a
    /// client that cannot take it.
    pub(super) async fn room(&self, bytes: usize) -> Result<Permit<'_>, &'static str> {
        let made = tokio::select! {
            made = self.conn.make_room(bytes) => made,
            _ = self.tx.closed() => return Err("client gone"),
        };
        match made {
            Ok(()) => {}
            Err(NoRoom::Stalled) => {
                self.state.stats.drops.fetch_add(1, Relaxed);
                return Err(TOO_SLOW);
            }
            Err(NoRoom::ServerBusy) => return Err(SERVER_BUSY),
        }
        match tokio::time::timeout(self.state.config.send_timeout, self.tx.reserve()).await {
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
    pub(super) fn put(&self, slot: Permit<'_>, chunk: Vec<u8>) {
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

/// What a stream task reads and where its client is.
struct Stream {
    sources: Vec<Source>,
    positions: Positions,
    filter: Option<LineFilter>,
}

async fn pump(
    out: &Out,
    format: impl Format,
    stream: Stream,
    wake: Arc<Notify>,
    first: Vec<u8>,
) -> &'static str {
    match stream_chunks(out, &format, stream, &wake, first).await {
        Ok(()) => "shutdown",
        Err(reason) => reason,
    }
}

async fn stream_chunks(
    out: &Out,
    format: &impl Format,
    mut stream: Stream,
    wake: &Notify,
    first: Vec<u8>,
) -> Result<(), &'static str> {
    let state = &out.state;
    out.put(out.room(first.len()).await?, first);
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
                let mut beat = Vec::new();
                if stream.filter.is_some() {
                    // Once per heartbeat at most: a reconnect does not read again what the
                    // filter dropped before it.
                    let mut moved = false;
                    for (source, seq) in stream.sources.iter().zip(&mut stream.positions.seqs) {
                        if source.scanned > *seq {
                            *seq = source.scanned;
                            moved = true;
                        }
                    }
                    if moved {
                        format.advance(&stream.positions.id(), &mut beat);
                    }
                }
                beat.extend_from_slice(format.keepalive().unwrap_or_default());
                if !beat.is_empty() {
                    out.put(out.room(beat.len()).await?, beat);
                }
            }
            _ = wake.notified() => {
                let mut more = false;
                for i in 0..stream.sources.len() {
                    if stream.sources[i].cursor.has_news() {
                        let slot = out.room(BYTES_PER_CHUNK).await?;
                        let chunk = read_chunk(state, format, &mut stream, i);
                        out.put(slot, chunk);
                        more |= stream.sources[i].cursor.has_news();
                    }
                }
                if more {
                    wake.notify_one();
                    // A client catching up takes one chunk per file per turn of the worker: the
                    // other connections on this thread get theirs in between.
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

/// Reads one chunk of file `i` of the stream and writes it as the client gets it.
fn read_chunk(state: &AppState, format: &impl Format, stream: &mut Stream, i: usize) -> Vec<u8> {
    let source = &mut stream.sources[i];
    let read = source.cursor.read(LINES_PER_CHUNK, BYTES_PER_CHUNK);
    source.scanned = source.cursor.next_seq().saturating_sub(1);
    let id = &source.id;
    let mut chunk = Vec::new();
    for delivery in filter::apply(stream.filter.as_ref(), read) {
        match delivery {
            Delivery::Gap(gap) => {
                state.stats.gaps.fetch_add(1, Relaxed);
                format.gap(id, gap, &mut chunk);
            }
            Delivery::Lines(slice) => {
                let ids = stream.positions.parts(i);
                format.lines(id, &slice, &ids, &mut chunk);
                stream.positions.seqs[i] = (slice.first_seq() + slice.len() as u64)
                    .saturating_sub(1)
                    .max(stream.positions.seqs[i]);
            }
            Delivery::State(file_state) => format.state(id, file_state, &mut chunk),
            Delivery::Pending { seq, text } => format.pending(id, seq, text.as_deref(), &mut chunk),
        }
    }
    chunk
}

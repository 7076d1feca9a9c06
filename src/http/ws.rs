//! `GET /ws`: one WebSocket session per connection (actix-ws, no actors).
//!
//! A session task selects over: client frames, one hub wake-up shared by all its subscriptions
//! (each a [`LiveCursor`] reading the file's history), the heartbeat tick, the client-silence
//! deadline and the shutdown signal. Lines go out as the hub's shared, pre-serialized frames (the
//! very bytes, WebSocket header included: see [`super::ws_out`]); only part of a batch (a backlog
//! that starts inside one) is re-serialized. The client's frames are read by actix-ws; what the
//! server sends goes through [`ws_out`]'s queue and body instead of actix-ws's `Session`. A
//! subscriber left behind by a burst is told of a `gap` (see `Hub::pace`); a send that stalls
//! longer than `--send-timeout` closes the client. Nothing the client sends can make the session
//! panic.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, ProtocolError};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use super::error::ApiError;
use super::filter::{self, LineFilter};
use crate::hub::{BatchSlice, Delivery, FileIx, Gap, LiveCursor, Start};
use crate::protocol::{self, ClientMessage, ServerMessage, WireCursor};
use crate::stats::Gauge;

use super::conn::{Conn, NoRoom};
use super::encode;
use super::query::{self, Cursor, Resume};
use super::ws_guard::{self, FrameGuard, Verdict, Violation};
use super::ws_out::{self, Outbox};
use super::{access, AppState};

/// Most files one client may subscribe to at once.
const MAX_SUBSCRIPTIONS: usize = 1024;

/// Most distinct `grep` patterns one client's subscriptions may use at once (subscriptions with
/// the same pattern share its compiled form), so that what its patterns take stays bounded.
const MAX_FILTERS: usize = 16;

/// One subscription: where it reads, and what it keeps.
struct Sub {
    cursor: LiveCursor,
    filter: Option<LineFilter>,
}

/// Most lines, and about the most bytes, read from one file per turn of the session loop
/// (client messages, the heartbeat and shutdown are seen between turns; the rest is read on the
/// next one). A small turn keeps the cursor close to what the client has received, which is what
/// pacing and gaps are judged by. The byte bound is the one that binds for lines of 8 bytes or
/// more: the hub cuts it between batches (whose frames are shared), where the line bound would
/// cut inside one.
const LINES_PER_TURN: usize = 32_768;
const BYTES_PER_TURN: usize = 256 * 1024;

/// `GET /ws`: checks access, then upgrades and spawns the session.
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if state.config.no_websocket {
        return Err(ApiError::Disabled("the WebSocket endpoint is disabled; use /poll").into());
    }
    access::check(&req, &state)?;
    // Files are chosen in `subscribe` messages: the query has only the token.
    query::only(req.query_string(), &[])?;
    let slot = state.take_slot(Gauge::WsClients)?;
    let max = state.config.max_message_bytes;
    // actix checks a frame's size only once it has all of it: judge each frame by its header
    // first (see ws_guard).
    let (guard, verdict) = FrameGuard::new(body, max);
    let mut guarded = actix_web::dev::Payload::from(Box::pin(guard) as ws_guard::GuardedPayload);
    let body = web::Payload::from_request(&req, &mut guarded).await?;
    let (response, _actix_session, stream) = actix_ws::handle(&req, body)?;
    // Our frames go in our own body; actix-ws's stays with it, unpolled (see ws_out::OutBody).
    let (response, actix_ws_body) = response.into_parts();
    let (session, body) = ws_out::channel(actix_ws_body);
    let response = response.set_body(body).map_into_boxed_body();
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let conn = state.conn(&req);
    let state = state.get_ref().clone();
    // Only the peer address outlives the upgrade: the request (headers) is dropped here.
    let peer = super::peer_name(&req);
    drop(req);
    let drain_guard = state.shutdown.guard();
    actix_web::rt::spawn(async move {
        tracing::info!(%peer, "websocket open");
        let mut session = WsSession::new(state, session, conn, verdict);
        let reason = session.run(stream).await;
        tracing::info!(%peer, ?reason, "websocket closed");
        session.close(reason).await;
        drop(slot);
        drop(drain_guard);
    });
    Ok(response)
}

/// Why a session ends.
#[derive(Debug)]
enum End {
    /// The client closed or disconnected.
    ClientGone,
    /// Server shutdown: close 1001.
    Shutdown,
    /// The client said nothing for the timeout.
    Silent,
    /// A send did not complete in time.
    Stalled,
    /// An inbound message was over the limit: close 1009.
    TooBig,
    /// A text message that is not UTF-8: close 1007.
    BadText,
    /// A WebSocket protocol error: close 1002.
    Protocol,
    /// The server's output budget stayed full (other clients): close 1013, try again later.
    Busy,
}

struct WsSession {
    state: AppState,
    session: Outbox,
    /// The connection's output budget and reset switch.
    conn: Conn,
    /// What the frame guard found wrong with the client's frames, if anything.
    verdict: Verdict,
    /// Woken by the hub when a subscribed file has news (one wake-up for all subscriptions).
    wake: Arc<Notify>,
    subs: BTreeMap<FileIx, Sub>,
    idle_deadline: Instant,
}

impl WsSession {
    fn new(state: AppState, session: Outbox, conn: Conn, verdict: Verdict) -> Self {
        let idle_deadline = Instant::now() + state.config.client_timeout;
        WsSession {
            state,
            session,
            conn,
            verdict,
            wake: Arc::new(Notify::new()),
            subs: BTreeMap::new(),
            idle_deadline,
        }
    }

    async fn run(&mut self, mut stream: actix_ws::AggregatedMessageStream) -> End {
        // Marked seen before the list is read: a file added from here on is announced.
        let mut files_changed = self.state.hub.watch_files();
        files_changed.borrow_and_update();
        let files = encode::file_infos(&self.state.hub);
        let hello = ServerMessage::Hello {
            version: protocol::PROTOCOL_VERSION,
            epoch: self.state.hub.epoch(),
            files: &files,
            heartbeat_ms: millis(self.state.config.heartbeat),
            timeout_ms: millis(self.state.config.client_timeout),
        };
        if let Err(end) = self.send_json(&hello.to_json()).await {
            return end;
        }
        let mut shutdown = self.state.shutdown.clone();
        let heartbeat = self.state.config.heartbeat;
        let mut heartbeat_tick = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        heartbeat_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                biased;
                _ = shutdown.fired() => Err(End::Shutdown),
                message = stream.next() => self.on_client(message).await,
                _ = self.wake.notified() => self.on_news().await,
                Ok(()) = files_changed.changed() => self.on_files_changed().await,
                _ = heartbeat_tick.tick() => self.heartbeat().await,
                _ = sleep_until(self.idle_deadline) => Err(End::Silent),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn close(mut self, end: End) {
        let count = self.subs.len();
        self.subs.clear();
        self.state.stats.subscriptions.fetch_sub(count, Relaxed);
        if matches!(end, End::Silent | End::Stalled) {
            self.state.stats.drops.fetch_add(1, Relaxed);
        }
        let (code, description) = match end {
            End::ClientGone => return,
            // Nothing more gets through to this client: reset at once.
            End::Stalled => {
                self.conn.kill();
                return;
            }
            End::Shutdown => (CloseCode::Away, "server shutting down"),
            End::Silent => (
                CloseCode::Policy,
                "no message from the client within the timeout",
            ),
            End::TooBig => (CloseCode::Size, "message over the server's limit"),
            End::BadText => (CloseCode::Invalid, "text message is not UTF-8"),
            End::Protocol => (CloseCode::Protocol, "websocket protocol error"),
            End::Busy => (
                CloseCode::Again,
                "server busy (its output budget is full): reconnect shortly",
            ),
        };
        let frame = ws_out::close(u16::from(code), description);
        self.conn.queued(frame.len());
        // A stalled socket may never take the close frame: bound the wait.
        let grace = Duration::from_millis(500);
        let _ = tokio::time::timeout(grace, self.session.close(frame)).await;
        if matches!(
            end,
            End::Silent | End::TooBig | End::BadText | End::Protocol
        ) {
            // A client that broke the rules, or fell silent, may still be sending: once actix has
            // taken the close frame, shut our side (the frame and a FIN go out, so the client
            // reads the code) and reset a moment later, so nothing it sends is read any more.
            self.conn.flushed(grace).await;
            self.conn.finish(Duration::from_secs(1));
        }
    }

    /// Sends a JSON message as a text frame (see [`WsSession::send`]).
    async fn send_json(&mut self, json: &str) -> Result<(), End> {
        self.send(ws_out::text(json)).await
    }

    /// Sends one text frame (made by [`ws_out`]) once the output budgets have room for it (see
    /// `Conn::make_room`), the send itself bounded by the send timeout.
    async fn send(&mut self, frame: Bytes) -> Result<(), End> {
        let len = ws_out::payload(&frame).len() as u64;
        let wire_bytes = frame.len();
        self.conn
            .make_room(wire_bytes)
            .await
            .map_err(|no_room| match no_room {
                NoRoom::Stalled => End::Stalled,
                NoRoom::ServerBusy => End::Busy,
            })?;
        self.conn.queued(wire_bytes);
        within(self.state.config.send_timeout, self.session.send(frame)).await?;
        let stats = &self.state.stats;
        stats.frames_out.fetch_add(1, Relaxed);
        stats.bytes_out.fetch_add(len, Relaxed);
        Ok(())
    }

    async fn send_error(&mut self, code: &str, message: &str) -> Result<(), End> {
        let frame = ServerMessage::Error { code, message }.to_json();
        self.send_json(&frame).await
    }

    async fn heartbeat(&mut self) -> Result<(), End> {
        self.send_json(&ServerMessage::Ping.to_json()).await?;
        let ping = ws_out::ping(b"hb");
        self.conn.queued(ping.len());
        within(self.state.config.send_timeout, self.session.send(ping)).await
    }

    async fn on_client(
        &mut self,
        message: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Result<(), End> {
        let message = match message {
            None => return Err(End::ClientGone),
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                return Err(match self.verdict.get() {
                    Some(Violation::TooBig) => End::TooBig,
                    Some(Violation::Protocol(what)) => {
                        tracing::info!(what, "websocket client broke the protocol");
                        End::Protocol
                    }
                    None => match error {
                        ProtocolError::Overflow => End::TooBig,
                        // actix-ws reports a text message that is not UTF-8 as invalid data.
                        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                            End::BadText
                        }
                        // The peer went away without a close handshake.
                        ProtocolError::Io(_) => End::ClientGone,
                        _ => End::Protocol,
                    },
                });
            }
        };
        // Any frame proves the client alive.
        self.idle_deadline = Instant::now() + self.state.config.client_timeout;
        match message {
            AggregatedMessage::Text(text) => self.on_text(&text).await,
            AggregatedMessage::Binary(_) => {
                self.send_error(
                    "binary_not_supported",
                    "send JSON text frames; binary frames are not part of the protocol",
                )
                .await
            }
            AggregatedMessage::Ping(bytes) => {
                let pong = ws_out::pong(&bytes);
                self.conn.queued(pong.len());
                within(self.state.config.send_timeout, self.session.send(pong)).await
            }
            AggregatedMessage::Pong(_) => Ok(()),
            AggregatedMessage::Close(_) => Err(End::ClientGone),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), End> {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => {
                let (code, hint) = if serde_json::from_str::<serde_json::Value>(text).is_err() {
                    ("invalid_json", "the message is not valid JSON")
                } else {
                    (
                        "bad_message",
                        "expected {\"type\":\"subscribe\"|\"unsubscribe\"|\"ping\"|\"pong\", ...}",
                    )
                };
                let message = format!("{hint}: {e}");
                return self.send_error(code, &message).await;
            }
        };
        match message {
            ClientMessage::Ping => self.send_json(&ServerMessage::Pong.to_json()).await,
            ClientMessage::Pong => Ok(()),
            ClientMessage::Unsubscribe { file } => {
                let Some(ix) = self.state.hub.lookup(&file) else {
                    return self.unknown_file(&file).await;
                };
                if self.subs.remove(&ix).is_some() {
                    self.state.stats.subscriptions.fetch_sub(1, Relaxed);
                }
                Ok(())
            }
            ClientMessage::Subscribe {
                file,
                backlog,
                after,
                epoch,
                grep,
                grep_invert,
            } => {
                let after = match after {
                    None => None,
                    Some(WireCursor::Seq(seq)) => Some(Cursor::with_epoch(seq, epoch)),
                    Some(WireCursor::Text(text)) => match Cursor::parse("after", &text) {
                        Ok(Cursor::Seq(seq)) => Some(Cursor::with_epoch(seq, epoch)),
                        Ok(qualified) => Some(qualified),
                        Err(e) => return self.send_error("bad_message", &e.to_string()).await,
                    },
                };
                let filter = match grep {
                    Some(pattern) => {
                        match self.filter(&file, &pattern, grep_invert.unwrap_or(false)) {
                            Ok(filter) => Some(filter),
                            Err((code, message)) => return self.send_error(code, &message).await,
                        }
                    }
                    None => None,
                };
                self.subscribe(&file, backlog, after, filter).await
            }
        }
    }

    /// The compiled `grep` of a subscription to `file`: shared with another subscription that
    /// uses the same pattern, else compiled, within [`MAX_FILTERS`]; or the error to send.
    fn filter(
        &self,
        file: &str,
        pattern: &str,
        invert: bool,
    ) -> Result<LineFilter, (&'static str, String)> {
        let in_use = |ix: &FileIx| self.state.hub.id(*ix) != file;
        let mut distinct: Vec<&str> = Vec::new();
        for (ix, sub) in &self.subs {
            let Some(filter) = &sub.filter else { continue };
            if filter.pattern() == pattern {
                // Shared, inverted or not: the compiled pattern is the same.
                let mut shared = filter.clone();
                shared.set_inverted(invert);
                return Ok(shared);
            }
            if in_use(ix) && !distinct.contains(&filter.pattern()) {
                distinct.push(filter.pattern());
            }
        }
        if distinct.len() >= MAX_FILTERS {
            return Err((
                "too_many_filters",
                format!(
                    "at most {MAX_FILTERS} distinct grep patterns per connection; subscribe with \
                     one of those in use, or unsubscribe first"
                ),
            ));
        }
        LineFilter::new(pattern, invert, self.state.config.max_grep_bytes)
            .map_err(|e| ("bad_grep", format!("subscribe to `{file}`: grep: {e}")))
    }

    async fn unknown_file(&mut self, file: &str) -> Result<(), End> {
        let message = format!("no file with id `{file}`; the hello message lists the ids");
        self.send_error("unknown_file", &message).await
    }

    async fn subscribe(
        &mut self,
        file: &str,
        backlog: Option<u64>,
        after: Option<Cursor>,
        filter: Option<LineFilter>,
    ) -> Result<(), End> {
        let Some(ix) = self.state.hub.lookup(file) else {
            return self.unknown_file(file).await;
        };
        // With a qualified cursor, `backlog` is what to send should the cursor be stale; with a
        // bare one it has no use, and giving both stays the mistake it always was.
        if backlog.is_some() && matches!(after, Some(Cursor::Seq(_))) {
            return self
                .send_error("bad_message", "give either `backlog` or `after`, not both")
                .await;
        }
        if !self.subs.contains_key(&ix) && self.subs.len() >= MAX_SUBSCRIPTIONS {
            let message = format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection");
            return self.send_error("too_many_subscriptions", &message).await;
        }
        let max = self.state.config.max_backlog;
        let epoch = self.state.hub.epoch();
        let n = backlog.unwrap_or(self.state.config.default_backlog as u64);
        let backlog_start = Start::Backlog(n.min(max as u64) as usize);
        let start = match after.map(|cursor| cursor.resolve(epoch)) {
            Some(Resume::After(after)) => Start::After(after),
            Some(Resume::Reset { from_epoch }) => {
                // Told first, so the client drops what it holds of the old numbering before the
                // backlog of the new one comes.
                let frame = ServerMessage::Reset {
                    file,
                    epoch,
                    from_epoch,
                    reason: "epoch",
                }
                .to_json();
                self.send_json(&frame).await?;
                backlog_start
            }
            None => backlog_start,
        };
        let wake = self.wake.clone();
        let mut cursor = match self.state.hub.subscribe(ix, start, wake) {
            Ok(cursor) => cursor,
            Err(ahead) => {
                let message = format!(
                    "{ahead}; the cursor is from another server run (see hello.epoch): \
                     subscribe with `backlog`, or with after={}",
                    ahead.last_seq
                );
                return self.send_error("cursor_ahead", &message).await;
            }
        };
        // The backlog (or what follows the cursor) goes out now; the rest as it comes.
        let deliveries = filter::apply(filter.as_ref(), cursor.read(max, BYTES_PER_TURN));
        let filtered = filter.is_some();
        if self.subs.insert(ix, Sub { cursor, filter }).is_none() {
            self.state.stats.subscriptions.fetch_add(1, Relaxed);
        }
        self.deliver(ix, deliveries, filtered).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Sends lines: the hub's shared frame for a whole batch, a fresh one for part of a batch.
    async fn send_slice(&mut self, ix: FileIx, slice: &BatchSlice) -> Result<(), End> {
        let id = self.state.hub.id(ix);
        let frame = if slice.is_whole() {
            encode::whole_batch_frame(id, &slice.batch)
        } else {
            encode::lines_ws_frame(id, slice.first_seq(), std::slice::from_ref(slice))
        };
        self.send(frame).await
    }

    /// A live glob or directory found a file: the whole list again, as in `hello`.
    async fn on_files_changed(&mut self) -> Result<(), End> {
        let files = encode::file_infos(&self.state.hub);
        let frame = ServerMessage::Files { files: &files }.to_json();
        self.send_json(&frame).await
    }

    async fn send_gap(&mut self, ix: FileIx, gap: Gap) -> Result<(), End> {
        self.state.stats.gaps.fetch_add(1, Relaxed);
        let file = self.state.hub.id(ix);
        let frame = ServerMessage::Gap {
            file,
            from: gap.from,
            to: gap.to,
        }
        .to_json();
        self.send_json(&frame).await
    }

    /// A subscribed file has news: read each subscription that has some, a bounded amount per
    /// turn, and come back at once if any still has more.
    async fn on_news(&mut self) -> Result<(), End> {
        let mut more_later = false;
        let files: Vec<FileIx> = self
            .subs
            .iter()
            .filter(|(_, sub)| sub.cursor.has_news())
            .map(|(ix, _)| *ix)
            .collect();
        for ix in files {
            let Some(sub) = self.subs.get_mut(&ix) else {
                continue;
            };
            let read = sub.cursor.read(LINES_PER_TURN, BYTES_PER_TURN);
            let deliveries = filter::apply(sub.filter.as_ref(), read);
            let filtered = sub.filter.is_some();
            let more = sub.cursor.has_news();
            self.deliver(ix, deliveries, filtered).await?;
            if more {
                self.wake.notify_one();
                more_later = true;
            }
        }
        if more_later {
            // A client catching up takes one turn per turn of the worker: the other connections
            // on this thread get theirs in between.
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Sends what a read delivered. Filtered lines (not consecutive) go out together, in one
    /// `lines` message with their `seqs` per stretch between gaps and file states.
    async fn deliver(
        &mut self,
        ix: FileIx,
        deliveries: Vec<Delivery>,
        filtered: bool,
    ) -> Result<(), End> {
        let mut kept = Vec::new();
        for delivery in deliveries {
            if let Delivery::Lines(slice) = delivery {
                if filtered {
                    kept.push(slice);
                } else {
                    self.send_slice(ix, &slice).await?;
                }
                continue;
            }
            self.send_kept(ix, &mut kept).await?;
            match delivery {
                Delivery::Gap(gap) => self.send_gap(ix, gap).await?,
                Delivery::Lines(_) => {}
                Delivery::State(state) => {
                    let file = self.state.hub.id(ix);
                    let frame = ServerMessage::File {
                        file,
                        state: state.as_str(),
                        code: state.exit_code(),
                        signal: state.exit_signal(),
                    }
                    .to_json();
                    self.send_json(&frame).await?
                }
                Delivery::Pending { seq, text } => {
                    let file = self.state.hub.id(ix);
                    let frame = ServerMessage::Partial {
                        file,
                        seq,
                        text: text.as_deref(),
                    }
                    .to_json();
                    self.send_json(&frame).await?
                }
            }
        }
        self.send_kept(ix, &mut kept).await
    }

    /// Sends filtered lines gathered by [`WsSession::deliver`], if any.
    async fn send_kept(&mut self, ix: FileIx, kept: &mut Vec<BatchSlice>) -> Result<(), End> {
        if kept.is_empty() {
            return Ok(());
        }
        let frame = encode::filtered_lines_ws_frame(self.state.hub.id(ix), kept);
        kept.clear();
        self.send(frame).await
    }
}

/// Runs a send to the client, bounded by the send timeout: a closed session means the client is
/// gone, a send that does not complete in time that it is stalled.
async fn within<E>(
    timeout: Duration,
    send: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), End> {
    match tokio::time::timeout(timeout, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_closed)) => Err(End::ClientGone),
        Err(_elapsed) => Err(End::Stalled),
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

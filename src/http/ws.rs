//! `GET /ws`: one WebSocket session per connection (actix-ws, no actors).
//!
//! A session task selects over: client frames, the live streams of its subscriptions (a
//! `StreamMap` of hub broadcast receivers), the heartbeat tick, the client-silence deadline and
//! the shutdown signal. Lines go out as the hub's shared, pre-serialized frames; only a batch that
//! overlaps a subscription's backlog is re-serialized. A subscriber that lags behind the hub's
//! bounded channel is told of a `gap` and moved to the live edge; a send that stalls longer than
//! `--send-timeout` closes the client. Nothing the client sends can make the session panic.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytestring::ByteString;
use futures_util::StreamExt;
use tokio::time::{sleep_until, Instant};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamMap;

use crate::error::ApiError;
use crate::hub::{FileIx, LiveEvent, Start};
use crate::protocol::{self, ClientMessage, ServerMessage};
use crate::stats::{Gauge, Slot};

use super::{access, AppState};

/// Most files one client may subscribe to at once.
const MAX_SUBSCRIPTIONS: usize = 1024;

/// `GET /ws`: checks access, then upgrades and spawns the session.
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if state.config.no_websocket {
        return Err(ApiError::Disabled("the WebSocket endpoint is disabled; use /poll").into());
    }
    access::check_origin(&req, &state)?;
    access::check_token(&req, &state)?;
    let slot = Slot::acquire(&state.stats, Gauge::WsClients, state.config.max_connections)
        .ok_or_else(|| {
            ApiError::Busy(format!(
                "too many WebSocket clients ({}); try again later or raise --max-connections",
                state.config.max_connections
            ))
        })?;
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let max = state.config.max_message_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let state = state.get_ref().clone();
    actix_web::rt::spawn(async move {
        let peer = req.peer_addr();
        let mut session = WsSession::new(state, session);
        let reason = session.run(stream).await;
        tracing::debug!(?peer, ?reason, "websocket closed");
        session.close(reason).await;
        drop(slot);
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
    /// A WebSocket protocol error.
    Protocol,
}

struct Subscription {
    /// Seq of the next line this client should get.
    next_seq: u64,
}

struct WsSession {
    state: AppState,
    session: actix_ws::Session,
    live: StreamMap<FileIx, BroadcastStream<LiveEvent>>,
    subs: HashMap<FileIx, Subscription>,
    idle_deadline: Instant,
}

impl WsSession {
    fn new(state: AppState, session: actix_ws::Session) -> Self {
        let idle_deadline = Instant::now() + state.config.client_timeout;
        WsSession {
            state,
            session,
            live: StreamMap::new(),
            subs: HashMap::new(),
            idle_deadline,
        }
    }

    async fn run(&mut self, mut stream: actix_ws::AggregatedMessageStream) -> End {
        let files = self.state.hub.files();
        let hello = ServerMessage::Hello {
            version: protocol::PROTOCOL_VERSION,
            epoch: self.state.hub.epoch(),
            files: &files,
            heartbeat_ms: millis(self.state.config.heartbeat),
            timeout_ms: millis(self.state.config.client_timeout),
        };
        if let Err(end) = self.send(hello.to_json().into()).await {
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
                Some((file, event)) = self.live.next(), if !self.live.is_empty() => {
                    self.on_live(file, event).await
                }
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
        self.live = StreamMap::new();
        self.state
            .stats
            .subscriptions
            .fetch_sub(count, std::sync::atomic::Ordering::Relaxed);
        if matches!(end, End::Silent | End::Stalled) {
            self.state
                .stats
                .drops
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let reason = match end {
            End::ClientGone => return,
            End::Shutdown => CloseReason {
                code: CloseCode::Away,
                description: Some("server shutting down".into()),
            },
            End::Silent => CloseReason {
                code: CloseCode::Policy,
                description: Some("no message from the client within the timeout".into()),
            },
            End::Stalled => CloseReason {
                code: CloseCode::Policy,
                description: Some("client too slow: a send did not complete".into()),
            },
            End::TooBig => CloseReason {
                code: CloseCode::Size,
                description: Some("message over the server's limit".into()),
            },
            End::Protocol => CloseReason {
                code: CloseCode::Protocol,
                description: Some("websocket protocol error".into()),
            },
        };
        // A stalled socket may never take the close frame: bound the wait, then drop it.
        let _ = tokio::time::timeout(Duration::from_millis(500), self.session.close(Some(reason)))
            .await;
    }

    /// Sends one text frame, bounded by the send timeout.
    async fn send(&mut self, frame: ByteString) -> Result<(), End> {
        match tokio::time::timeout(self.state.config.send_timeout, self.session.text(frame)).await {
            Ok(Ok(())) => {
                self.state
                    .stats
                    .frames_out
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(_closed)) => Err(End::ClientGone),
            Err(_elapsed) => Err(End::Stalled),
        }
    }

    async fn send_error(&mut self, code: &str, message: &str) -> Result<(), End> {
        let frame = ServerMessage::Error { code, message }.to_json();
        self.send(frame.into()).await
    }

    async fn heartbeat(&mut self) -> Result<(), End> {
        self.send(ServerMessage::Ping.to_json().into()).await?;
        match tokio::time::timeout(self.state.config.send_timeout, self.session.ping(b"hb")).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ClientGone),
            Err(_) => Err(End::Stalled),
        }
    }

    async fn on_client(
        &mut self,
        message: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Result<(), End> {
        let message = match message {
            None => return Err(End::ClientGone),
            Some(Ok(message)) => message,
            Some(Err(ProtocolError::Overflow)) => return Err(End::TooBig),
            Some(Err(_)) => return Err(End::Protocol),
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
            AggregatedMessage::Ping(bytes) => match self.session.pong(&bytes).await {
                Ok(()) => Ok(()),
                Err(_) => Err(End::ClientGone),
            },
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
            ClientMessage::Ping => self.send(ServerMessage::Pong.to_json().into()).await,
            ClientMessage::Pong => Ok(()),
            ClientMessage::Unsubscribe { file } => {
                let Some(ix) = self.state.hub.lookup(&file) else {
                    return self.unknown_file(&file).await;
                };
                if self.subs.remove(&ix).is_some() {
                    self.live.remove(&ix);
                    self.state
                        .stats
                        .subscriptions
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            }
            ClientMessage::Subscribe {
                file,
                backlog,
                after,
            } => self.subscribe(&file, backlog, after).await,
        }
    }

    async fn unknown_file(&mut self, file: &str) -> Result<(), End> {
        let message = format!("no file with id `{file}`; the hello message lists the ids");
        self.send_error("unknown_file", &message).await
    }

    async fn subscribe(
        &mut self,
        file: &str,
        backlog: Option<u64>,
        after: Option<u64>,
    ) -> Result<(), End> {
        let Some(ix) = self.state.hub.lookup(file) else {
            return self.unknown_file(file).await;
        };
        if backlog.is_some() && after.is_some() {
            return self
                .send_error("bad_message", "give either `backlog` or `after`, not both")
                .await;
        }
        if !self.subs.contains_key(&ix) && self.subs.len() >= MAX_SUBSCRIPTIONS {
            let message = format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection");
            return self.send_error("too_many_subscriptions", &message).await;
        }
        let max = self.state.config.max_backlog;
        let start = match after {
            Some(after) => Start::After(after),
            None => {
                let n = backlog.unwrap_or(self.state.config.default_backlog as u64);
                Start::Backlog(n.min(max as u64) as usize)
            }
        };
        let (snapshot, receiver) = match self.state.hub.subscribe(ix, start, max) {
            Ok(subscribed) => subscribed,
            Err(ahead) => {
                let message = format!(
                    "{ahead}; the cursor is from another server run (see hello.epoch): \
                     subscribe with `backlog`, or with after={}",
                    ahead.last_seq
                );
                return self.send_error("cursor_ahead", &message).await;
            }
        };
        if self.subs.insert(ix, Subscription { next_seq: 0 }).is_none() {
            self.state
                .stats
                .subscriptions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.live.insert(ix, BroadcastStream::new(receiver));
        let id = self.state.hub.id(ix).to_owned();
        if let Some(gap) = snapshot.read.gap {
            self.send_gap(&id, gap.from, gap.to).await?;
        }
        let next_seq = match snapshot.read.first_seq() {
            Some(first) => {
                for slice in &snapshot.read.slices {
                    let frame = if slice.is_whole() {
                        slice.batch.frame.clone()
                    } else {
                        protocol::lines_frame(&id, slice.first_seq(), std::slice::from_ref(slice))
                            .into()
                    };
                    self.send(frame).await?;
                }
                first + snapshot.read.line_count() as u64
            }
            None => snapshot.last_seq + 1,
        };
        if let Some(sub) = self.subs.get_mut(&ix) {
            sub.next_seq = next_seq;
        }
        Ok(())
    }

    async fn send_gap(&mut self, file: &str, from: u64, to: u64) -> Result<(), End> {
        self.state
            .stats
            .gaps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let frame = ServerMessage::Gap { file, from, to }.to_json();
        self.send(frame.into()).await
    }

    async fn on_live(
        &mut self,
        ix: FileIx,
        event: Result<LiveEvent, BroadcastStreamRecvError>,
    ) -> Result<(), End> {
        let Some(next_seq) = self.subs.get(&ix).map(|s| s.next_seq) else {
            return Ok(());
        };
        match event {
            Ok(LiveEvent::Lines(batch)) => {
                if batch.end_seq() <= next_seq {
                    return Ok(()); // already sent with the backlog
                }
                let frame = if batch.first_seq >= next_seq {
                    if batch.first_seq > next_seq {
                        // Only after a lag; the gap was announced when the lag was seen.
                        let id = self.state.hub.id(ix).to_owned();
                        self.send_gap(&id, next_seq, batch.first_seq - 1).await?;
                    }
                    batch.frame.clone()
                } else {
                    let slice = crate::hub::BatchSlice {
                        batch: batch.clone(),
                        range: 0..batch.lines.len(),
                    }
                    .from_seq(next_seq);
                    let id = self.state.hub.id(ix);
                    protocol::lines_frame(id, slice.first_seq(), std::slice::from_ref(&slice))
                        .into()
                };
                if let Some(sub) = self.subs.get_mut(&ix) {
                    sub.next_seq = batch.end_seq();
                }
                self.send(frame).await
            }
            Ok(LiveEvent::State(_, frame)) => self.send(frame).await,
            Err(BroadcastStreamRecvError::Lagged(_)) => {
                // Too slow for the live queue: skip to the live edge and say exactly what was
                // skipped.
                let (last_seq, receiver) = self.state.hub.subscribe_live(ix);
                self.live.insert(ix, BroadcastStream::new(receiver));
                if let Some(sub) = self.subs.get_mut(&ix) {
                    sub.next_seq = last_seq + 1;
                }
                if last_seq >= next_seq {
                    let id = self.state.hub.id(ix).to_owned();
                    self.send_gap(&id, next_seq, last_seq).await?;
                }
                Ok(())
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

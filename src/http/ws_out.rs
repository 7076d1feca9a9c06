//! The server's half of a WebSocket: frames encoded once, and the response body that carries them.
//!
//! actix-ws's `Session` takes a message, and its response body encodes it through actix-http's
//! `Codec` into a buffer of its own: every frame's payload is copied there, for every client,
//! before actix-http copies it again into its write buffer. A `lines` frame is the same for every
//! client of a batch, so here it is framed once ([`text_frame`], with the header written into
//! room left in front of the JSON, so the payload is not moved either) and the very same
//! [`Bytes`] goes to every client: an [`Outbox`] queues whole frames, and [`OutBody`] hands them
//! to actix as they are.
//!
//! What this owns: the wire form of server frames (unmasked, never fragmented: text, ping, pong,
//! close, with control payloads cut to RFC 6455's 125 bytes on a character boundary) and the
//! queue between a session and its connection, bounded like actix-ws's ([`QUEUE_FRAMES`]
//! frames). What it does not: reading the client's frames (still actix-ws's `MessageStream`,
//! behind `ws_guard`), the output budget (`conn`), timeouts (the session).

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;
use tokio::sync::mpsc;

/// Frames that may wait in a session's queue, as in actix-ws (its channel holds 32 messages).
pub const QUEUE_FRAMES: usize = 32;

/// Most bytes of a frame header (an unmasked server frame: 2, 4 or 10).
pub const MAX_HEADER: usize = 10;

/// RFC 6455: a control frame carries at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
const FIN: u8 = 0x80;

/// Bytes of the header of an unmasked frame carrying `payload` bytes.
pub fn header_len(payload: usize) -> usize {
    match payload {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// Writes the header of a final, unmasked frame into the end of `room`; returns its length.
fn write_header(opcode: u8, payload: usize, room: &mut [u8; MAX_HEADER]) -> usize {
    let n = header_len(payload);
    let at = MAX_HEADER - n;
    room[at] = FIN | opcode;
    match n {
        2 => room[at + 1] = payload as u8,
        4 => {
            room[at + 1] = 126;
            room[at + 2..].copy_from_slice(&(payload as u16).to_be_bytes());
        }
        _ => {
            room[at + 1] = 127;
            room[at + 2..].copy_from_slice(&(payload as u64).to_be_bytes());
        }
    }
    n
}

/// A text frame from `buf`, whose first [`MAX_HEADER`] bytes are room for the header and the rest
/// is the payload (UTF-8, the caller's promise). Neither is copied: the header goes into the
/// room, and the frame starts where it does.
pub fn text_frame(mut buf: Vec<u8>) -> Bytes {
    if buf.len() < MAX_HEADER {
        buf.resize(MAX_HEADER, 0);
    }
    let payload = buf.len() - MAX_HEADER;
    let mut room = [0u8; MAX_HEADER];
    let n = write_header(OP_TEXT, payload, &mut room);
    buf[..MAX_HEADER].copy_from_slice(&room);
    Bytes::from(buf).slice(MAX_HEADER - n..)
}

/// A buffer to build a [`text_frame`] in: room for the header, then `capacity` for the payload.
pub fn frame_buffer(capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(MAX_HEADER + capacity);
    buf.resize(MAX_HEADER, 0);
    buf
}

/// A text frame carrying `text` (copied: for small messages).
pub fn text(text: &str) -> Bytes {
    let mut buf = frame_buffer(text.len());
    buf.extend_from_slice(text.as_bytes());
    text_frame(buf)
}

/// A control frame (its payload cut to 125 bytes).
fn control(opcode: u8, payload: &[u8]) -> Bytes {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    let mut room = [0u8; MAX_HEADER];
    let n = write_header(opcode, payload.len(), &mut room);
    let mut frame = Vec::with_capacity(n + payload.len());
    frame.extend_from_slice(&room[MAX_HEADER - n..]);
    frame.extend_from_slice(payload);
    Bytes::from(frame)
}

/// A ping frame.
pub fn ping(payload: &[u8]) -> Bytes {
    control(OP_PING, payload)
}

/// A pong frame.
pub fn pong(payload: &[u8]) -> Bytes {
    control(OP_PONG, payload)
}

/// A close frame with `code` and `reason` (cut to 123 bytes on a character boundary).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    control(OP_CLOSE, &payload)
}

/// The payload of a frame made here (for tests and counters): what follows its header.
pub fn payload(frame: &[u8]) -> &[u8] {
    let n = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
        None => return &[],
    };
    frame.get(n..).unwrap_or_default()
}

/// The session's side of the queue: sends whole frames.
pub struct Outbox {
    tx: Option<mpsc::Sender<Item>>,
}

/// The session has ended its side (a close frame went, or the connection is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the WebSocket connection is closed")]
pub struct Closed;

enum Item {
    Frame(Bytes),
    /// The last frame: the body ends after it.
    Close(Bytes),
}

impl Outbox {
    /// Queues a frame made here; waits while the queue is full.
    pub async fn send(&mut self, frame: Bytes) -> Result<(), Closed> {
        let tx = self.tx.as_ref().ok_or(Closed)?;
        tx.send(Item::Frame(frame)).await.map_err(|_| Closed)
    }

    /// Queues a close frame, after which nothing more is sent and the response ends.
    pub async fn close(&mut self, frame: Bytes) -> Result<(), Closed> {
        let tx = self.tx.take().ok_or(Closed)?;
        tx.send(Item::Close(frame)).await.map_err(|_| Closed)
    }
}

/// The response body of a WebSocket: the frames an [`Outbox`] queues, as they are.
pub struct OutBody {
    rx: mpsc::Receiver<Item>,
    /// actix-ws's own response body, kept unpolled for as long as the connection lives: its
    /// drop is what tells actix-ws's `MessageStream` (the client's frames) that the connection
    /// has ended, as it would if it were the body.
    _actix_ws_body: BoxBody,
    done: bool,
}

/// A queue for one WebSocket: the session's end and the response body. `actix_ws_body` is the
/// body actix-ws made for the upgrade response (see [`OutBody`]).
pub fn channel(actix_ws_body: BoxBody) -> (Outbox, OutBody) {
    let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
    (
        Outbox { tx: Some(tx) },
        OutBody {
            rx,
            _actix_ws_body: actix_ws_body,
            done: false,
        },
    )
}

impl MessageBody for OutBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Item::Frame(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Item::Close(frame))) => {
                // A close frame is terminal: the response ends after it.
                this.done = true;
                this.rx.close();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_what_actix_http_writes() {
        use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
        use actix_web::web::BytesMut;
        let actix = |payload: &[u8], op: OpCode| {
            let mut out = BytesMut::new();
            Parser::write_message(&mut out, payload, op, true, false);
            out.freeze()
        };
        for len in [0, 1, 125, 126, 65535, 65536, 70000] {
            let text = "x".repeat(len);
            let want = actix(text.as_bytes(), OpCode::Text);
            assert_eq!(super::text(&text), want, "{len}");
            let mut buf = frame_buffer(len);
            buf.extend_from_slice(text.as_bytes());
            let frame = text_frame(buf);
            assert_eq!(frame, want, "{len}");
            assert_eq!(payload(&frame).len(), len);
        }
        assert_eq!(ping(b"hb"), actix(b"hb", OpCode::Ping));
        let long = [7u8; 300];
        assert_eq!(pong(&long), actix(&long[..125], OpCode::Pong));
        let reason = "é".repeat(100);
        let mut want = BytesMut::new();
        Parser::write_close(
            &mut want,
            Some(CloseReason {
                code: CloseCode::Away,
                description: Some(reason[..122].into()),
            }),
            false,
        );
        assert_eq!(close(1001, &reason), want.freeze());
    }

    #[tokio::test]
    async fn the_body_ends_after_a_close_frame_and_when_the_outbox_goes() {
        use futures_util::StreamExt;
        let (mut out, body) = channel(BoxBody::new(()));
        out.send(text("a")).await.unwrap();
        out.close(close(1000, "")).await.unwrap();
        assert_eq!(out.send(text("b")).await, Err(Closed));
        let frames: Vec<Bytes> = body_stream(body).map(|r| r.unwrap()).collect().await;
        assert_eq!(frames, vec![text("a"), close(1000, "")]);

        let (out, body) = channel(BoxBody::new(()));
        drop(out);
        let frames: Vec<Bytes> = body_stream(body).map(|r| r.unwrap()).collect().await;
        assert!(frames.is_empty());
    }

    fn body_stream(
        body: OutBody,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
        let mut body = Box::pin(body);
        futures_util::stream::poll_fn(move |cx| body.as_mut().poll_next(cx))
    }
}

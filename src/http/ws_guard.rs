//! The check in front of actix-ws: a client's WebSocket frames are judged by their headers, before
//! a byte of their payload is kept.
//!
//! actix-http's frame parser checks a frame's declared length against its limit only once the
//! whole frame has arrived, so a client that declares 2^40 bytes and streams them makes it buffer
//! without end; it also reports reserved bits and bad opcodes as plain I/O errors. [`FrameGuard`]
//! wraps the request payload, follows the frame boundaries in the byte stream (headers only: the
//! payload passes through untouched, without a copy) and stops the stream at the first frame
//! that breaks the rules, leaving the verdict (the RFC 6455 close code) in a [`Verdict`] the
//! session reads:
//!
//! - a frame, or the fragments of one message together, over `--max-message-bytes`: 1009;
//! - reserved bits set (no extension is negotiated), an unknown opcode, an unmasked frame, a
//!   fragmented or over-long control frame, a continuation with no message started or a new
//!   message inside a fragmented one: 1002.
//!
//! Invalid UTF-8 in a text message is found by actix-ws when the message is complete (1007).

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// The guarded payload, boxed as actix's payload type takes it.
pub type GuardedPayload = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// Why the guard stopped a client's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A message over the size limit (close code 1009).
    TooBig,
    /// A frame that breaks RFC 6455 (close code 1002).
    Protocol(&'static str),
}

/// Where the guard leaves its verdict for the session (same task, so no lock).
#[derive(Debug, Clone, Default)]
pub struct Verdict(Rc<Cell<Option<Violation>>>);

impl Verdict {
    /// The violation found, if any.
    pub fn get(&self) -> Option<Violation> {
        self.0.get()
    }
}

/// Where the parser is in the byte stream.
#[derive(Debug)]
enum Position {
    /// Collecting a frame header (at most 14 bytes).
    Header { bytes: [u8; 14], len: usize },
    /// Inside a frame's payload: this many bytes to go.
    Payload(u64),
}

/// Follows client frames and enforces the limits; see the module documentation.
#[derive(Debug)]
pub struct FrameRules {
    max_message: u64,
    position: Position,
    /// Bytes of the fragmented message in progress, if one is.
    message: Option<u64>,
}

impl FrameRules {
    /// Rules for messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        FrameRules {
            max_message: max_message as u64,
            position: Position::Header {
                bytes: [0; 14],
                len: 0,
            },
            message: None,
        }
    }

    /// Follows `chunk`; the first violation stops it.
    pub fn check(&mut self, mut chunk: &[u8]) -> Result<(), Violation> {
        while !chunk.is_empty() {
            match &mut self.position {
                Position::Payload(left) => {
                    let step = (*left).min(chunk.len() as u64);
                    *left -= step;
                    chunk = &chunk[step as usize..];
                    if *left == 0 {
                        self.position = Position::Header {
                            bytes: [0; 14],
                            len: 0,
                        };
                    }
                }
                Position::Header { bytes, len } => {
                    bytes[*len] = chunk[0];
                    *len += 1;
                    chunk = &chunk[1..];
                    if let Some(payload) = self.header_complete()? {
                        self.position = if payload == 0 {
                            Position::Header {
                                bytes: [0; 14],
                                len: 0,
                            }
                        } else {
                            Position::Payload(payload)
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// Judges the header collected so far: `Some(payload length)` once it is complete.
    fn header_complete(&mut self) -> Result<Option<u64>, Violation> {
        let Position::Header { bytes, len } = &self.position else {
            return Ok(None);
        };
        let (bytes, len) = (*bytes, *len);
        if len < 2 {
            return Ok(None);
        }
        let (first, second) = (bytes[0], bytes[1]);
        if first & 0x70 != 0 {
            return Err(Violation::Protocol(
                "reserved bits set: no extension was negotiated",
            ));
        }
        if second & 0x80 == 0 {
            return Err(Violation::Protocol("client frames must be masked"));
        }
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0f;
        let short = u64::from(second & 0x7f);
        let (length_bytes, payload) = match short {
            126 if len < 4 => return Ok(None),
            126 => (2, u64::from(u16::from_be_bytes([bytes[2], bytes[3]]))),
            127 if len < 10 => return Ok(None),
            127 => {
                let mut be = [0; 8];
                be.copy_from_slice(&bytes[2..10]);
                (8, u64::from_be_bytes(be))
            }
            n => (0, n),
        };
        if len < 2 + length_bytes + 4 {
            return Ok(None);
        }
        match opcode {
            // Control frames: close, ping, pong.
            0x8..=0xa => {
                if !fin || payload > 125 {
                    return Err(Violation::Protocol(
                        "control frames must be whole and at most 125 bytes",
                    ));
                }
            }
            // A continuation of the fragmented message in progress.
            0x0 => {
                let Some(so_far) = self.message else {
                    return Err(Violation::Protocol("a continuation frame with no message"));
                };
                let total = so_far.saturating_add(payload);
                if total > self.max_message {
                    return Err(Violation::TooBig);
                }
                self.message = (!fin).then_some(total);
            }
            // A new text or binary message.
            0x1 | 0x2 => {
                if self.message.is_some() {
                    return Err(Violation::Protocol("a new message inside a fragmented one"));
                }
                if payload > self.max_message {
                    return Err(Violation::TooBig);
                }
                self.message = (!fin).then_some(payload);
            }
            _ => return Err(Violation::Protocol("unknown opcode")),
        }
        Ok(Some(payload))
    }
}

/// The request payload of a WebSocket, checked by [`FrameRules`].
pub struct FrameGuard<S> {
    inner: S,
    rules: FrameRules,
    verdict: Verdict,
    stopped: bool,
}

impl<S> FrameGuard<S> {
    /// Guards `inner` with messages of at most `max_message` bytes; returns the guard and the
    /// verdict it will leave.
    pub fn new(inner: S, max_message: usize) -> (Self, Verdict) {
        let verdict = Verdict::default();
        let guard = FrameGuard {
            inner,
            rules: FrameRules::new(max_message),
            verdict: verdict.clone(),
            stopped: false,
        };
        (guard, verdict)
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stopped {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(Pin::new(&mut self.inner).poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            if let Err(violation) = self.rules.check(chunk) {
                self.stopped = true;
                self.verdict.0.set(Some(violation));
                let kind = match violation {
                    Violation::TooBig => PayloadError::Overflow,
                    Violation::Protocol(what) => {
                        PayloadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, what))
                    }
                };
                return Poll::Ready(Some(Err(kind)));
            }
        }
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header (mask key zero) for `payload` bytes.
    fn header(fin: bool, opcode: u8, payload: u64) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match payload {
            0..=125 => out.push(0x80 | payload as u8),
            126..=65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(payload as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&payload.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0; 4]);
        out
    }

    fn frame(fin: bool, opcode: u8, payload: usize) -> Vec<u8> {
        let mut out = header(fin, opcode, payload as u64);
        out.resize(out.len() + payload, b'a');
        out
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_split() {
        let mut stream = frame(true, 1, 100);
        stream.extend(frame(false, 1, 30));
        stream.extend(frame(true, 9, 4));
        stream.extend(frame(true, 0, 30));
        stream.extend(frame(true, 2, 70_000));
        for split in [1, 3, 7, 13, 4096, stream.len()] {
            let mut rules = FrameRules::new(70_000);
            for piece in stream.chunks(split) {
                assert_eq!(rules.check(piece), Ok(()), "split {split}");
            }
        }
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_its_payload() {
        let mut rules = FrameRules::new(65_536);
        assert_eq!(
            rules.check(&header(true, 1, 1 << 40)),
            Err(Violation::TooBig)
        );
        let mut rules = FrameRules::new(65_536);
        assert_eq!(
            rules.check(&header(true, 2, 65_537)),
            Err(Violation::TooBig)
        );
    }

    #[test]
    fn fragments_count_toward_the_limit() {
        let mut rules = FrameRules::new(100);
        assert_eq!(rules.check(&frame(false, 1, 60)), Ok(()));
        assert_eq!(rules.check(&header(true, 0, 60)), Err(Violation::TooBig));
    }

    #[test]
    fn protocol_errors_are_named() {
        let cases: [(Vec<u8>, &str); 6] = [
            (vec![0xc1, 0x80, 0, 0, 0, 0], "reserved"),
            (vec![0x81, 0x05], "masked"),
            (frame(true, 3, 0), "opcode"),
            (frame(false, 9, 0), "control"),
            (frame(true, 9, 126), "control"),
            (frame(true, 0, 1), "continuation"),
        ];
        for (bytes, what) in cases {
            let mut rules = FrameRules::new(1000);
            match rules.check(&bytes) {
                Err(Violation::Protocol(message)) => {
                    assert!(message.contains(what), "{message} for {bytes:?}")
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        let mut rules = FrameRules::new(1000);
        let mut stream = frame(false, 1, 1);
        stream.extend(frame(true, 1, 1));
        assert!(matches!(rules.check(&stream), Err(Violation::Protocol(_))));
    }
}

//! The wire protocol, version 1: every message the server and its clients exchange, in one place.
//!
//! WebSocket messages are JSON text frames with a `type` field; long-poll answers are JSON objects
//! (or plain text). `docs/protocol.md` is the reader's guide to this file. A `lines` frame for a
//! whole batch is serialized once (see [`lines_frame`]) and the same buffer goes to every client.

use serde::{Deserialize, Serialize, Serializer};

use crate::hub::{BatchSlice, Gap};

/// The protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// One configured file, as listed by `GET /api/files` and in `hello`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileInfo {
    /// Short stable name used in every request.
    pub id: String,
    /// The path as configured.
    pub path: String,
    /// Whether the path currently names a readable file.
    pub exists: bool,
    /// Bytes read so far from the current file.
    pub size: u64,
    /// Seq of the newest line (0 when none yet).
    pub last_seq: u64,
    /// Why the path cannot be followed although something is there ("permission denied:
    /// tailcast's user cannot read it"); absent while it can, or while the path is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Messages a client sends over the WebSocket. Unknown fields are ignored (forward compatible).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Start receiving a file: `backlog` last lines then live, or every line after `after`.
    Subscribe {
        /// File id.
        file: String,
        /// How many recent lines to send first (default: the server's `--lines`).
        #[serde(default)]
        backlog: Option<u64>,
        /// Resume: every line with seq > `after`.
        #[serde(default)]
        after: Option<u64>,
    },
    /// Stop receiving a file.
    Unsubscribe {
        /// File id.
        file: String,
    },
    /// Answered by `pong`.
    Ping,
    /// The client's answer to a server `ping`.
    Pong,
}

/// Messages the server sends over the WebSocket (all but `lines`, which is built by
/// [`lines_frame`]).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// First message of every connection.
    Hello {
        /// Protocol version.
        version: u32,
        /// Changes at every server start: cursors from another epoch are stale.
        epoch: u64,
        /// The configured files.
        files: &'a [FileInfo],
        /// Interval of the server's `ping`.
        heartbeat_ms: u64,
        /// A client silent this long is closed.
        timeout_ms: u64,
    },
    /// Lines `from..=to` will never come.
    Gap {
        /// File id.
        file: &'a str,
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// The file changed state.
    File {
        /// File id.
        file: &'a str,
        /// `created`, `truncated`, `rotated` or `deleted`.
        state: &'a str,
    },
    /// Heartbeat.
    Ping,
    /// Answer to a client `ping`.
    Pong,
    /// A request was refused; the connection stays open unless said otherwise.
    Error {
        /// Machine-readable reason.
        code: &'a str,
        /// What went wrong and what to do.
        message: &'a str,
    },
}

impl ServerMessage<'_> {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A `lines` message: consecutive lines starting at `seq`.
#[derive(Serialize)]
struct LinesMessage<'a, L: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    seq: u64,
    lines: L,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    truncated: Vec<u64>,
}

/// Serializes the lines of some slices as one JSON array without copying them first.
pub struct LinesOf<'a>(pub &'a [BatchSlice]);

impl Serialize for LinesOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().flat_map(BatchSlice::lines))
    }
}

/// Seqs of truncated lines in some slices.
pub fn truncated_seqs(slices: &[BatchSlice]) -> Vec<u64> {
    slices.iter().flat_map(BatchSlice::truncated_seqs).collect()
}

/// The `lines` message for consecutive slices starting at `first_seq`.
pub fn lines_frame(file: &str, first_seq: u64, slices: &[BatchSlice]) -> String {
    let message = LinesMessage {
        kind: "lines",
        file,
        seq: first_seq,
        lines: LinesOf(slices),
        truncated: truncated_seqs(slices),
    };
    serde_json::to_string(&message).unwrap_or_default()
}

/// The `lines` message of a whole batch of lines not yet in a `Batch` (used by the hub to build
/// the shared frame once).
pub fn batch_frame(file: &str, first_seq: u64, lines: &crate::tail::LineBatch) -> String {
    struct All<'a>(&'a crate::tail::LineBatch);
    impl Serialize for All<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.lines())
        }
    }
    let message = LinesMessage {
        kind: "lines",
        file,
        seq: first_seq,
        lines: All(lines),
        truncated: lines
            .truncated()
            .iter()
            .map(|&i| first_seq + u64::from(i))
            .collect(),
    };
    // Sized for the usual case (quotes and commas, little to escape), so that it is allocated
    // once and kept without spare capacity.
    let estimate = lines.text_bytes() + lines.len() * 3 + file.len() + 96;
    let mut frame = Vec::with_capacity(estimate);
    if serde_json::to_writer(&mut frame, &message).is_err() {
        return String::new();
    }
    frame.shrink_to_fit();
    // serde_json writes valid UTF-8.
    String::from_utf8(frame).unwrap_or_default()
}

/// A long-poll JSON answer.
#[derive(Serialize)]
pub struct PollAnswer<'a> {
    /// File id.
    pub file: &'a str,
    /// The server's start epoch.
    pub epoch: u64,
    /// The lines, oldest first.
    pub lines: LinesOf<'a>,
    /// Seq of the first line, `null` when there is none.
    pub first_seq: Option<u64>,
    /// Cursor for the next request (`after=last_seq`).
    pub last_seq: u64,
    /// Lines that will never come, if the cursor was older than the history.
    pub gap: Option<Gap>,
    /// Seqs of lines cut at the length cap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<u64>,
    /// Present (true) when the cursor was ahead of the newest line: it came from another server
    /// run; `last_seq` is the live edge to continue from.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

/// The JSON body of every HTTP error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Machine-readable reason.
    pub error: &'a str,
    /// What went wrong and what to do.
    pub message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_and_ignore_unknown_fields() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","file":"a","after":3}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscribe {
                file: "a".into(),
                backlog: None,
                after: Some(3)
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"nope"}"#).is_err());
        // Newer clients may add fields: they are ignored, not refused.
        assert_eq!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"ping","x":1}"#).unwrap(),
            ClientMessage::Ping
        );
    }

    #[test]
    fn batch_frame_escapes_lines_and_lists_truncated_seqs() {
        let mut batch = crate::tail::LineBatch::default();
        batch.push("a \"quoted\" <b>", false);
        batch.push("cut", true);
        let frame = batch_frame("f", 7, &batch);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["type"], "lines");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["lines"][0], "a \"quoted\" <b>");
        assert_eq!(v["truncated"][0], 8);
    }
}

//! The wire protocol, version 1: every message the server and its clients exchange, in one place.
//!
//! WebSocket messages are JSON text frames with a `type` field; long-poll answers are JSON objects
//! (or plain text). `docs/protocol.md` is the reader's guide to this file. This module knows
//! only the messages; `http::encode` fills them from the history (a `lines` frame for a whole
//! batch is serialized once and the same buffer goes to every client).

use serde::{Deserialize, Serialize};

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

/// A `lines` message: consecutive lines starting at `seq`. `L` serializes the lines as a JSON
/// array of strings (the transports pass the history's lines in place, without copying them).
#[derive(Serialize)]
pub struct LinesMessage<'a, L: Serialize> {
    /// Always `"lines"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// File id.
    pub file: &'a str,
    /// Seq of the first line.
    pub seq: u64,
    /// The lines.
    pub lines: L,
    /// Seqs of lines cut at the length cap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<u64>,
}

/// Lines `from..=to` that will never come.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct GapRange {
    /// First missing seq.
    pub from: u64,
    /// Last missing seq.
    pub to: u64,
}

/// A long-poll JSON answer; `L` serializes the lines as in [`LinesMessage`].
#[derive(Serialize)]
pub struct PollAnswer<'a, L: Serialize> {
    /// File id.
    pub file: &'a str,
    /// The server's start epoch.
    pub epoch: u64,
    /// The lines, oldest first.
    pub lines: L,
    /// Seq of the first line, `null` when there is none.
    pub first_seq: Option<u64>,
    /// Cursor for the next request (`after=last_seq`).
    pub last_seq: u64,
    /// Lines that will never come, if the cursor was older than the history.
    pub gap: Option<GapRange>,
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
}
